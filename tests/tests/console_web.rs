//! The console in a real browser: Debian's chromium driven by Playwright
//! (`tests/node/console-browser.mjs`) against a `kafka-worker console` process, with
//! a real broker, worker and mcp-server behind it. An operator logs in, finds a job,
//! opens a dead letter (its job's secrets redacted), replays it and sees the replay's
//! outcome, replays a whole kind after confirming, and pauses, resumes and triggers a
//! schedule; a read-only console offers and accepts no action. The screenshots in
//! `docs/` are made here.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mcp_jobs_e2e::{
    enqueue, fixture, fixture_job, free_port, publish_later, start_console, wait_for,
    worker_cli_ok, Broker, Deployment, McpServer, Record, Running,
};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{json, Value};

const MINUTE: Duration = Duration::from_secs(60);
const SECRET: &str = "tok-5ecret-never-shown";
/// The job's own secret in a payload given as a string, and a bearer token in one of
/// its Kafka headers.
const STRING_SECRET: &str = "pa55word-xyz";
const HEADER_SECRET: &str = "sekret-bearer-123";

/// Runs the browser script in `mode`: what it saw.
fn browse(mode: &str, port: u16, key: &str, env: &[(&str, &str)]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("node/console-browser.mjs");
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("node/node_modules/playwright-core")
            .exists(),
        "playwright-core is missing: run scripts/install-deps.sh"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is missing: run scripts/install-deps.sh"
    );
    let output = Command::new("node")
        .arg(&script)
        .env("MODE", mode)
        // localhost: a Secure cookie is kept over plain HTTP there.
        .env("CONSOLE_URL", format!("http://localhost:{port}"))
        .env("CONSOLE_KEY", key)
        .envs(env.iter().copied())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser script failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("a JSON line")
}

fn produce_jobs(
    broker: &Broker,
    topic: &str,
    jobs: &[(Option<&str>, Value, Option<OwnedHeaders>)],
) {
    let producer: BaseProducer = broker.client_config().create().expect("producer");
    for (key, job, headers) in jobs {
        let payload = serde_json::to_vec(job).expect("json");
        let mut record = BaseRecord::<str, [u8]>::to(topic).payload(payload.as_slice());
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(headers) = headers {
            record = record.headers(headers.clone());
        }
        enqueue(&producer, record).expect("enqueue");
    }
    producer.flush(MINUTE).expect("flush");
}

