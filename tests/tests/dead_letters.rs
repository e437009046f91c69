//! `kafka-worker dlq list | replay` end to end: real broker, worker and mcp-server. A
//! job refused by mcp-server's allowlist is dead-lettered, the allowlist is fixed, and
//! the dead letter is replayed: it goes back with its key and headers, marked as a
//! replay, and its new outcome says which dead letter it replays.

use std::time::Duration;

use mcp_jobs_e2e::{
    enqueue, fixture, fixture_job, headers, outcomes_of, wait_for, worker_cli, worker_cli_ok,
    Broker, Deployment, McpServer, Outcome, Record, Running, Status,
};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{json, Value};

const MINUTE: Duration = Duration::from_secs(60);

fn list(broker: &Broker, topic: &str, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["dlq", "list", "--json"];
    all.extend(args);
    let found: Value = serde_json::from_str(&worker_cli_ok(broker, topic, &all)).expect("json");
    found["deadLetters"].as_array().cloned().unwrap_or_default()
}

fn outcomes_with_replay(broker: &Broker, topic: &str, job_id: &str) -> Vec<Outcome> {
    broker
        .read_all(&format!("{topic}.results"))
        .iter()
        .map(Record::outcome)
        .filter(|o| o.job_id.as_deref() == Some(job_id) && o.replay_of.is_some())
        .collect()
}

#[test]
fn dead_letters_are_listed_and_replayed_with_their_key_and_headers() {
    // mcp-server-time is not allowed at first.
    let fixture_only = fixture();
    let Running {
        broker,
        topic,
        group: _,
        server,
        worker: _worker,
    } = Deployment::new("dlq-replay")
        .partitions(2)
        .server_env(&[("MCP_ALLOWED_COMMANDS", &fixture_only)])
        .worker_env(&[("JOB_MAX_ATTEMPTS", "1")])
        .start();
    let port = server.port;

    let needs_time = serde_json::to_vec(&json!({
        "jobID": "needs-time", "jobType": "tool-call",
        "payload": {"mcpServers": {"time": {"command": "mcp-server-time"}},
                    "server": "time", "tool": "get_current_time", "arguments": {"timezone": "UTC"}}
    }))
    .expect("json");
    let always_fails =
        serde_json::to_vec(&fixture_job("always-fails", "fail", json!({}))).expect("json");
    let producer: BaseProducer = broker.client_config().create().expect("producer");
    let tenant = OwnedHeaders::new().insert(Header {
        key: "tenant",
        value: Some("seven"),
    });
    enqueue(
        &producer,
        BaseRecord::to(&topic)
            .key("tenant-7")
            .payload(needs_time.as_slice())
            .headers(tenant),
    )
    .expect("enqueue");
    enqueue(
        &producer,
        BaseRecord::<str, [u8]>::to(&topic).payload(always_fails.as_slice()),
    )
    .expect("enqueue");
    enqueue(
        &producer,
        BaseRecord::<str, [u8]>::to(&topic).payload(b"{not json".as_slice()),
    )
    .expect("enqueue");
    producer.flush(MINUTE).expect("flush");
    broker.read(&format!("{topic}.results"), 3, MINUTE);

    let all = list(&broker, &topic, &[]);
    let mut kinds: Vec<&str> = all.iter().filter_map(|d| d["kind"].as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        ["malformed_json", "refused", "tool_error"],
        "{all:#?}"
    );
    let refused = list(&broker, &topic, &["--kind", "refused"]);
    assert_eq!(refused.len(), 1, "{refused:#?}");
    let dead_letter = refused[0]["deadLetter"]
        .as_str()
        .expect("deadLetter")
        .to_owned();
    assert_eq!(refused[0]["jobID"], "needs-time");
    assert_eq!(refused[0]["sourceTopic"], topic.as_str());
    let table = worker_cli_ok(&broker, &topic, &["dlq", "list", "--kind", "refused"]);
    assert!(
        table.starts_with("AT")
            && table.contains("needs-time")
            && table.contains("mcp-server-time"),
        "{table}"
    );

    // The operator fixes the cause: mcp-server-time is allowed.
    drop(server);
    let _server = McpServer::start_on(port, &[]);
    let jobs_before = broker.read_all(&topic).len();
    let dry = worker_cli_ok(
        &broker,
        &topic,
        &["dlq", "replay", "--job-id", "needs-time", "--dry-run"],
    );
    assert!(
        dry.contains(&format!("would replay {dead_letter}")),
        "{dry}"
    );
    assert_eq!(
        broker.read_all(&topic).len(),
        jobs_before,
        "a dry run sent something"
    );

    let replayed = worker_cli_ok(
        &broker,
        &topic,
        &["dlq", "replay", "--job-id", "needs-time"],
    );
    assert!(replayed.contains("replayed 1, refused 0"), "{replayed}");
    let outcome = wait_for("the replay's outcome", MINUTE, || {
        outcomes_with_replay(&broker, &topic, "needs-time").pop()
    });
    assert_eq!(outcome.status, Status::Succeeded, "{outcome:#?}");
    assert_eq!(outcome.replay_of.as_deref(), Some(dead_letter.as_str()));
    let replay = broker
        .read_all(&topic)
        .into_iter()
        .find(|r| r.header(headers::REPLAY_OF).is_some())
        .expect("the replayed message");
    assert_eq!(replay.key.as_deref(), Some("tenant-7"));
    assert_eq!(replay.header("tenant"), Some("seven"));
    assert_eq!(
        replay.header(headers::REPLAY_OF),
        Some(dead_letter.as_str())
    );
    assert_eq!(replay.payload, needs_time);

    // Every dead letter of a kind; a job that fails again is dead-lettered again, as a replay.
    let by_kind = worker_cli_ok(
        &broker,
        &topic,
        &["dlq", "replay", "--kind", "tool_error", "--since", "1h"],
    );
    assert!(by_kind.contains("replayed 1, refused 0"), "{by_kind}");
    let again = wait_for("the second failure", MINUTE, || {
        outcomes_with_replay(&broker, &topic, "always-fails").pop()
    });
    assert_eq!(again.status, Status::Failed, "{again:#?}");
    let outcomes = outcomes_of(&broker, &topic, 2, MINUTE);
    assert!(outcomes.len() >= 5, "{outcomes:#?}");

    let unsaid = worker_cli(&broker, &topic, &["dlq", "replay"]);
    assert!(!unsaid.status.success());
    assert!(String::from_utf8_lossy(&unsaid.stderr).contains("--job-id ID, or --kind KIND"));
}
