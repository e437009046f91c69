//! The records every consumed message ends in: exactly one result record on
//! `<topic>.results`, plus, for a permanent failure, the original bytes on `<topic>.dlq`.
//! The worker writes the result record; the console, `kafka-worker publish --wait`
//! and the tests read it with the same type.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::headers::DeadLetterMeta;
use crate::FailureKind;

/// The longest error message a dead letter's header carries.
const MAX_HEADER_ERROR_CHARS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Succeeded,
    Failed,
}

/// Why a job failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Machine-readable cause, e.g. `missing_field`, `tool_error`, `refused`.
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    /// The message cut for a header or a field next to the original: no place for a
    /// long tool error (the result record keeps more of it).
    pub fn headline(&self) -> String {
        self.shortened(MAX_HEADER_ERROR_CHARS)
    }

    /// The message cut to at most `chars` characters, marked where cut.
    pub fn shortened(&self, chars: usize) -> String {
        match self.message.char_indices().nth(chars) {
            Some((end, _)) => format!("{}… (cut)", &self.message[..end]),
            None => self.message.clone(),
        }
    }
}

/// Where a message came from, for the dead-letter headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// The result record of one job, as written to `<topic>.results`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    #[serde(rename = "jobID", default)]
    pub job_id: Option<String>,
    #[serde(default)]
    pub job_type: Option<String>,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub results: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<Failure>,
    pub attempts: u32,
    /// When the job was due (its `scheduledAt`), for jobs that said.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scheduled_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub worker: String,
    /// The dead letter this run replays (`<dlq topic>/<partition>/<offset>`), if it does.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub replay_of: Option<String>,
    /// Each attempt made, in order, with its timing and how it ended.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub attempt_log: Vec<AttemptRecord>,
}

/// The longest error an attempt's record keeps (the outcome's `error` keeps more of the
/// last one).
const MAX_ATTEMPT_ERROR_CHARS: usize = 300;

/// One attempt of a job, as its outcome tells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRecord {
    /// 1 for the first.
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Why it failed (`kind: message`, cut), if it did.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

impl AttemptRecord {
    /// Attempt `attempt`, begun at `started_at`, ended now by `failure` (if it failed).
    pub fn ended(attempt: u32, started_at: DateTime<Utc>, failure: Option<&Failure>) -> Self {
        Self {
            attempt,
            started_at,
            finished_at: Utc::now(),
            error: failure.map(|f| format!("{}: {}", f.kind, f.shortened(MAX_ATTEMPT_ERROR_CHARS))),
        }
    }
}

impl Outcome {
    /// The outcome of a message the source refuses to run (e.g. delivered too often
    /// without an outcome): failed, with no attempt made.
    pub fn refused(job_id: Option<String>, failure: Failure, worker: &str) -> Self {
        let now = Utc::now();
        Self {
            job_id,
            job_type: None,
            status: Status::Failed,
            results: None,
            error: Some(failure),
            attempts: 0,
            scheduled_at: None,
            started_at: now,
            finished_at: now,
            worker: worker.to_owned(),
            replay_of: None,
            attempt_log: Vec::new(),
        }
    }

    /// The outcome of a durable task's job that its client cancelled, after `attempts`
    /// (0: it never started).
    pub fn cancelled(
        job_id: String,
        attempts: u32,
        started_at: DateTime<Utc>,
        worker: &str,
    ) -> Self {
        Self {
            attempts,
            started_at,
            ..Self::refused(
                Some(job_id),
                Failure {
                    kind: FailureKind::Cancelled,
                    message: "cancelled by its client".into(),
                },
                worker,
            )
        }
    }

    /// Whether its client cancelled it.
    pub fn was_cancelled(&self) -> bool {
        self.error
            .as_ref()
            .is_some_and(|e| e.kind == FailureKind::Cancelled)
    }

    /// Reads a result record.
    pub fn from_record(record: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(record)
    }

    /// Whether the job succeeded.
    pub fn succeeded(&self) -> bool {
        self.status == Status::Succeeded
    }

    /// Why it failed, by the kind's wire name, if it did.
    pub fn error_kind(&self) -> Option<&str> {
        self.error.as_ref().map(|e| e.kind.as_str())
    }

    /// What went wrong, if it failed.
    pub fn error_message(&self) -> Option<&str> {
        self.error.as_ref().map(|e| e.message.as_str())
    }

    /// What server `name` answered, for a job that called it.
    pub fn result(&self, name: &str) -> Option<&Value> {
        self.results.as_ref()?.get(name)
    }