#[test]
fn an_operator_finds_a_job_replays_a_dead_letter_and_sees_its_outcome_in_a_browser() {
    // mcp-server-time is not allowed at first: its job is dead-lettered.
    let deployment = Deployment::new("console-web")
        .partitions(2)
        .server_env(&[
            ("MCP_ALLOWED_COMMANDS", &fixture()),
            ("MCP_ALLOWED_REMOTE_HOSTS", "127.0.0.1"),
        ])
        .worker_env(&[("JOB_MAX_ATTEMPTS", "1")])
        .start();
    // By value: the server is stopped and started again on its port.
    let Running {
        broker,
        topic,
        group,
        server,
        worker: _worker,
    } = deployment;
    let port = server.port;
    let needs_time = json!({
        "jobID": "needs-time", "jobType": "tool-call",
        "payload": {"mcpServers": {"time": {"command": "mcp-server-time", "env": {"TIME_TOKEN": SECRET}}},
                    "server": "time", "tool": "get_current_time", "arguments": {"timezone": "UTC"}}
    });
    let tenant = OwnedHeaders::new().insert(Header {
        key: "tenant",
        value: Some("seven"),
    });
    // The seed's own form: the payload as a JSON string. `nc` is not allowed.
    let string_payload = json!({"mcpServers": {"t": {"command": "nc", "env": {"DB_PASSWORD": STRING_SECRET}}},
        "server": "t", "tool": "x", "arguments": {"pw": STRING_SECRET}});
    let string_job = json!({"jobID": "string-payload", "jobType": "tool-call", "payload": string_payload.to_string()});
    let bearer = format!("Bearer {HEADER_SECRET}");
    let authorization = OwnedHeaders::new().insert(Header {
        key: "authorization",
        value: Some(bearer.as_str()),
    });
    // A remote server nobody listens on: its error must read as one sentence.
    let closed = free_port();
    let unreachable = json!({
        "jobID": "unreachable", "jobType": "tool-call",
        "payload": {"mcpServers": {"far": {"url": format!("http://127.0.0.1:{closed}/mcp")}},
                    "server": "far", "tool": "x", "arguments": {}}
    });
    let mut jobs = vec![
        (Some("tenant-7"), needs_time, Some(tenant)),
        (None, string_job, Some(authorization)),
        (None, unreachable, None),
        (
            None,
            fixture_job("find-me", "echo", json!({"text": "found"})),
            None,
        ),
    ];
    for n in 0..3 {
        jobs.push((
            None,
            fixture_job(&format!("always-fails-{n}"), "fail", json!({})),
            None,
        ));
    }
    for n in 0..40 {
        jobs.push((
            None,
            fixture_job(&format!("echo-{n}"), "echo", json!({"text": n.to_string()})),
            None,
        ));
    }
    produce_jobs(&broker, &topic, &jobs);
    broker.read(&format!("{topic}.results"), jobs.len(), MINUTE);

    // A schedule far from due, to pause, resume and trigger.
    let schedules = tempfile::Builder::new()
        .suffix(".json")
        .tempfile()
        .expect("temp file");
    let mut job = fixture_job("", "echo", json!({"text": "report"}));
    job.as_object_mut().map(|fields| fields.remove("jobID"));
    let nightly = json!({"schedules": [
        {"name": "nightly-report", "cron": "0 3 * * *", "timezone": "Europe/Berlin", "job": job},
        {"name": "old-report", "cron": "0 4 * * 1", "job": job}
    ]});
    std::fs::write(schedules.path(), nightly.to_string()).expect("write");
    let path = schedules.path().display().to_string();
    worker_cli_ok(&broker, &topic, &["schedules", "apply", &path]);

    // A job to run in an hour, with a secret: waiting, to be cancelled.
    let mut waiting = fixture_job("runs-later", "echo", json!({"text": "later"}));
    waiting["payload"]["mcpServers"]["fx"]["env"] = json!({"LATER_TOKEN": SECRET});
    publish_later(&broker, &topic, &waiting, "1h");

    // The operator fixes the cause: mcp-server-time is allowed.
    drop(server);
    let _server = McpServer::start_on(port, &[]);
    let console_port = free_port();
    let console = start_console(
        &broker,
        &topic,
        console_port,
        &[
            ("CONSOLE_API_KEYS", "first-key,second-key"),
            ("MCP_CONSUMER_GROUP", &group),
            ("MCP_SERVER_URL", &format!("http://127.0.0.1:{port}/mcp")),
        ],
    );
    // The console follows the delayed topic: the job waits there once a worker moved it.
    wait_for("the console to list the waiting job", MINUTE, || {
        let listed: Value = reqwest::blocking::Client::new()
            .get(format!("http://127.0.0.1:{console_port}/api/delayed"))
            .bearer_auth("first-key")
            .send()
            .ok()?
            .json()
            .ok()?;
        (listed["total"] == 1).then_some(())
    });
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    std::fs::create_dir_all(&shots).expect("docs/");
    let seen = browse(
        "operate",
        console_port,
        "second-key",
        &[
            ("JOB_ID", "find-me"),
            ("DLQ_JOB_ID", "needs-time"),
            ("SECRET", SECRET),
            ("STRING_JOB_ID", "string-payload"),
            (
                "STRING_SECRETS",
                &format!("{STRING_SECRET},{HEADER_SECRET}"),
            ),
            ("REPLAY_KIND", "tool_error"),
            ("SCHEDULE", "nightly-report"),
            ("DELETE_SCHEDULE", "old-report"),
            ("WAITING_JOB_ID", "runs-later"),
            ("SCREENSHOT_DIR", &shots.display().to_string()),
        ],
    );
    assert_eq!(seen["before_login"], 401, "{seen:#}");
    assert_eq!(seen["after_login"], "/dlq?kind=tool_error", "{seen:#}");
    assert_eq!(seen["resubmitted"], 200, "{seen:#}");
    assert_eq!(seen["copied_cookie"], 401, "{seen:#}");
    assert!(
        seen["narrow_width"].as_u64().is_some_and(|w| w <= 390),
        "{seen:#}"
    );
    assert_eq!(seen["cookie"]["httpOnly"], true, "{seen:#}");
    assert_eq!(seen["forged_csrf"], 403, "{seen:#}");
    assert_eq!(seen["confirm_count"], 3, "{seen:#}");
    assert_eq!(seen["waiting"], "listed, shown, cancelled", "{seen:#}");
    assert_eq!(seen["refresh"], "reloads, stops", "{seen:#}");
    assert!(seen["largest_group"].as_u64() >= Some(3), "{seen:#}");
    assert_eq!(
        seen["schedule_actions"], "pause, resume, trigger, delete",
        "{seen:#}"
    );
    assert!(
        seen["schedule_runs"]
            .as_str()
            .is_some_and(|runs| runs.contains('✓') && runs.contains("late")),
        "the triggered run among the schedule's last runs: {seen:#}"
    );
    let overview = seen["overview"].as_str().unwrap_or_default();
    assert!(
        overview.contains("rdkafka") || overview.contains(&group),
        "{overview}"
    );
    // mcp-server's figures read as sentences and tables, not as JSON; the lag as a figure.
    assert!(
        overview.contains("children running of at most")
            && overview.contains("calls in flight")
            && !overview.contains("pool.servers"),
        "mcp-server's figures: {overview}"
    );
    assert!(overview.contains("Lag now: "), "the lag now: {overview}");
    assert_eq!(seen["triage"]["replayed"], 1, "{seen:#}");
    for shot in [
        "console-dlq-resolved.png",
        "console-overview.png",
        "console-overview-narrow.png",
        "console-job.png",
        "console-confirm.png",
        "console-dead-letter-string-payload.png",
        "console-waiting.png",
        "console-dlq-groups.png",
        "console-job-waiting.png",
    ] {
        assert!(
            shots.join(shot).metadata().is_ok_and(|m| m.len() > 10_000),
            "{shot}"
        );
    }

    // What the browser did reached Kafka: the replay ran and succeeded, each
    // tool_error dead letter went back once, the trigger published a job.
    let results: Vec<Value> = broker
        .read_all(&format!("{topic}.results"))
        .iter()
        .map(Record::json)
        .collect();
    let replays: Vec<&Value> = results
        .iter()
        .filter(|o| o.get("replayOf").is_some())
        .collect();
    assert!(
        replays
            .iter()
            .any(|o| o["jobID"] == "needs-time" && o["status"] == "succeeded"),
        "{replays:#?}"
    );
    wait_for("the kind's replays and the trigger to run", MINUTE, || {
        let results: Vec<Value> = broker
            .read_all(&format!("{topic}.results"))
            .iter()
            .map(Record::json)
            .collect();
        let again = results
            .iter()
            .filter(|o| o.get("replayOf").is_some() && o["error"]["kind"] == "tool_error")
            .count();
        let triggered = results.iter().any(|o| {
            o["jobID"]
                .as_str()
                .is_some_and(|id| id.starts_with("nightly-report@"))
        });
        // The kind's three, and the one ticked and replayed in triage.
        (again == 4 && triggered).then_some(())
    });
    // The replayed dead letter went back once: not again on reload or resubmission.
    let needs_time_runs = broker
        .read_all(&topic)
        .iter()
        .filter(|r| r.json()["jobID"] == "needs-time")
        .count();
    assert_eq!(needs_time_runs, 2, "the original and one replay");

    // The unreachable server's error is one sentence about the cause.
    let unreachable = results
        .iter()
        .find(|o| o["jobID"] == "unreachable")
        .expect("the unreachable job's outcome");
    let message = unreachable["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!(
            "could not connect to http://127.0.0.1:{closed}/mcp: connection refused"
        )) && !message.contains("::")
            && !message.contains("Transport ["),
        "{message}"
    );

    // The tool_error dead letters replayed failed again: a replay of the kind now takes
    // only the new ones, unless asked for those replayed before too; never the two
    // resolved in triage. Of the three new ones, two were resolved and one replayed
    // (and failed once more): 1 unreplayed; with the replayed ones, the three first,
    // that replayed one and its newest: 5.
    let api = format!("http://127.0.0.1:{console_port}/api/dlq/replay");
    let dry_run = |include_replayed: bool| -> Value {
        reqwest::blocking::Client::new()
            .post(&api)
            .bearer_auth("first-key")
            .json(
                &json!({"kind": "tool_error", "dryRun": true, "includeReplayed": include_replayed}),
            )
            .send()
            .and_then(|r| r.json())
            .expect("dry run")
    };
    // A result record and its dead letter are written side by side: the last replay's
    // dead letter may land just after its result.
    wait_for("the last replay's dead letter", MINUTE, || {
        (dry_run(false)["replayed"] == 1).then_some(())
    });
    assert_eq!(dry_run(true)["replayed"], 5, "{:#}", dry_run(true));

    let log = console.output();
    assert!(
        log.contains("console action") && log.contains("key #2") && log.contains("dlq replay"),
        "{log}"
    );
    for secret in [SECRET, STRING_SECRET, HEADER_SECRET] {
        assert!(!log.contains(secret), "{log}");
    }
}

