// Drives the console in Debian's chromium (playwright-core, no browser download) the
// way an operator would. Run by tests/tests/console_web.rs, which starts the broker,
// mcp-server, a worker and the console, and reads what this prints.
//
//   CONSOLE_URL, CONSOLE_KEY   where the console is and a key it accepts
//   MODE=operate               log in, search JOB_ID, open DLQ_JOB_ID's dead letter (its
//                              SECRET must be redacted), and STRING_JOB_ID's (a payload
//                              given as a string: STRING_SECRETS, comma-separated, must
//                              not show), replay it (a reload or a resubmitted form does
//                              not replay it again) and see the replay's outcome, replay
//                              a kind after confirming; a page of another site cannot
//                              frame the console; the overview fits 390 px; logging out
//                              ends the session (Back and a copied cookie get the login
//                              form); WAITING_JOB_ID (a job published to run later, with
//                              SECRET) listed, shown and cancelled; screenshots to
//                              SCREENSHOT_DIR; SCHEDULE paused, resumed, triggered and
//                              DELETE_SCHEDULE deleted
//   MODE=read-only             401 before login, no action offered, a forged action 403
//   MODE=now                   RUNNING_JOB_ID seen running and RETRYING_JOB_ID retrying
//                              on the Now page; the running job's page says where it
//                              runs, then (reloaded) its outcome; the retried job's
//                              outcome tells each attempt; screenshots to SCREENSHOT_DIR
//
// Prints one JSON line of what it saw; exits non-zero with the reason on the first
// expectation that fails.
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env("CONSOLE_URL");
const key = env("CONSOLE_KEY");
const mode = env("MODE");

