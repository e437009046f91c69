//! kafka-worker end to end: real broker, real mcp-server, real `mcp-server-time` child.

use std::collections::HashMap;
use std::time::Duration;

use mcp_jobs_e2e::{
    headers, results_by_job, start_worker, wait_for, Broker, Deployment, McpServer, Outcome,
    Running, Status,
};
use serde_json::{json, Value};

const MINUTE: Duration = Duration::from_secs(60);

/// An hour-long auto-commit interval: the worker stores offsets, but only a shutdown
/// commit (never a background one) can reach the broker during a test.
const NO_BACKGROUND_COMMITS: (&str, &str) = ("RDKAFKA_AUTO_COMMIT_INTERVAL_MS", "3600000");

/// A job in the seed's shape (payload as a JSON string, envFile included), pointed at mcp-server-time.
fn seed_style_job(job_id: &str) -> Vec<u8> {
    let payload = json!({
        "mcpServers": {
            "time": { "command": "mcp-server-time", "args": ["--local-timezone", "UTC"], "envFile": "time.env" }
        }
    });
    serde_json::to_vec(
        &json!({ "jobID": job_id, "jobType": "server-init", "payload": payload.to_string() }),
    )
    .expect("json")
}

fn time_call(job_id: &str, timezone: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "jobID": job_id,
        "jobType": "tool-call",
        "payload": {
            "mcpServers": { "time": { "command": "mcp-server-time", "args": ["--local-timezone", "UTC"] } },
            "server": "time", "tool": "get_current_time", "arguments": { "timezone": timezone }
        }
    }))
    .expect("json")
}

fn env_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("time.env"), "TZ=UTC\n").expect("env file");
    dir
}

#[test]
fn seed_style_job_succeeds_and_its_offset_is_committed() {
    let envs = env_dir();
    let deployment = Deployment::new("seed")
        .server_env(&[("MCP_ENV_DIR", envs.path().to_str().expect("utf-8 path"))])
        .start();
    let (broker, topic, group) = deployment.parts();

    broker.produce(topic, &[(None, &seed_style_job("seed-1"))]);
    let results = results_by_job(broker, topic, 1, MINUTE);
    let result = &results[0];
    assert_eq!(result.status, Status::Succeeded, "{result:#?}");
    assert_eq!(result.job_id.as_deref(), Some("seed-1"));
    assert_eq!(result.job_type.as_deref(), Some("server-init"));
    assert_eq!(
        result.result("time").expect("time answered")["serverInfo"]["name"],
        "mcp-time",
        "{result:#?}"
    );
    let tools: Vec<&str> = result.result("time").expect("time answered")["tools"]
        .as_array()
        .expect("tool list")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(tools.contains(&"get_current_time"), "{tools:?}");

    wait_for("the offset after the job to be committed", MINUTE, || {
        (broker.committed(group, topic, 1) == [Some(1)]).then_some(())
    });
}

