//! The operator's view of a deployment, read from its topics alone, in bounded slices.
//!
//! - [`dead_letters`]: find dead letters (by kind, job, time) and replay them to their
//!   source topic, marked as replays.

pub mod dead_letters;
