//! Every outcome fits: a 3 MB tool result from a real third-party stdio server
//! (server-filesystem reading a file) and a 2 MB source message each get an outcome cut
//! to fit and marked, the good jobs behind them on the same partition succeed, and the
//! partition's committed offset reaches its end.

use std::time::Duration;

use mcp_jobs_e2e::{
    fixture, fixture_job, free_port, headers, outcomes_of, sample, scrape, server_filesystem_entry,
    start_worker, wait_for, Broker, Deployment, McpServer, Outcome, Record, Status,
};
use serde_json::json;

const MINUTE: Duration = Duration::from_secs(60);
/// The worker's default RESULT_MAX_BYTES.
const RESULT_MAX_BYTES: usize = 900_000;
const GOOD_JOBS: usize = 5;

/// Produces `first` (with `key`) to partition 0 of `topic`, then `GOOD_JOBS` echo jobs
/// behind it.
fn produce_with_good_jobs_behind(broker: &Broker, topic: &str, key: Option<&str>, first: &[u8]) {
    let good: Vec<Vec<u8>> = (0..GOOD_JOBS)
        .map(|i| {
            serde_json::to_vec(&fixture_job(
                &format!("good-{i}"),
                "echo",
                json!({ "text": "ok" }),
            ))
            .expect("json")
        })
        .collect();
    let mut records: Vec<(Option<&str>, &[u8])> = vec![(key, first)];
    records.extend(good.iter().map(|job| (None, job.as_slice())));
    broker.produce(topic, &records);
}

/// Waits until `group` has committed past the first job and every good one behind it.
fn wait_for_commit_at_end(broker: &Broker, group: &str, topic: &str) {
    wait_for("the committed offset to reach the end", MINUTE, || {
        (broker.committed(group, topic, 1) == [Some(1 + GOOD_JOBS as i64)]).then_some(())
    });
}

fn sha256_hex(bytes: &[u8]) -> String {
    let output = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(bytes)?;
            child.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_3_mb_tool_result_is_cut_to_fit_and_the_partition_moves_on() {
    let files = tempfile::tempdir().expect("temp dir");
    let dir = std::fs::canonicalize(files.path()).expect("canonical dir");
    let line = "the quick brown fox jumps over the lazy dog, \"quoted\" and tab\t0123456789\n";
    let text = line.repeat(3 * 1024 * 1024 / line.len() + 1);
    let file = dir.join("big.txt");
    std::fs::write(&file, &text).expect("3 MB file");
    let filesystem = format!("node {} {}", server_filesystem_entry(), dir.display());
    let metrics_port = free_port().to_string();
    let deployment = Deployment::new("fits")
        .server_env(&[(
            "MCP_ALLOWED_COMMANDS",
            &format!("{filesystem},{}", fixture()),
        )])
        .worker_env(&[("METRICS_PORT", &metrics_port)])
        .start();
    let (broker, topic, group) = deployment.parts();

    let big = serde_json::to_vec(&json!({
        "jobID": "big-read", "jobType": "tool-call",
        "payload": {
            "mcpServers": { "fs": { "command": "node", "args": [server_filesystem_entry(), dir.display().to_string()] } },
            "server": "fs", "tool": "read_text_file", "arguments": { "path": file.display().to_string() }
        }
    }))
    .expect("json");
    produce_with_good_jobs_behind(broker, topic, None, &big);

    let results = broker.read(&format!("{topic}.results"), 1 + GOOD_JOBS, 2 * MINUTE);
    for record in &results {
        assert!(
            record.payload.len() <= RESULT_MAX_BYTES,
            "{} bytes",
            record.payload.len()
        );
    }
    let outcomes: Vec<Outcome> = results.iter().map(Record::outcome).collect();
    let read = outcomes
        .iter()
        .find(|o| o.job_id.as_deref() == Some("big-read"))
        .expect("the big job's outcome");
    assert_eq!(
        read.status,
        Status::Succeeded,
        "an honest status: the job did succeed"
    );
    let marker = &read.result("fs").expect("fs answered");
    assert_eq!(marker["truncated"], true, "{marker}");
    assert!(
        marker["originalBytes"].as_u64() > Some(3_000_000),
        "{marker}"
    );
    assert_eq!(marker["sha256"].as_str().map(str::len), Some(64));
    let preview = marker["preview"].as_str().expect("a preview");
    assert!(
        preview.len() > RESULT_MAX_BYTES / 2,
        "keeps as much as fits: {} bytes",
        preview.len()
    );
    assert!(
        preview.contains("the quick brown fox"),
        "the preview is the result's JSON"
    );
    for i in 0..GOOD_JOBS {
        let id = format!("good-{i}");
        let outcome = outcomes
            .iter()
            .find(|o| o.job_id.as_deref() == Some(id.as_str()))
            .expect(&id);
        assert_eq!(outcome.status, Status::Succeeded, "{outcome:#?}");
    }
    wait_for_commit_at_end(broker, group, topic);
    let samples = scrape(&format!("http://127.0.0.1:{metrics_port}/metrics"));
    assert_eq!(
        sample(
            &samples,
            "mcp_jobs_outcomes_truncated_total",
            &[("record", "result")]
        ),
        Some(1.0)
    );
}

#[test]
fn an_oversized_source_message_is_dead_lettered_cut_to_fit() {
    let server = McpServer::start(&[]);
    let broker = Broker::start();
    let topic = broker.name("oversized");
    let group = broker.name("g-oversized");
    // The jobs topic takes larger records than its results and dead-letter topics.
    broker.create_topic_with(&topic, 1, &[("max.message.bytes", "4194304")]);
    broker.create_topic(&format!("{topic}.results"), 1);
    broker.create_topic(&format!("{topic}.dlq"), 1);
    let _worker = start_worker(&broker, &server.url(), &topic, &group, &[]);

    let huge = serde_json::to_vec(&json!({
        "jobID": "huge", "jobType": "tool-call",
        "payload": { "mcpServers": { "fx": { "command": fixture() } }, "server": "fx", "tool": "echo",
                     "arguments": { "text": "x".repeat(2_000_000) } }
    }))
    .expect("json");
    produce_with_good_jobs_behind(&broker, &topic, Some("huge"), &huge);

    let outcomes = outcomes_of(&broker, &topic, 1 + GOOD_JOBS, 2 * MINUTE);
    let failed: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.status == Status::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0].error_kind(), Some("too_large"));
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| o.status == Status::Succeeded)
            .count(),
        GOOD_JOBS
    );

    let letters = broker.read(&format!("{topic}.dlq"), 1, MINUTE);
    let letter = &letters[0];
    assert!(
        letter.payload.len() < RESULT_MAX_BYTES,
        "{} bytes",
        letter.payload.len()
    );
    assert!(
        huge.starts_with(&letter.payload),
        "the original's first bytes"
    );
    assert_eq!(letter.key.as_deref(), Some("huge"));
    assert_eq!(letter.header(headers::TRUNCATED), Some("true"));
    assert_eq!(
        letter.header(headers::ORIGINAL_BYTES),
        Some(huge.len().to_string().as_str())
    );
    assert_eq!(
        letter.header(headers::ORIGINAL_SHA256),
        Some(sha256_hex(&huge).as_str())
    );
    assert_eq!(letter.header(headers::SOURCE_TOPIC), Some(topic.as_str()));
    assert_eq!(letter.header(headers::SOURCE_PARTITION), Some("0"));
    assert_eq!(letter.header(headers::SOURCE_OFFSET), Some("0"));
    assert_eq!(letter.header(headers::ERROR_KIND), Some("too_large"));
    wait_for_commit_at_end(&broker, &group, &topic);
}

