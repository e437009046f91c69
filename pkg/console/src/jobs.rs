//! A job's outcome records, found on the results topic (keyed by jobID) in the same
//! bounded slice as dead letters: each partition from `since`, or its last
//! [`SCAN_PER_PARTITION`](crate::dead_letters::SCAN_PER_PARTITION) records; and the
//! runs of schedules' occurrences in that slice.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use mcp_jobs_contract::outcome::Outcome;
use mcp_jobs_kafka::topic::{self, ReadError, Reader};
use mcp_jobs_kafka::KafkaSettings;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::Message;
use serde::Serialize;
use serde_json::Value;

use mcp_jobs_scheduler::schedule::occurrence_of;

use crate::dead_letters::read_recent;

/// What a job search found.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobOutcomes {
    #[serde(rename = "jobID")]
    pub job_id: String,
    /// Every outcome record of the job in the slice read, oldest first (a job
    /// redelivered or replayed has several).
    pub outcomes: Vec<Value>,
    /// Records read to answer.
    pub scanned: usize,
}

/// The outcome records of `job_id` on the results topic, since `since`.
pub fn outcomes(
    consumer: &BaseConsumer<Reader>,
    settings: &KafkaSettings,
    job_id: &str,
    since: Option<DateTime<Utc>>,
) -> Result<JobOutcomes, ReadError> {
    let mut outcomes = Vec::new();
    let scanned = read_recent(consumer, &settings.results_topic, since, |m| {
        if m.key() == Some(job_id.as_bytes()) {
            outcomes.push(record_json(m));
        }
    })?;
    outcomes.sort_by(|a, b| a["finishedAt"].as_str().cmp(&b["finishedAt"].as_str()));
    Ok(JobOutcomes {
        job_id: job_id.to_owned(),
        outcomes,
        scanned,
    })
}

/// A run of a schedule's occurrence, as its outcome record tells it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    #[serde(rename = "jobID")]
    pub job_id: String,
    /// The occurrence's nominal time.
    pub due: DateTime<Utc>,
    pub succeeded: bool,
    /// Why it failed, if it did.
    pub error_kind: Option<String>,
    /// How long after its nominal time it started.
    pub late_ms: i64,
}

/// The newest `per_schedule` runs of each schedule in `schedules` (newest first), from
/// the outcome records of the recent slice of the results topic whose jobID is an
/// occurrence's ([`occurrence_of`]); and how many records were read.
pub fn runs(
    consumer: &BaseConsumer<Reader>,
    settings: &KafkaSettings,
    schedules: &[String],
    per_schedule: usize,
) -> Result<(BTreeMap<String, Vec<Run>>, usize), ReadError> {
    let mut runs: BTreeMap<String, Vec<Run>> = schedules
        .iter()
        .map(|name| (name.clone(), Vec::new()))
        .collect();
    let scanned = read_recent(consumer, &settings.results_topic, None, |m| {
        let Some(job_id) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else {
            return;
        };
        let Some((name, due)) = occurrence_of(job_id) else {
            return;
        };
        let (Some(of_schedule), Ok(outcome)) = (
            runs.get_mut(name),
            Outcome::from_record(m.payload().unwrap_or_default()),
        ) else {
            return;
        };
        of_schedule.push(Run {
            job_id: job_id.to_owned(),
            due,
            succeeded: outcome.succeeded(),
            error_kind: outcome.error_kind().map(str::to_owned),
            late_ms: (outcome.started_at - due).num_milliseconds(),
        });
    })?;
    for of_schedule in runs.values_mut() {
        of_schedule.sort_by_key(|run| std::cmp::Reverse(run.due));
        of_schedule.truncate(per_schedule);
    }
    Ok((runs, scanned))
}

/// Where a page of the latest outcomes ends: for each partition, the offset below
/// which the next page reads. Written `0:1200,1:1185` in the API.
pub type Cursor = std::collections::BTreeMap<i32, i64>;

/// A page of the latest outcome records.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    /// Newest first.
    pub outcomes: Vec<Value>,
    /// The cursor of the next (older) page; absent on the last.
    pub next: Option<String>,
    /// Records read to answer: at most `limit` per partition.
    pub scanned: usize,
}

/// The `limit` newest outcome records older than `before` (the newest of all without
/// it): each partition's `limit` records below its cursor are read, and merged newest
/// first, each partition in its own order, so that the next page starts where this
/// one stopped.
pub fn latest(
    consumer: &BaseConsumer<Reader>,
    settings: &KafkaSettings,
    limit: usize,
    before: Option<&Cursor>,
) -> Result<Page, ReadError> {
    let results = &settings.results_topic;
    let limit = limit.max(1);
    let mut ends = Cursor::new();
    let mut lows = Cursor::new();
    for partition in 0..topic::partition_count(consumer, results)? {
        let (low, high) =
            consumer.fetch_watermarks(results, partition, std::time::Duration::from_secs(10))?;
        let end = before
            .and_then(|c| c.get(&partition).copied())
            .unwrap_or(high);
        ends.insert(partition, end.min(high));
        lows.insert(partition, low);
    }
    let span = i64::try_from(limit).unwrap_or(i64::MAX);
    let starts: Vec<(i32, rdkafka::Offset)> = ends
        .iter()
        .filter(|(partition, end)| **end > lows[*partition])
        .map(|(partition, end)| {
            let start = lows[partition].max(end.saturating_sub(span));
            (*partition, rdkafka::Offset::Offset(start))
        })
        .collect();
    // Per partition, newest last: (offset, timestamp, record).
    let mut read: std::collections::BTreeMap<i32, Vec<(i64, i64, Value)>> = Default::default();
    let scanned = topic::read_range(consumer, results, &starts, limit, |m| {
        if m.offset() < ends[&m.partition()] {
            let record = record_json(m);
            let at = m.timestamp().to_millis().unwrap_or(0);
            read.entry(m.partition())
                .or_default()
                .push((m.offset(), at, record));
        }
    })?;
    let mut outcomes = Vec::with_capacity(limit);
    while outcomes.len() < limit {
        let newest = read
            .iter()
            .filter_map(|(partition, records)| Some((*partition, records.last()?.1)))
            .max_by_key(|(_, at)| *at);
        let Some((partition, _)) = newest else { break };
        let Some((offset, _, record)) = read.get_mut(&partition).and_then(Vec::pop) else {
            break;
        };
        ends.insert(partition, offset);
        outcomes.push(record);
    }
    let more = ends.iter().any(|(partition, end)| *end > lows[partition]);
    Ok(Page {
        outcomes,
        next: more.then(|| {
            ends.iter()
                .map(|(partition, end)| format!("{partition}:{end}"))
                .collect::<Vec<_>>()
                .join(",")
        }),
        scanned,
    })
}

/// An outcome record as JSON; one that is not JSON is shown as its text.
fn record_json(record: &BorrowedMessage<'_>) -> Value {
    let payload = record.payload().unwrap_or_default();
    serde_json::from_slice(payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into()))
}

/// Reads a cursor written by [`latest`].
pub fn parse_cursor(text: &str) -> Option<Cursor> {
    text.split(',')
        .map(|pair| {
            let (partition, offset) = pair.split_once(':')?;
            Some((partition.trim().parse().ok()?, offset.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back() {
        let cursor = parse_cursor("0:1200, 1:1185,2:0").expect("a cursor");
        assert_eq!(cursor, Cursor::from([(0, 1200), (1, 1185), (2, 0)]));
        assert_eq!(parse_cursor("0:12,x"), None);
        assert_eq!(parse_cursor("0-12"), None);
    }
}
