//! Jobs that are not due yet. A job whose `scheduledAt` is further ahead than
//! `DELAY_MIN_MS` leaves its partition for the delayed topic (`<topic>.delayed`,
//! compacted, keyed by jobID), so it holds up nothing behind it; the active dispatcher
//! sends it back to the jobs topic when due, with a tombstone for its key in the same
//! transaction. What the value does not say travels in headers.

use std::time::Duration;

use chrono::{DateTime, Utc};
use mcp_jobs_contract::headers::{DELAYED_FROM, DUE_AT, ORIGINAL_KEY};
use rdkafka::message::Headers;
/// Trace context headers carried over, so the run later continues the job's trace.
pub const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

/// What to do with a job that names a `scheduledAt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Due, or past due: run it.
    Now,
    /// Due within `DELAY_MIN_MS`: wait this long in its slot, then run it.
    Soon(Duration),
    /// Due later: move it to the delayed topic.
    Later,
}

impl Timing {
    /// `released`: the dispatcher found the job due by its own clock; this worker's
    /// clock may run behind, so the job waits here at most `delay_min`, never again in
    /// the delayed topic.
    pub fn of(due: DateTime<Utc>, now: DateTime<Utc>, delay_min: Duration, released: bool) -> Self {
        match (due - now).to_std() {
            Err(_) => Self::Now,
            Ok(wait) if wait.is_zero() => Self::Now,
            Ok(wait) if wait <= delay_min => Self::Soon(wait),
            Ok(_) if released => Self::Soon(delay_min),
            Ok(_) => Self::Later,
        }
    }
}

/// The headers of a delayed job's record.
pub fn headers(
    due: DateTime<Utc>,
    original_key: Option<&[u8]>,
    delayed_from: String,
    trace: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, Vec<u8>)> {
    let mut headers = vec![
        (
            DUE_AT.to_owned(),
            due.timestamp_millis().to_string().into_bytes(),
        ),
        (DELAYED_FROM.to_owned(), delayed_from.into_bytes()),
    ];
    if let Some(key) = original_key {
        headers.push((ORIGINAL_KEY.to_owned(), key.to_vec()));
    }
    headers.extend(
        trace
            .into_iter()
            .map(|(name, value)| (name, value.into_bytes())),
    );
    headers
}

/// When a delayed record is due, from its header; `None` for a record without one
/// (not written by a worker), which the dispatcher sends on at once.
pub fn due_of(headers: Option<&impl Headers>) -> Option<i64> {
    std::str::from_utf8(header(headers, DUE_AT)?)
        .ok()?
        .parse()
        .ok()
}

/// The value of header `name`, if the record has it.
pub fn header<'a, H: Headers>(headers: Option<&'a H>, name: &str) -> Option<&'a [u8]> {
    headers?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing() {
        let now = Utc::now();
        let min = Duration::from_secs(2);
        let hour = chrono::Duration::hours(1);
        assert_eq!(Timing::of(now - hour, now, min, false), Timing::Now);
        assert_eq!(Timing::of(now, now, min, false), Timing::Now);
        assert_eq!(
            Timing::of(now + chrono::Duration::milliseconds(1500), now, min, false),
            Timing::Soon(Duration::from_millis(1500))
        );
        assert_eq!(Timing::of(now + hour, now, min, false), Timing::Later);
        // Released by a dispatcher whose clock runs ahead: never back to the delayed topic.
        assert_eq!(Timing::of(now + hour, now, min, true), Timing::Soon(min));
    }
}
