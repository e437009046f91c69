//! Events that happen by the thousand (an occurrence fired, a job delayed) are logged one
//! by one at DEBUG and summed up at INFO once a period: a burst of 10,000 is one line
//! saying so, not 10,000 lines hiding everything else.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often a summary line is written (when anything happened).
pub const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Counts of events, logged at INFO as one line per period: written by the first
/// [`Tally::add`] after the period has passed.
pub struct Tally {
    /// What is summed up, e.g. `scheduler`.
    what: &'static str,
    every: Duration,
    counts: Mutex<(Instant, BTreeMap<&'static str, u64>)>,
}

impl Tally {
    pub fn new(what: &'static str) -> Self {
        Self::every(what, SUMMARY_EVERY)
    }

    pub fn every(what: &'static str, every: Duration) -> Self {
        Self {
            what,
            every,
            counts: Mutex::new((Instant::now(), BTreeMap::new())),
        }
    }

    /// Counts `n` events of `kind`; writes the summary when its period has passed.
    pub fn add(&self, kind: &'static str, n: u64) {
        let due = {
            let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            *counts.1.entry(kind).or_default() += n;
            (counts.0.elapsed() >= self.every).then(|| {
                counts.0 = Instant::now();
                std::mem::take(&mut counts.1)
            })
        };
        if let Some(counts) = due.filter(|c| c.values().any(|n| *n > 0)) {
            let summary = counts
                .iter()
                .map(|(kind, n)| format!("{n} {kind}"))
                .collect::<Vec<_>>()
                .join(", ");
            tracing::info!(period_s = self.every.as_secs(), "{}: {summary}", self.what);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_until_the_period_passes_then_starts_again() {
        let tally = Tally::every("test", Duration::from_millis(30));
        tally.add("fired", 2);
        tally.add("fired", 3);
        assert_eq!(
            tally
                .counts
                .lock()
                .map(|c| c.1.get("fired").copied())
                .ok()
                .flatten(),
            Some(5)
        );
        std::thread::sleep(Duration::from_millis(40));
        tally.add("sent", 1);
        assert!(tally.counts.lock().map(|c| c.1.is_empty()).unwrap_or(false));
    }
}