#[test]
fn a_results_topic_with_a_lower_limit_gets_records_cut_smaller() {
    let server = McpServer::start(&[]);
    let broker = Broker::start();
    let topic = broker.name("strict");
    let group = broker.name("g-strict");
    broker.create_topic(&topic, 1);
    // Below the worker's RESULT_MAX_BYTES: the broker refuses the first try as too large.
    broker.create_topic_with(
        &format!("{topic}.results"),
        1,
        &[("max.message.bytes", "60000")],
    );
    broker.create_topic(&format!("{topic}.dlq"), 1);
    let worker = start_worker(&broker, &server.url(), &topic, &group, &[]);

    let echo = serde_json::to_vec(&fixture_job(
        "echo-200k",
        "echo",
        json!({ "text": "y".repeat(200_000) }),
    ))
    .expect("json");
    produce_with_good_jobs_behind(&broker, &topic, None, &echo);

    let outcomes = outcomes_of(&broker, &topic, 1 + GOOD_JOBS, 2 * MINUTE);
    let cut = outcomes
        .iter()
        .find(|o| o.job_id.as_deref() == Some("echo-200k"))
        .expect("the large echo's outcome");
    assert_eq!(cut.status, Status::Succeeded);
    assert_eq!(
        cut.result("fx").expect("fx answered")["truncated"],
        true,
        "{cut:#?}"
    );
    assert!(worker
        .output()
        .contains("refused the outcome record as too large; cutting it smaller"));
    wait_for_commit_at_end(&broker, &group, &topic);
}

#[test]
fn a_huge_tool_error_is_dead_lettered_with_a_short_header() {
    let deployment = Deployment::new("loud")
        .worker_env(&[("JOB_MAX_ATTEMPTS", "1")])
        .start();
    let (broker, topic, group) = deployment.parts();

    // mcp-server-time repeats the zone it cannot find in its error: 600 KB of error text.
    let loud = serde_json::to_vec(&json!({
        "jobID": "loud", "jobType": "tool-call",
        "payload": { "mcpServers": { "time": { "command": "mcp-server-time" } }, "server": "time",
                     "tool": "get_current_time", "arguments": { "timezone": "Z".repeat(600_000) } }
    }))
    .expect("json");
    produce_with_good_jobs_behind(broker, topic, None, &loud);

    let outcomes = outcomes_of(broker, topic, 1 + GOOD_JOBS, 2 * MINUTE);
    let failed = outcomes
        .iter()
        .find(|o| o.job_id.as_deref() == Some("loud"))
        .expect("its outcome");
    assert_eq!(failed.error_kind(), Some("tool_error"), "{failed:#?}");
    let message = failed.error_message().unwrap_or_default();
    assert!(
        message.len() > 500_000,
        "the error carries the zone: {} bytes",
        message.len()
    );
    let letters = broker.read(&format!("{topic}.dlq"), 1, MINUTE);
    let header = letters[0].header(headers::ERROR).expect("the error header");
    assert!(
        header.len() < 2048,
        "{} bytes of error header",
        header.len()
    );
    assert_eq!(letters[0].payload, loud, "the original fits whole");
    wait_for_commit_at_end(broker, group, topic);
}
