//! Backoff schedules for backon's `Retryable`, both exponential with jitter so that
//! many workers do not retry in step:
//! - infrastructure trouble (mcp-server or broker unavailable) is not a job's fault:
//!   from 100 ms, capped, never giving up — the caller decides when waiting is over;
//! - a failed attempt of a job waits `base`, `2·base`, … (capped) before the next try.

use std::time::Duration;

use backon::ExponentialBuilder;

pub fn infrastructure_backoff(max_delay: Duration) -> ExponentialBuilder {
    exponential_backoff(Duration::from_millis(100), max_delay)
}

/// Never gives up unless told (`with_max_times`).
pub fn exponential_backoff(min_delay: Duration, max_delay: Duration) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(min_delay)
        .with_max_delay(max_delay.max(min_delay))
        .with_jitter()
        .without_max_times()
}