#[test]
fn a_read_only_console_asks_for_a_login_and_refuses_every_action() {
    let deployment = Deployment::new("console-ro")
        .worker_env(&[("JOB_MAX_ATTEMPTS", "1")])
        .start();
    let (broker, topic, _) = deployment.parts();
    produce_jobs(
        broker,
        topic,
        &[(None, fixture_job("fails", "fail", json!({})), None)],
    );
    broker.read(&format!("{topic}.dlq"), 1, MINUTE);
    let console_port = free_port();
    let _console = start_console(
        broker,
        topic,
        console_port,
        &[
            ("CONSOLE_API_KEYS", "only-key"),
            ("CONSOLE_READ_ONLY", "true"),
        ],
    );
    let jobs_before = broker.read_all(topic).len();
    let seen = browse("read-only", console_port, "only-key", &[]);
    assert_eq!(seen["api_without_key"], 401, "{seen:#}");
    assert_eq!(seen["wrong_key"], 401, "{seen:#}");
    assert_eq!(seen["read_only_action"], 403, "{seen:#}");
    assert_eq!(
        broker.read_all(topic).len(),
        jobs_before,
        "something was replayed"
    );
}

/// What is happening now, in a browser: a slow job seen running, then finished; a
/// failing one seen retrying with its error and next attempt, then its outcome telling
/// each attempt.
#[test]
fn an_operator_sees_jobs_running_and_retrying_then_their_outcomes() {
    let deployment = Deployment::new("console-now-web")
        .worker_env(&[
            ("JOB_MAX_ATTEMPTS", "3"),
            ("JOB_RETRY_BACKOFF_MS", "8000"),
            ("RETRY_MAX_BACKOFF_MS", "8000"),
        ])
        .start();
    let (broker, topic, _) = deployment.parts();
    let console_port = free_port();
    let _console = start_console(
        broker,
        topic,
        console_port,
        &[("CONSOLE_API_KEYS", "now-key")],
    );
    produce_jobs(
        broker,
        topic,
        &[
            (
                Some("slow"),
                fixture_job("slow-web", "sleep", json!({"ms": 15000})),
                None,
            ),
            (
                Some("flaky"),
                fixture_job("flaky-web", "fail", json!({"succeed_from_attempt": 3})),
                None,
            ),
        ],
    );
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let seen = browse(
        "now",
        console_port,
        "now-key",
        &[
            ("RUNNING_JOB_ID", "slow-web"),
            ("RETRYING_JOB_ID", "flaky-web"),
            ("SCREENSHOT_DIR", &shots.display().to_string()),
        ],
    );
    assert_eq!(
        seen["attempts"].as_array().map(Vec::len),
        Some(3),
        "{seen:#}"
    );
}
