//! Scheduled jobs on Kafka alone: recurring schedules and delayed jobs, with no store
//! but the broker. Run by `kafka-worker` (`run` and `scheduler`).
//!
//! - [`schedule`]: a schedule as written (cron, time zone, overlap, catch-up window,
//!   jitter, start/end), checked field by field, and its occurrences (DST rules).
//! - [`catalog`]: the compacted schedules topic — definitions and the dispatcher's
//!   state, read back into a catalog.
//! - [`manage`]: `kafka-worker schedules apply | list | pause | resume | trigger | delete`.
//! - [`dispatcher`]: the one active dispatcher (elected through group membership,
//!   fenced by transactions): fires occurrences, catches up, skips overlaps, and sends
//!   delayed jobs back when due.
//! - [`delayed`]: `kafka-worker delayed list | show | cancel`: the delayed jobs waiting,
//!   read as the dispatcher reads them, and cancelling one.
//! - [`waiting`]: the index of delayed jobs waiting for their time.
//! - [`presence`]: whether any dispatcher is active, for `/ready`, the CLI and the console.
//! - [`metrics`]: what the dispatcher reports.

pub mod catalog;
pub mod delayed;
pub mod dispatcher;
pub mod manage;
pub mod metrics;
pub mod presence;
pub mod schedule;
pub mod waiting;
