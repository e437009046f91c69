//! Durable MCP tasks (the Tasks extension, `io.modelcontextprotocol/tasks`) as records
//! on `<topic>.tasks`, a compacted topic every mcp-server replica follows: a task is a
//! job (its id is the job's id), and these records say who owns it and how it fares.
//!
//! Compaction keeps the newest record per key, so each fact a task gathers has a key of
//! its own: `<id>` the creation (owner, TTL), `<id>/status` where its job is now, and
//! `<id>/cancel` a cancellation. A tombstone on all three forgets the task when its TTL
//! has passed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::JsonRecord;

/// Which fact about a task a record holds, by the suffix of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskFact {
    Created,
    Status,
    Cancel,
}

impl TaskFact {
    pub const ALL: [TaskFact; 3] = [TaskFact::Created, TaskFact::Status, TaskFact::Cancel];

    /// The record key of this fact about task `id`.
    pub fn key(self, id: &str) -> String {
        match self {
            Self::Created => id.to_owned(),
            Self::Status => format!("{id}/status"),
            Self::Cancel => format!("{id}/cancel"),
        }
    }

    /// The task id and fact of a record key; `None` for a key no task record has.
    pub fn parse(key: &str) -> Option<(&str, Self)> {
        let (id, fact) = match key.split_once('/') {
            None => (key, Self::Created),
            Some((id, "status")) => (id, Self::Status),
            Some((id, "cancel")) => (id, Self::Cancel),
            Some(_) => return None,
        };
        (!id.is_empty()).then_some((id, fact))
    }
}

/// A task record's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "camelCase")]
pub enum TaskRecord {
    /// Written by the replica that created the task, before it answers the client.
    #[serde(rename_all = "camelCase")]
    Created {
        /// Whose task it is: a fingerprint of the API key that created it (never the key).
        owner: String,
        /// The server and tool it calls.
        server: String,
        tool: String,
        /// Where it was created, and so where it is asked for.
        #[serde(default)]
        endpoint: TaskEndpoint,
        created_at: DateTime<Utc>,
        /// How long after its creation the task is kept, then forgotten.
        ttl_ms: u64,
        /// How often a client should poll it.
        poll_interval_ms: u64,
    },
    /// Where its job is now, written by the worker running it.
    #[serde(rename_all = "camelCase")]
    Status {
        state: JobState,
        /// The worker running it (or that ran it).
        worker: String,
        attempt: u32,
        /// The error that will be retried, for [`JobState::Retrying`].
        #[serde(skip_serializing_if = "Option::is_none", default)]
        error: Option<String>,
        /// Where the job's result record is, once it has one.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        outcome: Option<OutcomeAt>,
        at: DateTime<Utc>,
    },
    /// The client cancelled it.
    #[serde(rename_all = "camelCase")]
    Cancelled { at: DateTime<Utc> },
}

/// The endpoint a task belongs to: it is found only there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskEndpoint {
    /// Its named server's own endpoint, `/servers/{server}/mcp`.
    #[default]
    Named,
    /// `/mcp`, whose `call_tool` meta-tool made it.
    Mcp,
}

/// Where a task's job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Retrying,
    Succeeded,
    Failed,
    /// Stopped, or never started, because its client cancelled the task.
    Cancelled,
}

impl JobState {
    /// Its wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Retrying => "retrying",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the job is over: nothing later changes it.
    pub fn is_end(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// The place of a result record on the results topic: read when a client asks for the
/// task's result, never kept in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeAt {
    pub partition: i32,
    pub offset: i64,
}

impl TaskRecord {
    /// The fact this record is about, which decides its key.
    pub fn fact(&self) -> TaskFact {
        match self {
            Self::Created { .. } => TaskFact::Created,
            Self::Status { .. } => TaskFact::Status,
            Self::Cancelled { .. } => TaskFact::Cancel,
        }
    }
}

impl JsonRecord for TaskRecord {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fact_has_a_key_that_reads_back() {
        for fact in TaskFact::ALL {
            let key = fact.key("abc123");
            assert_eq!(TaskFact::parse(&key), Some(("abc123", fact)));
        }
        assert_eq!(TaskFact::parse("abc/other"), None);
        assert_eq!(TaskFact::parse("/status"), None);
    }

    #[test]
    fn a_record_reads_back_with_its_fact() {
        let record = TaskRecord::Status {
            state: JobState::Retrying,
            worker: "w-1".into(),
            attempt: 2,
            error: Some("upstream_timeout: server \"slow\" did not answer".into()),
            outcome: None,
            at: Utc::now(),
        };
        let read = TaskRecord::from_record(&record.to_record()).expect("reads back");
        assert_eq!(read, record);
        assert_eq!(read.fact(), TaskFact::Status);
        let written: serde_json::Value = serde_json::from_slice(&record.to_record()).expect("json");
        assert_eq!(written["state"], JobState::Retrying.as_str());
    }
}
