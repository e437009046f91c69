//! The dispatcher's metrics (Prometheus names, through the `metrics` facade):
//!
//! - `mcp_jobs_scheduler_active`: 1 on the replica whose dispatcher is active.
//! - `mcp_jobs_scheduler_dispatcher_seen`: 1 when this replica sees an active dispatcher
//!   in the group (its own or another's), 0 when it sees none: schedules then do not
//!   fire and delayed jobs wait. Alert on its maximum over the workers being 0.
//! - `mcp_jobs_scheduler_fired_total{schedule}`: occurrences published.
//! - `mcp_jobs_scheduler_late_total{schedule}`: occurrences published more than a
//!   second after their time (nominal + jitter), e.g. caught up after a takeover.
//! - `mcp_jobs_scheduler_lateness_seconds{schedule}`: how late each occurrence fired.
//! - `mcp_jobs_scheduler_skipped_total{schedule, reason}`: occurrences not fired,
//!   `reason` = overlap (the previous run had no outcome) | outside_catchup (missed by
//!   more than the catch-up window).
//! - `mcp_jobs_scheduler_delayed_waiting`: delayed jobs held, not yet due.
//! - `mcp_jobs_scheduler_delayed_sent_total`: delayed jobs sent back when due.
//! - `mcp_jobs_scheduler_delayed_dropped_total`: records on the delayed topic over
//!   `MAX_MESSAGE_BYTES`, which no worker wrote and none would run.
//! - `mcp_jobs_scheduler_transaction_seconds`: the time of each transaction that
//!   publishes jobs with their record.

use std::time::Duration;

/// Fired later than this after its time, an occurrence counts as late.
pub const LATE_AFTER: Duration = Duration::from_secs(1);

pub fn active(active: bool) {
    metrics::gauge!("mcp_jobs_scheduler_active").set(if active { 1.0 } else { 0.0 });
}

pub fn dispatcher_seen(seen: bool) {
    metrics::gauge!("mcp_jobs_scheduler_dispatcher_seen").set(if seen { 1.0 } else { 0.0 });
}

pub fn fired(schedule: &str, lateness: Duration) {
    let schedule = schedule.to_owned();
    metrics::counter!("mcp_jobs_scheduler_fired_total", "schedule" => schedule.clone())
        .increment(1);
    metrics::histogram!("mcp_jobs_scheduler_lateness_seconds", "schedule" => schedule.clone())
        .record(lateness.as_secs_f64());
    if lateness > LATE_AFTER {
        metrics::counter!("mcp_jobs_scheduler_late_total", "schedule" => schedule).increment(1);
    }
}

pub fn skipped(schedule: &str, reason: &'static str, count: u64) {
    metrics::counter!("mcp_jobs_scheduler_skipped_total", "schedule" => schedule.to_owned(), "reason" => reason)
        .increment(count);
}

pub fn delayed_waiting(count: usize) {
    metrics::gauge!("mcp_jobs_scheduler_delayed_waiting").set(count as f64);
}

pub fn delayed_sent(count: usize) {
    metrics::counter!("mcp_jobs_scheduler_delayed_sent_total").increment(count as u64);
}

pub fn transaction(took: Duration) {
    metrics::histogram!("mcp_jobs_scheduler_transaction_seconds").record(took.as_secs_f64());
}

pub fn delayed_dropped() {
    metrics::counter!("mcp_jobs_scheduler_delayed_dropped_total").increment(1);
}
