//! When a job runs. A job whose `scheduledAt` is further ahead than `DELAY_MIN_MS`
//! leaves its partition for the delayed topic (`<topic>.delayed`, compacted, keyed by
//! jobID), so it holds up nothing behind it; the active dispatcher sends it back to the
//! jobs topic when due. A job due sooner waits in its slot; a job due now runs.

use std::time::Duration;

use chrono::{DateTime, Utc};

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
