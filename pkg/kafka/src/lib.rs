//! mcp-jobs on Kafka, for every process that reads or writes its topics (the worker,
//! the scheduler, the console, mcp-server): nothing here runs a job.
//!
//! - [`settings`]: brokers, topic names, the group, record limits, and `RDKAFKA_*`
//!   overrides applied per client role.
//! - [`topic`]: bounded reads of chosen partitions outside any group, and followers.
//! - [`follow`]: a compacted topic kept in memory as a view, followed in the background.
//! - [`group`]: a consumer group's lag and members, seen from outside.
//! - [`admin`]: the topics mcp-jobs needs, created or checked (`create-topics`).
//! - [`publish`]: one job sent to the jobs topic, checked first, and its result awaited.
//! - [`headers`]: trace context and header values on Kafka records.

pub mod admin;
pub mod follow;
pub mod group;
pub mod headers;
pub mod publish;
pub mod settings;
pub mod topic;

pub use settings::{KafkaSettings, RecordLimits};
