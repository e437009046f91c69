//! Jobs and their outcomes: fixture jobs, publishing, and reading outcome records and
//! dead letters back.

use std::time::Duration;

use mcp_jobs_contract::headers::DeadLetterMeta;
use rdkafka::producer::{BaseProducer, BaseRecord};

use crate::{bin, wait_for, Broker, Outcome, Record};

/// Result records by job id, read until `count` records arrived.
pub fn results_by_job(
    broker: &Broker,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> Vec<Outcome> {
    broker
        .read(&format!("{topic}.results"), count, timeout)
        .iter()
        .map(Record::outcome)
        .collect()
}

/// The path of `mcp-fixture`, this workspace's own stdio MCP server for fault cases
/// and benchmarks (tools `echo`, `sleep`, `fail`, `meta`, `crash`).
pub fn fixture() -> String {
    bin("mcp-fixture").display().to_string()
}

/// A `tool-call` job calling `tool` of [`fixture`] (as server `fx`) with `arguments`.
pub fn fixture_job(job_id: &str, tool: &str, arguments: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "jobID": job_id,
        "jobType": "tool-call",
        "payload": {
            "mcpServers": { "fx": { "command": fixture() } },
            "server": "fx", "tool": tool, "arguments": arguments
        }
    })
}

/// Every result record on `<topic>.results` once at least `jobs` distinct job ids
/// have one (repeats included, so callers can count them).
pub fn outcomes_of(broker: &Broker, topic: &str, jobs: usize, timeout: Duration) -> Vec<Outcome> {
    let results_topic = format!("{topic}.results");
    wait_for(&format!("outcomes of {jobs} jobs"), timeout, || {
        let outcomes: Vec<Outcome> = broker
            .read_all(&results_topic)
            .iter()
            .map(Record::outcome)
            .collect();
        if distinct_jobs(&outcomes) >= jobs {
            return Some(outcomes);
        }
        std::thread::sleep(Duration::from_millis(500));
        None
    })
}

/// How many distinct job ids `outcomes` cover.
pub fn distinct_jobs(outcomes: &[Outcome]) -> usize {
    outcomes
        .iter()
        .filter_map(|o| o.job_id.as_deref())
        .collect::<std::collections::HashSet<_>>()
        .len()
}

/// The headers kafka-worker gives a dead letter, for tests and benchmarks that write
/// dead letters of their own.
pub fn dead_letter_headers<'a>(
    job_id: &'a str,
    kind: &'a str,
    error: &'a str,
    source_topic: &'a str,
) -> rdkafka::message::OwnedHeaders {
    DeadLetterMeta {
        job_id: Some(job_id.to_owned()),
        error_kind: Some(kind.to_owned()),
        error: Some(error.to_owned()),
        source_topic: Some(source_topic.to_owned()),
        ..DeadLetterMeta::default()
    }
    .to_headers()
    .into_iter()
    .fold(
        rdkafka::message::OwnedHeaders::new(),
        |all, (key, value)| {
            all.insert(rdkafka::message::Header {
                key,
                value: Some(value.as_str()),
            })
        },
    )
}

/// Hands `record` to `producer`, waiting while its local queue is full.
pub fn enqueue<K: rdkafka::message::ToBytes + ?Sized>(
    producer: &BaseProducer,
    mut record: BaseRecord<'_, K, [u8]>,
) -> rdkafka::error::KafkaResult<()> {
    loop {
        match producer.send(record) {
            Ok(()) => {
                producer.poll(Duration::ZERO);
                return Ok(());
            }
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                returned,
            )) => {
                producer.poll(Duration::from_millis(10));
                record = returned;
            }
            Err((e, _)) => return Err(e),
        }
    }
}