function expect(condition, what) {
  if (!condition) throw new Error(`expected ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const seen = { mode };
try {
  // A viewer in New York: the pages' times are shown in the viewer's zone.
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: "America/New_York", locale: "en-US" });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  // Anything the Content-Security-Policy blocks would show here.
  seen.csp_violations = [];
  page.on("console", (m) => { if (m.text().includes("Content Security Policy")) seen.csp_violations.push(m.text()); });

  // Not logged in: the login form, with 401.
  const first = await page.goto(`${base}/dlq?kind=tool_error`);
  seen.before_login = first.status();
  expect(first.status() === 401, `401 before login, got ${first.status()}`);
  expect(await page.locator("input[name=key]").count() === 1, "the login form");
  const api = await context.request.get(`${base}/api/dlq`);
  seen.api_without_key = api.status();
  expect(api.status() === 401, `the API's 401 without a key, got ${api.status()}`);

  // A wrong key is refused, the right one logs in and goes on to the page asked for.
  await page.fill("input[name=key]", "not-a-key");
  const wrong = await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  seen.wrong_key = wrong[0].status();
  expect(wrong[0].status() === 401, `401 for a wrong key, got ${wrong[0].status()}`);
  await page.fill("input[name=key]", key);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  const landed = new URL(page.url());
  expect(landed.pathname === "/dlq" && landed.search === "?kind=tool_error", `back on /dlq?kind=tool_error after login, at ${page.url()}`);
  seen.after_login = landed.pathname + landed.search;
  const cookie = (await context.cookies()).find((c) => c.name === "mcp_jobs_console");
  expect(cookie && cookie.httpOnly && cookie.sameSite === "Strict", `an HttpOnly SameSite=Strict cookie: ${JSON.stringify(cookie)}`);
  seen.cookie = { httpOnly: cookie.httpOnly, sameSite: cookie.sameSite, secure: cookie.secure };
  expect(!cookie.value.includes(key), "a cookie that does not hold the key");

  if (mode === "operate") {
    await operate(page, context);
  } else if (mode === "read-only") {
    await readOnly(page);
  } else if (mode === "now") {
    await now(page);
  } else {
    throw new Error(`MODE ${mode}?`);
  }
  console.log(JSON.stringify(seen));
} finally {
  await browser.close();
}

async function operate(page, context) {
  const jobId = env("JOB_ID");
  const dlqJobId = env("DLQ_JOB_ID");
  const secret = env("SECRET");
  const shots = env("SCREENSHOT_DIR");

  // The overview: two charts, the group's members, mcp-server's figures.
  await page.click("nav >> text=Overview");
  expect(await page.locator("figure.chart svg").count() === 2, "two charts on the overview");
  await page.waitForFunction(() => document.querySelectorAll("figure.chart polyline").length >= 2);
  seen.overview = await page.locator("main").innerText();
  await page.screenshot({ path: `${shots}/console-overview.png`, fullPage: true });

  // Search a job.
  await page.click("nav >> text=Jobs");
  await page.screenshot({ path: `${shots}/console-jobs.png`, fullPage: true });
  await page.fill("input[name=jobID]", jobId);
  await Promise.all([page.waitForNavigation(), page.click("form.search button")]);
  const job = await page.locator("main").innerText();
  expect(job.includes(`Job ${jobId}`) && job.includes("succeeded"), `job ${jobId} found and succeeded: ${job}`);
  seen.job = job;

  // Open its dead letter from the list.
  await page.click("nav >> text=Dead letters");
  const row = page.locator("tr", { hasText: dlqJobId });
  await Promise.all([page.waitForNavigation(), row.locator("td:first-child a").click()]);
  const letter = await page.locator("main").innerText();
  expect(letter.includes(dlqJobId), "the dead letter's jobID");
  expect(letter.includes("Original message") && letter.includes("[redacted]"), `the message, redacted: ${letter}`);
  expect(!(await page.content()).includes(secret), "no secret of the job's config on the page");
  expect(letter.includes("traceparent") || letter.includes("tenant"), `its headers: ${letter}`);
  seen.dead_letter = letter;
  await page.screenshot({ path: `${shots}/console-dead-letter.png`, fullPage: true });
  const letterPage = page.url();

  // A payload given as a string, and a credential in a Kafka header: redacted too.
  await page.goto(`${base}/dlq`);
  const stringRow = page.locator("tr", { hasText: env("STRING_JOB_ID") });
  await Promise.all([page.waitForNavigation(), stringRow.locator("td:first-child a").first().click()]);
  const stringLetter = await page.content();
  for (const hidden of env("STRING_SECRETS").split(",")) {
    expect(!stringLetter.includes(hidden), `${hidden} not on the page of a job whose payload is a string`);
  }
  expect(stringLetter.includes("[redacted]") && stringLetter.includes("authorization"), "its headers, redacted");
  await page.screenshot({ path: `${shots}/console-dead-letter-string-payload.png`, fullPage: true });
  await page.goto(letterPage);

  // A forged form (another session's token) is refused.
  const forged = await submit(page, page.url().replace(/\/dlq\/.*/, "/dlq/replay"), { csrf: "00", positions: "0:0" });
  seen.forged_csrf = forged;
  expect(forged === 403, `403 for a wrong CSRF token, got ${forged}`);
  await page.goBack();

  // Replay it: the answer is a redirect to what it did, so a reload replays nothing,
  // and the same form sent again (its one-time token used) replays nothing either.
  const replayForm = page.locator("form[action='/dlq/replay']");
  const fields = {};
  for (const input of await replayForm.locator("input[type=hidden]").all()) {
    fields[await input.getAttribute("name")] = await input.inputValue();
  }
  const letterUrl = page.url();
  await Promise.all([page.waitForNavigation(), page.click("text=Replay this dead letter")]);
  const replayed = await page.locator("main").innerText();
  expect(replayed.includes("Replayed 1 of 1"), `one replayed: ${replayed}`);
  expect(new URL(page.url()).pathname.startsWith("/dlq/replays/"), `redirected to the result: ${page.url()}`);
  const reloaded = await page.reload();
  expect(reloaded.status() === 200 && (await page.locator("main").innerText()).includes("Replayed 1 of 1"), "the result again on reload");
  await page.goto(letterUrl);
  const resubmitted = await submit(page, `${base}/dlq/replay`, fields);
  expect(resubmitted === 200 && (await page.locator("main").innerText()).includes("Replayed 1 of 1"), `a resubmitted form shows the first result: ${resubmitted}`);
  seen.resubmitted = resubmitted;
  await page.goto(letterUrl);
  const marked = await page.locator("main").innerText();
  expect(marked.includes("Replay again") && /replayed\s+\d{4}-/.test(marked), `the dead letter says it was replayed: ${marked}`);
  await page.screenshot({ path: `${shots}/console-dead-letter-replayed.png`, fullPage: true });
  const deadline = Date.now() + 90_000;
  let outcome = "";
  while (Date.now() < deadline) {
    await page.goto(`${base}/jobs?jobID=${encodeURIComponent(dlqJobId)}`);
    outcome = await page.locator("main").innerText();
    if (outcome.includes("replay of")) break;
    await page.waitForTimeout(1000);
  }
  expect(outcome.includes("replay of") && outcome.includes("succeeded"), `the replay's outcome, succeeded: ${outcome}`);
  // The job's page tells its whole story: the first outcome, its dead letter (replayed,
  // so offered again), the replay's outcome.
  expect(outcome.includes(`Dead letter`) && (await page.locator("main form[action='/dlq/replay']").count()) === 1
    && outcome.includes("Replay again"), `the job's dead letter on its page: ${outcome}`);
  seen.replay_outcome = outcome;
  await page.screenshot({ path: `${shots}/console-job.png`, fullPage: true });

  // Triage: the dead letters grouped by kind and error signature; a group opens as a
  // filter of exactly its dead letters.
  await page.goto(`${base}/dlq`);
  const groupRows = page.locator("details.groups tbody tr");
  expect(await groupRows.count() >= 2, `groups of dead letters: ${await page.locator("main").innerText()}`);
  const biggest = groupRows.first();
  const inGroup = Number((await biggest.locator("td.num").first().innerText()).trim());
  expect(inGroup >= 3, `the largest group holds the ${inGroup} failures of one tool`);
  await page.screenshot({ path: `${shots}/console-dlq-groups.png`, fullPage: true });
  await Promise.all([page.waitForNavigation(), biggest.locator("a").click()]);
  const groupPage = await page.locator("main").innerText();
  expect(groupPage.includes(`${inGroup} matching`) && groupPage.includes("show every group"), `the group's ${inGroup} dead letters: ${groupPage}`);
  seen.largest_group = inGroup;

  // All of a kind, after a confirmation that shows how many.
  const kind = env("REPLAY_KIND");
  await page.goto(`${base}/dlq?kind=${kind}`);
  await Promise.all([page.waitForNavigation(), page.click("text=/Replay all \\d+ matching/")]);
  const confirm = await page.locator("main").innerText();
  const shown = Number((confirm.match(/Replay these (\d+) dead letters/) || [])[1]);
  expect(shown > 0, `a count to confirm: ${confirm}`);
  seen.confirm_count = shown;
  await page.screenshot({ path: `${shots}/console-confirm.png`, fullPage: true });
  await Promise.all([page.waitForNavigation(), page.click(`text=Replay ${shown} dead letters`)]);
  const done = await page.locator("main").innerText();
  expect(done.includes(`Replayed ${shown} of ${shown}`), `all shown replayed: ${done}`);
  seen.replayed_kind = shown;

  // Every answer forbids framing and caching; another site's page cannot frame it.
  const headers = (await context.request.get(`${base}/dlq`)).headers();
  expect(headers["x-frame-options"] === "DENY" && headers["content-security-policy"].includes("frame-ancestors 'none'")
    && headers["cache-control"] === "no-store" && headers["x-content-type-options"] === "nosniff", `security headers: ${JSON.stringify(headers)}`);
  const framer = await context.newPage();
  await framer.setContent(`<iframe src="${base}/dlq" width="800" height="600"></iframe>`);
  await framer.waitForTimeout(1500);
  const framed = framer.frames()[1];
  let framedText = "";
  try { framedText = framed ? await framed.evaluate(() => document.body ? document.body.innerText : "") : ""; } catch { framedText = ""; }
  expect(!framedText.includes("Dead letters"), `the console inside another page's frame: ${framedText}`);
  seen.framed = framedText.slice(0, 80);
  await framer.close();

  // On a phone: nothing wider than the screen, the navigation whole.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, timezoneId: "America/New_York", locale: "en-US" });
  await phone.addCookies(await context.cookies());
  const small = await phone.newPage();
  await small.goto(`${base}/`);
  const width = await small.evaluate(() => document.documentElement.scrollWidth);
  expect(width <= 390, `the overview fits 390 px, it is ${width} px wide`);
  const navRight = await small.evaluate(() => Math.max(...[...document.querySelectorAll("nav a")].map((a) => a.getBoundingClientRect().right)));
  expect(navRight <= 390, `the navigation fits, its right edge at ${navRight}`);
  seen.narrow_width = width;
  await small.screenshot({ path: `${shots}/console-overview-narrow.png`, fullPage: true });
  for (const path of ["/now", "/waiting", "/dlq", "/schedules", `/jobs?jobID=${encodeURIComponent(jobId)}`]) {
    await small.goto(`${base}${path}`);
    const wide = await small.evaluate(() => document.documentElement.scrollWidth);
    expect(wide <= 390, `${path} fits 390 px, it is ${wide} px wide`);
  }
  await phone.close();

  // Schedules: pause and resume one.
  await page.click("nav >> text=Schedules");
  const schedules = await page.locator("main").innerText();
  seen.schedules = schedules;
  if (process.env.SCHEDULE) {
    const line = page.locator("tr", { hasText: process.env.SCHEDULE });
    await Promise.all([page.waitForNavigation(), line.locator("text=Pause").click()]);
    expect((await page.locator("tr", { hasText: process.env.SCHEDULE }).innerText()).includes("paused"), "paused");
    await Promise.all([page.waitForNavigation(), page.locator("tr", { hasText: process.env.SCHEDULE }).locator("text=Resume").click()]);
    expect((await page.locator("tr", { hasText: process.env.SCHEDULE }).innerText()).includes("active"), "active again");
    await Promise.all([page.waitForNavigation(), page.locator("tr", { hasText: process.env.SCHEDULE }).locator("text=Trigger now").click()]);
    seen.schedule_actions = "pause, resume, trigger";
    // The triggered occurrence runs: its outcome shows among the schedule's last runs.
    for (let tries = 0; ; tries++) {
      await page.goto(`${base}/schedules`);
      const runs = await page.locator("tr", { hasText: process.env.SCHEDULE }).locator("td").nth(4).innerText();
      if (/[✓✗]/.test(runs)) {
        expect(/late/.test(runs), `how late the run started: ${runs}`);
        seen.schedule_runs = runs;
        break;
      }
      expect(tries < 60, `the triggered run among the last runs: ${runs}`);
      await page.waitForTimeout(500);
    }
    const next = await page.locator("tr", { hasText: process.env.SCHEDULE }).innerText();
    expect(/\b(CET|CEST)\b/.test(next) && next.includes("UTC"), `the next occurrence on its clock and in UTC: ${next}`);
    await page.screenshot({ path: `${shots}/console-schedules.png`, fullPage: true });
  }
  if (process.env.DELETE_SCHEDULE) {
    const doomed = process.env.DELETE_SCHEDULE;
    await Promise.all([page.waitForNavigation(), page.locator("tr", { hasText: doomed }).locator("text=Delete…").click()]);
    const asked = await page.locator("main").innerText();
    expect(asked.includes(`Delete ${doomed} (`) && asked.includes("fires no more"), `asked to confirm: ${asked}`);
    await Promise.all([page.waitForNavigation(), page.locator("main button", { hasText: "Delete" }).click()]);
    expect(new URL(page.url()).pathname === "/schedules", `back at the schedules: ${page.url()}`);
    expect(await page.locator("tr", { hasText: doomed }).count() === 0, `${doomed} deleted`);
    expect(await page.locator("tr", { hasText: process.env.SCHEDULE }).count() === 1, "the other kept");
    seen.schedule_actions += ", delete";
  }

  // Waiting: a job published to run later is listed; its page says so with its secret
  // hidden; Cancel ends its wait and its page shows the cancellation.
  if (process.env.WAITING_JOB_ID) {
    const waitingId = process.env.WAITING_JOB_ID;
    await page.click("nav >> text=Waiting");
    const row = page.locator("tr", { hasText: waitingId });
    expect(await row.count() === 1, `${waitingId} listed: ${await page.locator("main").innerText()}`);
    await page.screenshot({ path: `${shots}/console-waiting.png`, fullPage: true });
    // No dispatcher runs in this deployment: a waiting job would wait for ever, and the page says so.
    expect((await page.locator("main").innerText()).includes("no active dispatcher"), "the no-dispatcher alarm");
    // Watching: the page reloads itself when asked to, until stopped.
    await Promise.all([page.waitForNavigation(), page.locator("footer a", { hasText: "2 s" }).click()]);
    expect(page.url().endsWith("/waiting?refresh=2"), `asked to reload: ${page.url()}`);
    const reloaded = await page.waitForNavigation({ timeout: 6_000 }).then(() => true, () => false);
    expect(reloaded, "the page reloads itself");
    await Promise.all([page.waitForNavigation(), page.locator("footer a", { hasText: "stop" }).click()]);
    expect(page.url().endsWith("/waiting"), `stopped: ${page.url()}`);
    seen.refresh = "reloads, stops";
    await Promise.all([page.waitForNavigation(), row.locator("a").first().click()]);
    const waits = await page.content();
    expect(waits.includes("for its time") && !waits.includes(secret), "the job's page says it waits, its secret hidden");
    await page.locator("details summary", { hasText: "Job (secrets hidden)" }).click();
    await page.screenshot({ path: `${shots}/console-job-waiting.png`, fullPage: true });
    await Promise.all([page.waitForNavigation(), page.locator("form[action^='/waiting/'] button").click()]);
    const after = await page.locator("main").innerText();
    expect(after.includes("cancelled while waiting"), `the job's page shows its cancellation: ${after}`);
    expect(await page.locator("form[action^='/waiting/']").count() === 0, "no Cancel once cancelled");
    await page.click("nav >> text=Waiting");
    expect(await page.locator("tr", { hasText: waitingId }).count() === 0, "no longer listed");
    seen.waiting = "listed, shown, cancelled";
  }

  // Triage: two dead letters ticked and marked resolved leave the default view; shown
  // again when asked for. Another ticked one is replayed.
  // The kind's replays failed again: wait for their dead letters, so that the newest
  // of each job (the ones ticked) are those, whatever the timing.
  for (let tries = 0; ; tries++) {
    await page.goto(`${base}/dlq`);
    const letters = await page.locator("main table").last().locator("tbody tr", { hasText: "always-fails-" }).count();
    if (letters >= 6) break;
    expect(tries < 60, `the replayed jobs' new dead letters: ${letters} of 6`);
    await page.waitForTimeout(500);
  }
  const ticked = [];
  for (const id of ["always-fails-0", "always-fails-1"]) {
    const row = page.locator("tr", { hasText: id }).first();
    ticked.push((await row.locator("td").first().innerText()).trim());
    await row.locator("input[type=checkbox]").check();
  }
  await Promise.all([page.waitForNavigation(), page.locator("button", { hasText: "Mark selected resolved" }).click()]);
  const resolvedPage = await page.locator("main").innerText();
  expect(resolvedPage.includes("Marked 2 dead letters resolved"), `the resolutions: ${resolvedPage}`);
  await page.reload();
  expect((await page.locator("main").innerText()).includes("Marked 2 dead letters resolved"), "a reload shows the same, doing nothing");
  // Positions compared whole, as the first cell of each row (a time like 09:51:26
  // holds "1:2").
  const positionsListed = async () => (await page.locator("main table").last().locator("tbody tr td:first-child").allInnerTexts())
    .map((text) => text.trim());
  await page.goto(`${base}/dlq`);
  const listed = await positionsListed();
  expect(ticked.every((position) => !listed.includes(position)), `resolved ones (${ticked}) left the default view: ${listed}`);
  await page.click("text=Show them");
  const shownAll = await positionsListed();
  expect(ticked.every((position) => shownAll.includes(position)) && (await page.locator("main").innerText()).includes("resolved"),
    `shown when asked (${ticked}): ${shownAll}`);
  await page.screenshot({ path: `${shots}/console-dlq-resolved.png`, fullPage: true });
  await page.goto(`${base}/dlq`);
  const other = page.locator("tr", { hasText: "always-fails-2" }).first();
  await other.locator("input[type=checkbox]").check();
  await Promise.all([page.waitForNavigation(), page.locator("button", { hasText: "Replay selected" }).click()]);
  expect((await page.locator("main").innerText()).includes("Replayed 1 of 1"), "the ticked one replayed");
  seen.triage = { resolved: ticked, replayed: 1 };

  // Logging out ends the session: Back shows no cached page, a copied cookie is refused.
  const copied = (await context.cookies()).find((c) => c.name === "mcp_jobs_console");
  await page.goto(letterPage);
  await Promise.all([page.waitForNavigation(), page.click("text=Log out")]);
  expect(new URL(page.url()).pathname === "/login", `at the login form after logout: ${page.url()}`);
  const back = await page.goBack();
  seen.back_after_logout = back ? back.status() : null;
  expect(await page.locator("input[name=key]").count() === 1 && !(await page.content()).includes(secret) && !(await page.content()).includes("Original message"),
    "Back after logout shows the login form, not the dead letter");
  const replayedCookie = await context.request.get(`${base}/dlq`, { headers: { cookie: `mcp_jobs_console=${copied.value}` } });
  seen.copied_cookie = replayedCookie.status();
  expect(replayedCookie.status() === 401, `a cookie copied before logout is refused, got ${replayedCookie.status()}`);
  expect(seen.csp_violations.length === 0, `no Content-Security-Policy violation: ${seen.csp_violations}`);
}

async function now(page) {
  const running = env("RUNNING_JOB_ID");
  const retrying = env("RETRYING_JOB_ID");
  const shots = env("SCREENSHOT_DIR");
  const section = (title) => page.locator(`h2:text-is("${title}") + table`);
  // The workers report as the jobs go: reload until both are in flight.
  for (let tries = 0; ; tries++) {
    await page.goto(`${base}/now`);
    const both = await section("Running").locator("tr", { hasText: running }).count() === 1
      && await section("Retrying").locator("tr", { hasText: retrying }).count() === 1;
    if (both) break;
    expect(tries < 60, `both jobs in flight on the Now page: ${await page.locator("main").innerText()}`);
    await page.waitForTimeout(500);
  }
  const runningRow = await section("Running").locator("tr", { hasText: running }).innerText();
  expect(runningRow.includes("fx/sleep") && /ago/.test(runningRow), `the running job's calls and since: ${runningRow}`);
  const retryingRow = await section("Retrying").locator("tr", { hasText: retrying }).innerText();
  expect(retryingRow.includes("failing on purpose") && /in \d+ s|ago/.test(retryingRow), `the retried job's error and next attempt: ${retryingRow}`);
  seen.now = { running: runningRow, retrying: retryingRow };
  await page.screenshot({ path: `${shots}/console-now.png`, fullPage: true });

  await Promise.all([page.waitForNavigation(), section("Running").locator("a", { hasText: running }).click()]);
  const runs = await page.locator("main").innerText();
  expect(runs.includes("running attempt 1"), `the job's page says it runs: ${runs}`);
  for (let tries = 0; ; tries++) {
    await page.reload();
    if ((await page.locator("main").innerText()).includes("Outcome 1 of 1: succeeded")) break;
    expect(tries < 60, `the running job finishes: ${await page.locator("main").innerText()}`);
    await page.waitForTimeout(500);
  }
  expect(await page.locator("text=running attempt").count() === 0, "no longer running once finished");
  for (let tries = 0; ; tries++) {
    await page.goto(`${base}/jobs?jobID=${encodeURIComponent(retrying)}`);
    if ((await page.locator("main").innerText()).includes("Outcome 1 of 1: succeeded")) break;
    expect(tries < 60, `the retried job finishes: ${await page.locator("main").innerText()}`);
    await page.waitForTimeout(500);
  }
  // Times in the viewer's zone (New York in December: EST), with how long ago; UTC on hover.
  const started = await page.locator("dt:text-is('started') + dd time").first();
  const shown = await started.innerText();
  expect(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d EST \(\d+ (s|min) ago\)$/.test(shown), `a time in the viewer's zone: ${shown}`);
  expect((await started.getAttribute("title")).endsWith(" UTC"), "UTC on hover");
  seen.local_time = shown;
  const attempts = await page.locator("table.attempts tbody tr").allInnerTexts();
  expect(attempts.length === 3 && attempts[0].includes("failing on purpose") && attempts[2].includes("succeeded"),
    `each attempt told: ${attempts}`);
  seen.attempts = attempts;
  await page.screenshot({ path: `${shots}/console-job-attempts.png`, fullPage: true });
  await page.goto(`${base}/now`);
  expect(await page.locator("tr", { hasText: running }).count() === 0, "gone from the Now page");
  expect(seen.csp_violations.length === 0, `no Content-Security-Policy violation: ${seen.csp_violations}`);
}

async function readOnly(page) {
  await page.goto(`${base}/dlq`);
  const list = await page.locator("main").innerText();
  expect(await page.locator("text=read-only").count() >= 1, "the read-only badge");
  expect(await page.locator("form[action='/dlq/replay/preview']").count() === 0, `no replay offered: ${list}`);
  const link = page.locator("tbody tr td:first-child a").first();
  await Promise.all([page.waitForNavigation(), link.click()]);
  expect(await page.locator("form[action='/dlq/replay']").count() === 0, "no replay button on a dead letter");
  // Even with the session's own token, an action is refused.
  const csrf = await page.locator("input[name=csrf]").first().inputValue();
  const status = await submit(page, `${base}/dlq/replay`, { csrf, positions: "0:0" });
  seen.read_only_action = status;
  expect(status === 403, `403 for an action in read-only mode, got ${status}`);
  expect((await page.locator("main").innerText()).includes("read-only"), "says why");
}

// Submits a form built in the page (as another page's form would be): the status.
async function submit(page, action, fields) {
  const [response] = await Promise.all([
    page.waitForNavigation(),
    page.evaluate(({ action, fields }) => {
      const form = document.createElement("form");
      form.method = "post";
      form.action = action;
      for (const [name, value] of Object.entries(fields)) {
        const input = document.createElement("input");
        input.type = "hidden";
        input.name = name;
        input.value = value;
        form.appendChild(input);
      }
      document.body.appendChild(form);
      form.submit();
    }, { action, fields }),
  ]);
  return response.status();
}
