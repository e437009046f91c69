//! State that every mcp-server replica shares, kept in Redis (`REDIS_URL`), so a caller
//! may reach any replica and see the same thing.
//!
//! - [`store`]: the lazily connected, self-reconnecting Redis handle, and why a call to
//!   it failed.
//! - [`messaging`]: client-to-client message queues with blocking waits (seed 002).
//! - [`wakeups`]: the replica's one Redis subscription, routing wake-ups to every
//!   waiting call.
//! - [`streams`]: Redis Streams operations on validated names (seed 004).

pub mod messaging;
pub mod store;
pub mod streams;
pub mod wakeups;

pub use messaging::{Mailboxes, MessagingError, MessagingSettings};
pub use store::{Store, StoreError};
pub use streams::{StreamName, Streams, StreamsError};