    pub fn record(&self) -> Vec<u8> {
        // An Outcome holds only strings, numbers, timestamps and JSON values: it always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Headers of the dead-letter copy: what went wrong, and where the message came from.
    pub fn dead_letter_headers(&self, source: &Source) -> Vec<(&'static str, String)> {
        DeadLetterMeta {
            job_id: self.job_id.clone(),
            error_kind: self.error.as_ref().map(|e| e.kind.to_string()),
            error: self.error.as_ref().map(Failure::headline),
            attempts: Some(self.attempts),
            worker: Some(self.worker.clone()),
            source_topic: Some(source.topic.clone()),
            source_partition: Some(source.partition),
            source_offset: Some(source.offset),
            truncated: false,
        }
        .to_headers()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::{ERROR_KIND, SOURCE_OFFSET};

    #[test]
    fn failed_record_shape() {
        let now = Utc::now();
        let outcome = Outcome {
            job_id: Some("j1".into()),
            job_type: None,
            status: Status::Failed,
            results: None,
            error: Some(Failure {
                kind: FailureKind::MissingField,
                message: "missing required field `jobType`".into(),
            }),
            attempts: 1,
            scheduled_at: None,
            started_at: now,
            finished_at: now,
            worker: "w".into(),
            replay_of: None,
            attempt_log: Vec::new(),
        };
        let record: Value = serde_json::from_slice(&outcome.record()).expect("json");
        assert_eq!(record["jobID"], "j1");
        assert_eq!(record["status"], "failed");
        assert_eq!(record["error"]["kind"], FailureKind::MissingField.as_str());
        assert!(record.get("results").is_none());
        let source = Source {
            topic: "t".into(),
            partition: 2,
            offset: 41,
        };
        let written = outcome.dead_letter_headers(&source);
        assert!(written.contains(&(SOURCE_OFFSET, "41".into())));
        assert!(written.contains(&(ERROR_KIND, FailureKind::MissingField.to_string())));
    }

    #[test]
    fn a_long_error_is_cut_in_the_dead_letter_header() {
        let now = Utc::now();
        let outcome = Outcome {
            job_id: Some("j2".into()),
            job_type: None,
            status: Status::Failed,
            results: None,
            error: Some(Failure {
                kind: FailureKind::ToolError,
                message: "e".repeat(2_000_000),
            }),
            attempts: 3,
            scheduled_at: None,
            started_at: now,
            finished_at: now,
            worker: "w".into(),
            replay_of: None,
            attempt_log: Vec::new(),
        };
        let source = Source {
            topic: "t".into(),
            partition: 0,
            offset: 0,
        };
        let headers = outcome.dead_letter_headers(&source);
        let size: usize = headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(size < 2048, "{size} bytes of headers");
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let now = Utc::now();
        let mut results = Map::new();
        results.insert("time".into(), serde_json::json!({"content": []}));
        let outcome = Outcome {
            job_id: Some("j3".into()),
            job_type: Some("tool-call".into()),
            status: Status::Succeeded,
            results: Some(results),
            error: None,
            attempts: 2,
            scheduled_at: Some(now),
            started_at: now,
            finished_at: now,
            worker: "w".into(),
            replay_of: Some("jobs.dlq/0/7".into()),
            attempt_log: vec![AttemptRecord::ended(
                1,
                now,
                Some(&Failure {
                    kind: FailureKind::UpstreamTimeout,
                    message: "t".repeat(5_000),
                }),
            )],
        };
        let read = Outcome::from_record(&outcome.record()).expect("reads");
        assert!(read.succeeded());
        assert_eq!(read.job_id, outcome.job_id);
        assert_eq!(read.results, outcome.results);
        assert_eq!(
            read.result("time"),
            Some(&serde_json::json!({"content": []}))
        );
        assert_eq!(read.replay_of, outcome.replay_of);
        assert_eq!(read.scheduled_at, outcome.scheduled_at);
        assert_eq!(read.attempt_log, outcome.attempt_log);
        let first = read.attempt_log[0].error.as_deref().unwrap_or_default();
        assert!(
            first.starts_with("upstream_timeout: ttt") && first.len() < 400,
            "{first}"
        );
        let refused = Outcome::refused(
            None,
            Failure {
                kind: FailureKind::Other("from_a_newer_worker".into()),
                message: "x".into(),
            },
            "w",
        );
        let read = Outcome::from_record(&refused.record()).expect("reads");
        assert_eq!(read.error_kind(), Some("from_a_newer_worker"));
        assert_eq!(read.error_message(), Some("x"));
        assert_eq!(read.attempts, 0);
    }
}
