// Drives the console in Debian's chromium (playwright-core, no browser download) the
// way an operator would. Run by tests/tests/console_web.rs, which starts the broker,
// mcp-server, a worker and the console, and reads what this prints.
//
//   CONSOLE_URL, CONSOLE_KEY   where the console is and a key it accepts
//   MODE=operate               log in, search JOB_ID, open DLQ_JOB_ID's dead letter (its
//                              SECRET must be redacted), replay it and see the replay's
//                              outcome, replay a kind after confirming; screenshots to
//                              SCREENSHOT_DIR
//   MODE=read-only             401 before login, no action offered, a forged action 403
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
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);

  // Not logged in: the login form, with 401.
  const first = await page.goto(`${base}/dlq`);
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
  expect(new URL(page.url()).pathname === "/dlq", `back on /dlq after login, at ${page.url()}`);
  const cookie = (await context.cookies()).find((c) => c.name === "mcp_jobs_console");
  expect(cookie && cookie.httpOnly && cookie.sameSite === "Strict", `an HttpOnly SameSite=Strict cookie: ${JSON.stringify(cookie)}`);
  seen.cookie = { httpOnly: cookie.httpOnly, sameSite: cookie.sameSite, secure: cookie.secure };
  expect(!cookie.value.includes(key), "a cookie that does not hold the key");

  if (mode === "operate") {
    await operate(page, context);
  } else if (mode === "read-only") {
    await readOnly(page);
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

  // A forged form (another session's token) is refused.
  const forged = await submit(page, page.url().replace(/\/dlq\/.*/, "/dlq/replay"), { csrf: "00", positions: "0:0" });
  seen.forged_csrf = forged;
  expect(forged === 403, `403 for a wrong CSRF token, got ${forged}`);
  await page.goBack();

  // Replay it, then follow the job until the replay's outcome is there.
  await Promise.all([page.waitForNavigation(), page.click("text=Replay this dead letter")]);
  const replayed = await page.locator("main").innerText();
  expect(replayed.includes("Replayed 1 of 1"), `one replayed: ${replayed}`);
  const deadline = Date.now() + 90_000;
  let outcome = "";
  while (Date.now() < deadline) {
    await page.goto(`${base}/jobs?jobID=${encodeURIComponent(dlqJobId)}`);
    outcome = await page.locator("main").innerText();
    if (outcome.includes("replay of")) break;
    await page.waitForTimeout(1000);
  }
  expect(outcome.includes("replay of") && outcome.includes("succeeded"), `the replay's outcome, succeeded: ${outcome}`);
  seen.replay_outcome = outcome;
  await page.screenshot({ path: `${shots}/console-job.png`, fullPage: true });

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
    await page.screenshot({ path: `${shots}/console-schedules.png`, fullPage: true });
  }
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
