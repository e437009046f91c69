//! Where each job is while it runs, on `<topic>.status`: a compacted topic keyed by
//! jobID that the console follows for its Now page. The worker writes a [`JobStatus`]
//! as each attempt starts and as a failed attempt waits to be tried again, and a
//! tombstone once the job has its outcome, so the topic holds the jobs in flight.
//!
//! A durable task's job is reported here as every job is, and on the tasks topic
//! ([`crate::task`]) as well, where mcp-server answers `tasks/get` from.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::envelope::{JobType, ScheduledJobEnvelope};
use crate::task::JobState;
use crate::JsonRecord;

/// The most calls a status names; a longer job says how many more it has.
const MAX_NAMED_CALLS: usize = 5;

/// A job in flight, as its worker last reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// [`JobState::Running`] or [`JobState::Retrying`]: an ended job has no status.
    pub state: JobState,
    pub worker: String,
    /// The attempt running, or the one that failed and will be retried (1 for the first).
    pub attempt: u32,
    /// When this worker took the job up.
    pub started_at: DateTime<Utc>,
    /// When it entered this state: the attempt started, or failed.
    pub at: DateTime<Utc>,
    pub job_type: String,
    /// What it calls: `server/tool` for each tool call, the server for the others.
    pub calls: Vec<String>,
    /// How many more calls it makes than `calls` names.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub more_calls: usize,
    /// For [`JobState::Retrying`]: the error of the attempt that failed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// For [`JobState::Retrying`]: when the next attempt starts.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Whether the job is a durable MCP task (its jobID is the task id).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub task: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What a job calls, as its status names it: `(calls, more_calls)`.
pub fn calls_of(job: &ScheduledJobEnvelope) -> (Vec<String>, usize) {
    let all: Vec<String> = match job.job_type {
        JobType::ToolCall => job
            .calls
            .iter()
            .map(|call| format!("{}/{}", call.server, call.tool))
            .collect(),
        JobType::ServerInit | JobType::ListTools => job.mcp_servers.keys().cloned().collect(),
    };
    let more = all.len().saturating_sub(MAX_NAMED_CALLS);
    (all.into_iter().take(MAX_NAMED_CALLS).collect(), more)
}

impl JsonRecord for JobStatus {}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(calls: usize) -> ScheduledJobEnvelope {
        let calls: Vec<serde_json::Value> = (0..calls)
            .map(|i| serde_json::json!({"server": "time", "tool": format!("t{i}")}))
            .collect();
        let message = serde_json::json!({
            "jobID": "j-1",
            "jobType": "tool-call",
            "payload": {
                "mcpServers": {"time": {"command": "uvx", "args": ["mcp-server-time"]}},
                "calls": calls,
            },
        });
        ScheduledJobEnvelope::from_slice(message.to_string().as_bytes()).expect("a valid job")
    }

    #[test]
    fn a_long_job_names_its_first_calls_and_counts_the_rest() {
        assert_eq!(
            calls_of(&job(2)),
            (vec!["time/t0".into(), "time/t1".into()], 0)
        );
        let (named, more) = calls_of(&job(8));
        assert_eq!((named.len(), named[4].as_str(), more), (5, "time/t4", 3));
    }

    #[test]
    fn a_status_reads_back() {
        let (calls, more_calls) = calls_of(&job(1));
        let status = JobStatus {
            state: JobState::Retrying,
            worker: "w-1".into(),
            attempt: 2,
            started_at: Utc::now(),
            at: Utc::now(),
            job_type: "tool-call".into(),
            calls,
            more_calls,
            error: Some("upstream_timeout: no answer".into()),
            next_attempt_at: Some(Utc::now()),
            task: true,
        };
        assert_eq!(
            JobStatus::from_record(&status.to_record()).ok(),
            Some(status)
        );
    }
}
