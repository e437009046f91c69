//! The job metrics every job source reports the same way (Prometheus names, recorded
//! through the `metrics` facade; the binary installs the exporter).
//!
//! - `mcp_jobs_jobs_total{job_type, outcome}`: jobs finished, `outcome` = succeeded | failed.
//! - `mcp_jobs_job_attempts_total{job_type}`: attempts made by finished jobs.
//! - `mcp_jobs_retries_total{cause}`: attempts retried by cause (a failure kind), and
//!   waits for mcp-server (`cause="mcp_server_unavailable"`).
//! - `mcp_jobs_job_duration_seconds{job_type, outcome}`: from start to outcome.
//! - `mcp_jobs_jobs_in_flight`: jobs running now.
//! - `mcp_jobs_outcomes_truncated_total{record}`: outcome records cut to fit,
//!   `record` = result | dead_letter.
//! - `mcp_jobs_jobs_delayed_total`: jobs not due yet, moved to the delayed topic (they
//!   get their outcome when they run).
//! - `mcp_jobs_outcomes_unwritable_total{record}`: records the broker refused for good
//!   even cut down (an error retrying cannot cure); the offset moves on.

use mcp_jobs_contract::outcome::{Outcome, Status};

/// The `job_type` label of a message that was not a readable job.
const INVALID_JOB: &str = "invalid";

pub fn job_finished(outcome: &Outcome) {
    let job_type = outcome
        .job_type
        .clone()
        .unwrap_or_else(|| INVALID_JOB.into());
    let status = match outcome.status {
        Status::Succeeded => "succeeded",
        Status::Failed => "failed",
    };
    metrics::counter!("mcp_jobs_jobs_total", "job_type" => job_type.clone(), "outcome" => status)
        .increment(1);
    metrics::counter!("mcp_jobs_job_attempts_total", "job_type" => job_type.clone())
        .increment(u64::from(outcome.attempts));
    let seconds = (outcome.finished_at - outcome.started_at)
        .to_std()
        .unwrap_or_default()
        .as_secs_f64();
    metrics::histogram!("mcp_jobs_job_duration_seconds", "job_type" => job_type, "outcome" => status)
        .record(seconds);
}

pub fn retried(cause: &str) {
    metrics::counter!("mcp_jobs_retries_total", "cause" => cause.to_owned()).increment(1);
}

pub fn in_flight(jobs: usize) {
    metrics::gauge!("mcp_jobs_jobs_in_flight").set(jobs as f64);
}

pub fn outcome_truncated(record: &'static str) {
    metrics::counter!("mcp_jobs_outcomes_truncated_total", "record" => record).increment(1);
}

pub fn outcome_unwritable(record: &'static str) {
    metrics::counter!("mcp_jobs_outcomes_unwritable_total", "record" => record).increment(1);
}

pub fn job_delayed() {
    metrics::counter!("mcp_jobs_jobs_delayed_total").increment(1);
}
