//! Durable MCP tasks on Kafka: any mcp-server replica creates one, and every replica
//! answers for it, from the compacted tasks topic
//! ([`mcp_jobs_contract::task`]) that they all follow.
//!
//! - [`id`]: task ids (128 random bits), owners (a fingerprint of the creating key) and
//!   the partition that holds all of one task's records.
//! - [`store`]: writes a task's records, each acknowledged by every in-sync replica of
//!   the broker before it counts.
//! - [`registry`]: the tasks as this process has read them, kept current by a follower,
//!   and read-your-writes: a task another replica created is waited for, not denied.

pub mod id;
pub mod registry;
pub mod store;

/// The name this crate's readers give the broker (they join no group).
const READER_GROUP: &str = "mcp-server-tasks";

pub use id::{new_task_id, owner_of, partition_of};
pub use registry::{Registry, RegistryError, Task, TaskStates};
pub use store::{StoreError, TaskStore};
