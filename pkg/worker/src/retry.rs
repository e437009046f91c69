//! The backoff for trouble that is not a job's fault (mcp-server or broker unavailable):
//! exponential from 100 ms, capped, jittered so that many workers do not retry in step,
//! and never giving up — the caller decides when waiting is over.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

pub(crate) fn infrastructure_backoff(max_delay: Duration) -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(max_delay)
        .with_jitter()
        .without_max_times()
        .build()
}
