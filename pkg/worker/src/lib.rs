//! kafka-worker: the job sources of the engine ([`mcp_jobs_engine`]), Kafka by default,
//! Redis Streams with `JOB_SOURCE=redis`. What it shares with the other Kafka users
//! (topics, reads, publishing, lag) is [`mcp_jobs_kafka`]'s.
//!
//! - [`config`]: settings from the environment, checked at start.
//! - [`consumer`]: the Kafka loop — fetch, run many jobs at once, write outcomes, store
//!   offsets only behind finished work, pause on back-pressure, handle rebalances.
//! - [`redis_source`]: the Redis Streams loop — blocking group reads, acknowledgement
//!   after the outcome, claims of a dead worker's entries, dead-lettering after too
//!   many deliveries.
//! - [`health`]: `/metrics`, `/health` and `/ready` on `METRICS_PORT`.
//! - [`lag`]: how far the source is behind, and the replicas that calls for.
//! - [`task_status`]: where a durable task's job is, told on the tasks topic.
//! - [`job_status`]: where every job in flight is, told on the status topic for the console.

pub mod config;
pub mod consumer;
pub mod health;
pub mod job_status;
pub mod lag;
pub mod redis_source;
pub mod task_status;

pub use config::{ConfigError, JobSource, RedisSourceSettings, WorkerSettings};
