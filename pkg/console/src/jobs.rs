//! A job's outcome records, found on the results topic (keyed by jobID) in the same
//! bounded slice as dead letters: each partition from `since`, or its last
//! [`SCAN_PER_PARTITION`](crate::dead_letters::SCAN_PER_PARTITION) records.

use chrono::{DateTime, Utc};
use mcp_jobs_worker::topic::{self, ReadError};
use mcp_jobs_worker::WorkerSettings;
use rdkafka::Message;
use serde::Serialize;
use serde_json::Value;

use crate::dead_letters::SCAN_PER_PARTITION;

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
    settings: &WorkerSettings,
    job_id: &str,
    since: Option<DateTime<Utc>>,
) -> Result<JobOutcomes, ReadError> {
    let consumer = topic::reader(settings, "kafka-worker-console")?;
    let results = &settings.results_topic;
    let starts = match since {
        Some(since) => topic::offsets_at(&consumer, results, since)?,
        None => topic::offsets_before_end(&consumer, results, SCAN_PER_PARTITION)?,
    };
    let mut outcomes = Vec::new();
    let scanned = topic::read_range(&consumer, results, &starts, SCAN_PER_PARTITION, |m| {
        if m.key() == Some(job_id.as_bytes()) {
            // A record that is not JSON is shown as its text.
            let payload = m.payload().unwrap_or_default();
            outcomes.push(
                serde_json::from_slice(payload)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into())),
            );
        }
    })?;
    outcomes.sort_by(|a, b| a["finishedAt"].as_str().cmp(&b["finishedAt"].as_str()));
    Ok(JobOutcomes {
        job_id: job_id.to_owned(),
        outcomes,
        scanned,
    })
}