#[test]
fn bad_messages_are_dead_lettered_with_reasons_and_good_ones_succeed() {
    let mut deployment = Deployment::new("mixed")
        .partitions(2)
        .server_env(&[(
            "MCP_ALLOWED_COMMANDS",
            "mcp-server-time,/nonexistent/mcp-server",
        )])
        .worker_env(&[("MAX_MESSAGE_BYTES", "4096")])
        .start();
    let Running {
        broker,
        topic,
        worker,
        ..
    } = &mut deployment;

    let oversized = serde_json::to_vec(&json!({
        "jobID": "too-big", "jobType": "tool-call",
        "payload": { "mcpServers": { "time": { "command": "mcp-server-time" } }, "server": "time",
                     "tool": "get_current_time", "arguments": { "padding": "x".repeat(5000) } }
    }))
    .expect("json");
    let bad: Vec<(&str, Vec<u8>, &str)> = vec![
        ("malformed", b"{\"jobID\": \"malformed\", ".to_vec(), "malformed_json"),
        ("not-utf8", b"{\"jobID\":\"\xff\xfe\"}".to_vec(), "not_utf8"),
        ("empty", Vec::new(), "malformed_json"),
        ("no-type", br#"{"jobID":"no-type","payload":{}}"#.to_vec(), "missing_field"),
        ("bad-type", br#"{"jobID":"bad-type","jobType":"explode","payload":{}}"#.to_vec(), "unknown_job_type"),
        ("wrong-types", br#"{"jobID":"wrong-types","jobType":"server-init","payload":{"mcpServers":{"t":{"command":"mcp-server-time","args":"--x"}}}}"#.to_vec(), "invalid_field"),
        ("both", br#"{"jobID":"both","jobType":"server-init","payload":{"mcpServers":{"t":{"command":"x","url":"http://h/mcp"}}}}"#.to_vec(), "invalid_field"),
        ("unknown-server", br#"{"jobID":"unknown-server","jobType":"tool-call","payload":{"mcpServers":{"time":{"command":"mcp-server-time"}},"server":"clock","tool":"get_current_time"}}"#.to_vec(), "unknown_server"),
        ("too-big", oversized, "too_large"),
        ("not-allowed", br#"{"jobID":"not-allowed","jobType":"server-init","payload":{"mcpServers":{"sh":{"command":"sh","args":["-c","echo pwned"]}}}}"#.to_vec(), "refused"),
        ("cwd-refused", br#"{"jobID":"cwd-refused","jobType":"list-tools","payload":{"mcpServers":{"time":{"command":"mcp-server-time","cwd":"/tmp"}}}}"#.to_vec(), "refused"),
        ("env-refused", br#"{"jobID":"env-refused","jobType":"list-tools","payload":{"mcpServers":{"time":{"command":"mcp-server-time","env":{"LD_PRELOAD":"/tmp/x.so"}}}}}"#.to_vec(), "refused"),
        ("cannot-start", br#"{"jobID":"cannot-start","jobType":"list-tools","payload":{"mcpServers":{"gone":{"command":"/nonexistent/mcp-server"}}}}"#.to_vec(), "upstream_unavailable"),
        ("tool-error", time_call("tool-error", "Not/AZone"), "tool_error"),
    ];
    let good: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| {
            let id = format!("good-{i}");
            let job = time_call(&id, "Europe/Paris");
            (id, job)
        })
        .collect();

    // Interleave: bad, good, bad, good…
    let mut records: Vec<(Option<&str>, &[u8])> = Vec::new();
    let mut good_iter = good.iter();
    for (id, bytes, _) in &bad {
        records.push((Some(id), bytes));
        if let Some((id, bytes)) = good_iter.next() {
            records.push((Some(id), bytes));
        }
    }
    broker.produce(topic, &records);

    let total = bad.len() + good.len();
    let results = broker.read(&format!("{topic}.results"), total, 2 * MINUTE);
    assert_eq!(results.len(), total);
    let by_key: HashMap<String, Outcome> = results
        .iter()
        .map(|r| {
            (
                r.key.clone().expect("result records are keyed"),
                r.outcome(),
            )
        })
        .collect();
    for (id, _) in &good {
        assert_eq!(
            by_key[id].status,
            Status::Succeeded,
            "{id:?}: {:#?}",
            by_key[id]
        );
        assert_eq!(
            by_key[id].result("time").expect("time answered")["structuredContent"]["timezone"],
            "Europe/Paris"
        );
    }
    for (id, _, kind) in &bad {
        let result = &by_key[*id];
        assert_eq!(result.status, Status::Failed, "{id:?}: {result:#?}");
        assert_eq!(result.error_kind(), Some(*kind), "{id}: {result:#?}");
        assert!(
            !result.error_message().unwrap_or_default().is_empty(),
            "{id} has no reason"
        );
    }

    let dead_letters = broker.read(&format!("{topic}.dlq"), bad.len(), MINUTE);
    assert_eq!(
        dead_letters.len(),
        bad.len(),
        "exactly the bad messages are dead-lettered"
    );
    for letter in &dead_letters {
        let id = letter.key.as_deref().expect("original key kept");
        let (_, original, kind) = bad
            .iter()
            .find(|(k, _, _)| *k == id)
            .expect("a bad message");
        assert_eq!(&letter.payload, original, "{id}: the original bytes");
        assert_eq!(letter.header(headers::ERROR_KIND), Some(*kind), "{id}");
        assert!(
            letter.header(headers::ERROR).is_some_and(|e| !e.is_empty()),
            "{id}"
        );
        assert_eq!(letter.header(headers::SOURCE_TOPIC), Some(topic.as_str()));
        assert!(letter.header(headers::SOURCE_OFFSET).is_some());
    }
    assert!(worker.is_running(), "the worker survived every bad message");
}

#[test]
fn a_worker_killed_before_committing_leaves_the_job_to_the_next() {
    let broker = Broker::start();
    let topic = broker.name("crash");
    let group = broker.name("g-crash");
    broker.create_job_topics(&topic, 1);
    let server = McpServer::start(&[]);
    // This worker never gets to commit before it is killed.
    let mut doomed = start_worker(
        &broker,
        &server.url(),
        &topic,
        &group,
        &[NO_BACKGROUND_COMMITS],
    );
    broker.produce(&topic, &[(Some("k"), &time_call("redo-me", "UTC"))]);
    let first = results_by_job(&broker, &topic, 1, MINUTE);
    assert_eq!(first[0].status, Status::Succeeded);
    doomed.kill9();
    assert_eq!(
        broker.committed(&group, &topic, 1),
        [None],
        "nothing was committed before the crash"
    );

    let mut next = start_worker(&broker, &server.url(), &topic, &group, &[]);
    let both = results_by_job(&broker, &topic, 2, 2 * MINUTE);
    assert!(
        both.iter()
            .all(|r| r.job_id.as_deref() == Some("redo-me") && r.status == Status::Succeeded),
        "{both:#?}"
    );
    assert_ne!(
        both[0].worker, both[1].worker,
        "the second worker redid the job"
    );
    wait_for("the redone job's offset to be committed", MINUTE, || {
        (broker.committed(&group, &topic, 1) == [Some(1)]).then_some(())
    });
    let status = next.terminate(Duration::from_secs(30));
    assert!(status.success(), "SIGTERM is a clean exit: {status}");
}

#[test]
fn an_unreachable_mcp_server_is_retried_never_dead_lettered() {
    let broker = Broker::start();
    let topic = broker.name("outage");
    let group = broker.name("g-outage");
    broker.create_job_topics(&topic, 1);
    // The worker points at a port where nothing listens yet.
    let port = mcp_jobs_e2e::free_port();
    let worker = start_worker(
        &broker,
        &format!("http://127.0.0.1:{port}/mcp"),
        &topic,
        &group,
        &[],
    );
    broker.produce(&topic, &[(None, &time_call("patient", "UTC"))]);
    // Several failed attempts (backoff is capped at 1 s here) before mcp-server exists.
    worker.wait_for_output("mcp-server unavailable, retrying", 3, MINUTE);
    assert_eq!(
        broker.committed(&group, &topic, 1),
        [None],
        "no commit past an unfinished job"
    );
    assert!(
        broker.read_all(&format!("{topic}.results")).is_empty(),
        "no outcome while mcp-server is down"
    );

    let _server = McpServer::start_on(port, &[]);
    let results = results_by_job(&broker, &topic, 1, MINUTE);
    assert_eq!(results[0].status, Status::Succeeded, "{:#?}", results[0]);
    let dead = broker.read_all(&format!("{topic}.dlq"));
    assert!(
        dead.is_empty(),
        "nothing dead-lettered for an outage: {dead:?}"
    );
}

#[test]
fn sigterm_commits_finished_work_and_exits_cleanly() {
    let mut deployment = Deployment::new("stop")
        .worker_env(&[NO_BACKGROUND_COMMITS])
        .start();
    let Running {
        broker,
        topic,
        group,
        worker,
        ..
    } = &mut deployment;
    broker.produce(topic, &[(None, &time_call("finish-me", "UTC"))]);
    let results = results_by_job(broker, topic, 1, MINUTE);
    assert_eq!(results[0].status, Status::Succeeded);
    assert_eq!(broker.committed(group, topic, 1), [None]);

    let status = worker.terminate(Duration::from_secs(30));
    assert!(status.success(), "SIGTERM is a clean exit: {status}");
    assert_eq!(
        broker.committed(group, topic, 1),
        [Some(1)],
        "the shutdown commit stored the finished job"
    );
}

/// `kafka-worker config` needs no broker and no valid configuration: it shows what the
/// environment gives (what validate-deploy reads defaults from), never a secret.
#[test]
fn config_shows_settings_and_defaults_without_secrets() {
    let run = |args: &[&str]| -> Value {
        let output = std::process::Command::new(mcp_jobs_e2e::bin("kafka-worker"))
            .args(args)
            .env_clear()
            .env("MCP_API_KEY", "worker-secret")
            .env("CONSOLE_API_KEYS", "console-secret")
            .env("REDIS_URL", "redis://:redis-secret@cache:6379")
            .env("SHUTDOWN_GRACE_SECONDS", "40")
            .env("KAFKA_TOPIC", "jobs")
            .output()
            .expect("kafka-worker runs");
        assert!(output.status.success(), "{output:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        for secret in ["worker-secret", "console-secret", "redis-secret"] {
            assert!(!text.contains(secret), "{secret} shown: {text}");
        }
        serde_json::from_str(&text).expect("JSON")
    };
    let effective = run(&["config"]);
    assert_eq!(effective["SHUTDOWN_GRACE_SECONDS"], 40);
    assert_eq!(effective["KAFKA_TOPIC"], "jobs");
    assert_eq!(effective["MCP_API_KEY"], "<set>");
    assert_eq!(effective["CONSOLE_API_KEYS"], "<set>");
    assert_eq!(effective["KAFKA_BROKERS"], Value::Null);
    let defaults = run(&["config", "--defaults"]);
    assert_eq!(defaults["SHUTDOWN_GRACE_SECONDS"], 25);
    assert_eq!(defaults["KAFKA_TOPIC"], "mcp-jobs");
    assert_eq!(defaults["METRICS_PORT"], 9090);
    assert_eq!(defaults["MCP_API_KEY"], Value::Null);
}
