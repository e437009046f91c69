//! `kafka-worker` processes: the worker, the dispatcher, the console and the CLI.

use std::process::Command;
use std::time::Duration;

use crate::{bin, free_port, wait_for, Broker, Process, API_KEY};

/// A `kafka-worker` process consuming `topic` in `group`. Its schedule dispatcher is
/// off unless `env` turns it on (`SCHEDULER_ENABLED=true`).
pub fn start_worker(
    broker: &Broker,
    server_url: &str,
    topic: &str,
    group: &str,
    env: &[(&str, &str)],
) -> Process {
    let mut command = worker_command(broker, topic, group, env);
    command.env("MCP_SERVER_URL", server_url);
    Process::spawn("kafka-worker", &mut command)
}

/// A `kafka-worker scheduler` process: only the schedule dispatcher of `topic`, in the
/// dispatchers' group of `group`. Its `/metrics` and `/ready` are on `metrics_port`.
pub fn start_dispatcher(
    broker: &Broker,
    topic: &str,
    group: &str,
    metrics_port: u16,
    worker_id: &str,
) -> Process {
    let port = metrics_port.to_string();
    let mut command = worker_command(
        broker,
        topic,
        group,
        &[("METRICS_PORT", &port), ("WORKER_ID", worker_id)],
    );
    command.arg("scheduler");
    Process::spawn("kafka-worker-scheduler", &mut command)
}

/// A `kafka-worker console` process for `topic` on `port`, with `env` (its keys,
/// read-only mode); ready once `/health` on its metrics port answers.
pub fn start_console(broker: &Broker, topic: &str, port: u16, env: &[(&str, &str)]) -> Process {
    let metrics_port = free_port();
    let (port, metrics) = (port.to_string(), metrics_port.to_string());
    let mut all = vec![
        ("CONSOLE_PORT", port.as_str()),
        ("METRICS_PORT", metrics.as_str()),
    ];
    all.extend(env);
    let mut command = worker_command(broker, topic, "console", &all);
    command.arg("console");
    let mut process = Process::spawn("kafka-worker-console", &mut command);
    // The login form: served once the console's own port is bound.
    let health = format!("http://127.0.0.1:{port}/login");
    wait_for("the console to start", Duration::from_secs(30), || {
        assert!(
            process.is_running(),
            "the console exited: {}",
            process.output()
        );
        reqwest::blocking::get(&health)
            .ok()
            .filter(|r| r.status().is_success())
    });
    process
}

/// The session cookie (`name=value`) a console login answered with, if any.
pub fn session_cookie(login: &reqwest::blocking::Response) -> String {
    login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .to_owned()
}

/// Runs `kafka-worker <args>` against `topic` to its end: its exit status and output.
pub fn worker_cli(broker: &Broker, topic: &str, args: &[&str]) -> std::process::Output {
    let mut command = worker_command(broker, topic, "cli", &[]);
    command
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("kafka-worker {args:?}: {e}"))
}

/// `kafka-worker <args>` against `topic`, which must succeed: its stdout.
pub fn worker_cli_ok(broker: &Broker, topic: &str, args: &[&str]) -> String {
    let output = worker_cli(broker, topic, args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kafka-worker {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `kafka-worker publish --in <after>` of `job`, as an operator types it: the job waits
/// for its time on the delayed topic once a worker has read it.
pub fn publish_later(broker: &Broker, topic: &str, job: &serde_json::Value, after: &str) {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), job.to_string()).expect("job file");
    let path = file.path().to_str().expect("utf-8");
    worker_cli_ok(broker, topic, &["publish", "--in", after, path]);
}

/// A `kafka-worker` command for `topic` and `group` with the tests' settings and `env`.
pub fn worker_command(broker: &Broker, topic: &str, group: &str, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(bin("kafka-worker"));
    command
        .env("SCHEDULER_ENABLED", "false")
        .env("KAFKA_BROKERS", &broker.address)
        .env("KAFKA_TOPIC", topic)
        .env("MCP_CONSUMER_GROUP", group)
        .env("MCP_API_KEY", API_KEY)
        // A killed member's partitions move after its session times out: keep that
        // short (6 s is the broker's least by default).
        .env("RDKAFKA_SESSION_TIMEOUT_MS", "6000")
        .env("RDKAFKA_AUTO_COMMIT_INTERVAL_MS", "200")
        .env("RETRY_MAX_BACKOFF_MS", "1000")
        .env("METRICS_PORT", free_port().to_string());
    for (key, value) in env {
        command.env(key, value);
    }
    command
}
