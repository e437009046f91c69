//! The end-to-end harness: a real Apache Kafka broker, real `mcp-server` and
//! `kafka-worker` processes built from this workspace, real Redis servers, talked to over
//! real sockets. Tests share the run's broker but nothing on it (topics and groups
//! of their own) and get ports of their own; every process is stopped when its handle
//! drops.
//!
//! - [`process`]: binaries, child processes, ports, waiting.
//! - [`kafka`]: the broker, topics, records.
//! - [`mcp`]: mcp-server and the MCP servers jobs call.
//! - [`workers`]: kafka-worker as worker, dispatcher, console and CLI.
//! - [`deployment`]: the usual fixture: a job topic, mcp-server and a worker.
//! - [`jobs`]: fixture jobs, publishing, outcomes and dead letters.
//! - [`metrics`], [`otlp`], [`redis_server`]: Prometheus scrapes, a span receiver, Redis.

pub mod deployment;
pub mod jobs;
pub mod kafka;
pub mod mcp;
pub mod metrics;
pub mod otlp;
pub mod process;
pub mod redis_server;
pub mod workers;

pub use deployment::*;
pub use jobs::*;
pub use kafka::*;
pub use mcp::*;
pub use mcp_jobs_contract::headers;
pub use mcp_jobs_contract::outcome::{Outcome, Status};
pub use metrics::*;
pub use otlp::*;
pub use process::*;
pub use redis_server::*;
pub use workers::*;
