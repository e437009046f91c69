//! The job contract: what a message on the jobs topic must hold for mcp-jobs to run it.
//!
//! - [`ScheduledJobEnvelope`]: the message value — job id, job type, payload, deadline.
//! - [`McpServersConfig`] / [`ServerConfig`]: the MCP servers a job describes, stdio or remote.
//! - [`JobType`] and [`ToolCall`]: what the job asks for, already checked against its servers.
//! - [`ContractError`]: why a message was refused, naming the offending field.
//!
//! This crate does no I/O: the worker parses with it, mcp-server validates tool
//! arguments with it, and both agree on one definition of a valid job.

mod envelope;
mod error;
mod servers;

pub use envelope::{JobType, ScheduledJobEnvelope, ToolCall, MAX_JOB_ID_CHARS};
pub use error::ContractError;
pub use servers::{McpServersConfig, RemoteServer, RemoteTransport, ServerConfig, StdioServer};
