//! kafka-worker: the job sources of the engine ([`mcp_jobs_engine`]), Kafka by default,
//! Redis Streams with `JOB_SOURCE=redis`.
//!
//! - [`config`]: settings from the environment (incl. `RDKAFKA_*` overrides), checked at start.
//! - [`consumer`]: the Kafka loop — fetch, run many jobs at once, write outcomes, store
//!   offsets only behind finished work, pause on back-pressure, handle rebalances.
//! - [`delayed`]: jobs not due yet, moved to the delayed topic until the dispatcher
//!   sends them back.
//! - [`redis_source`]: the Redis Streams loop — blocking group reads, acknowledgement
//!   after the outcome, claims of a dead worker's entries, dead-lettering after too
//!   many deliveries.
//! - [`replay`]: what a dead letter keeps of its message, and the mark of a replay.
//! - [`health`]: `/metrics`, `/health` and `/ready` on `METRICS_PORT`.
//! - [`trace_headers`]: W3C trace context in Kafka record headers.
//! - [`topic`]: reading bounded slices of a topic outside any group (the scheduler and
//!   the dead-letter commands read this way).
//! - [`publish`], [`admin`] and [`lag`]: the operator subcommands (send a job, create the
//!   topics, report the group's lag and the replicas it calls for).

pub mod admin;
pub mod config;
pub mod consumer;
pub mod delayed;
pub mod health;
pub mod lag;
pub mod publish;
pub mod redis_source;
pub mod replay;
pub mod topic;
pub mod trace_headers;

pub use config::{ConfigError, JobSource, RedisSourceSettings, WorkerSettings};
