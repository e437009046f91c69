//! The job contract: what a message on the jobs topic must hold for mcp-jobs to run it.
//!
//! - [`ScheduledJobEnvelope`]: the message value — job id, job type, payload, deadline.
//! - [`McpServersConfig`] / [`ServerConfig`]: the MCP servers a job describes, stdio or remote.
//! - [`JobType`] and [`ToolCall`]: what the job asks for, already checked against its servers.
//! - [`ContractError`]: why a message was refused, naming the offending field.
//! - [`FailureKind`]: why a job failed, as outcomes and dead letters name it, and
//!   whether another attempt may cure it.
//! - [`Secrets`] / [`redact_record`]: what of a job (and its Kafka headers) is secret, and hiding it.
//! - [`META_JOB_ID`] / [`META_ATTEMPT`]: the `_meta` keys naming the job on every call it makes.
//! - [`headers`]: the Kafka headers mcp-jobs writes (dead letters, delayed jobs, replays).
//! - [`outcome`]: the result record every job ends in, written by the worker and read
//!   by the console, the CLI and the tests.
//! - [`status`]: where each job in flight is, as its worker reports it for the console.
//! - [`task`]: durable MCP tasks as records on the tasks topic: who owns each, where its
//!   job is, whether it was cancelled.
//!
//! This crate does no I/O: the worker parses with it, mcp-server validates tool
//! arguments with it, and both agree on one definition of a valid job.

mod envelope;
mod error;
mod failure;
pub mod headers;
pub mod outcome;
mod redact;
mod servers;
pub mod status;
pub mod task;

pub use envelope::{JobType, ScheduledJobEnvelope, ToolCall, MAX_JOB_ID_CHARS};
pub use error::ContractError;
pub use failure::FailureKind;
pub use redact::{
    is_credential_name, redact_job_secrets, redact_record, secrets_of_message, Secrets, REDACTED,
};
pub use servers::{McpServersConfig, RemoteServer, RemoteTransport, ServerConfig, StdioServer};

/// A record value written as JSON, read back with the same type.
pub trait JsonRecord: serde::Serialize + serde::de::DeserializeOwned {
    fn from_record(value: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(value)
    }

    fn to_record(&self) -> Vec<u8> {
        // Records of plain fields, strings and JSON values always serialize.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// `_meta` key carrying the job's id on every MCP call the worker makes for it, so tools
/// (and the traces and logs of mcp-server) can tell which job a call belongs to and
/// deduplicate redelivered jobs.
pub const META_JOB_ID: &str = "mcp-jobs/jobId";
/// `_meta` key carrying the attempt number (1 for the first) beside [`META_JOB_ID`].
pub const META_ATTEMPT: &str = "mcp-jobs/attempt";
