//! kafka-worker: consumes scheduled jobs and runs them through mcp-server.
//!
//! - [`config`]: settings from the environment (incl. `RDKAFKA_*` overrides), checked at start.
//! - [`tool_client`]: the MCP client of mcp-server, telling infrastructure trouble from job failure.
//! - [`runner`]: runs one parsed job to a [`outcome::Outcome`], retrying what is not the job's fault.
//! - [`outcome`]: the result and dead-letter records every consumed message ends in.
//! - [`consumer`]: the Kafka loop — consume, run, write the outcome, then store the offset.
//! - [`publish`] and [`admin`]: the operator subcommands (send a job, create the topics).

pub mod admin;
pub mod config;
pub mod consumer;
pub mod outcome;
pub mod publish;
mod retry;
pub mod runner;
pub mod tool_client;

pub use config::{ConfigError, WorkerSettings};
