//! Whether a process is doing its work, for its `/ready` probe: shared by the consumer,
//! the Redis source and the schedule dispatcher, whichever of them a process runs, and
//! read by the endpoint that serves the probe.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Whether the process is doing its work (consuming, or dispatching for `kafka-worker
/// scheduler`): set once it has started, cleared when it starts shutting down. And
/// what the dispatcher in this process is doing, if one runs.
#[derive(Clone, Default)]
pub struct Readiness {
    ready: Arc<AtomicBool>,
    scheduler: Arc<Mutex<Option<String>>>,
}

impl Readiness {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Describes the dispatcher's role, e.g. `active (worker-1)`.
    pub fn set_scheduler(&self, role: String) {
        *self
            .scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(role);
    }

    /// Whether it is ready, and the probe's body: `ready` or `not consuming`, then the
    /// dispatcher's role on a line of its own if one runs.
    pub fn report(&self) -> (bool, String) {
        let ready = self.ready.load(Ordering::Relaxed);
        let mut body = if ready { "ready" } else { "not consuming" }.to_owned();
        if let Some(role) = &*self
            .scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            body.push_str("\nscheduler: ");
            body.push_str(role);
        }
        (ready, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_says_whether_ready_and_the_dispatcher_s_role() {
        let readiness = Readiness::default();
        assert_eq!(readiness.report(), (false, "not consuming".to_owned()));
        readiness.set_ready(true);
        readiness.set_scheduler("active (worker-1)".to_owned());
        assert_eq!(
            readiness.report(),
            (true, "ready\nscheduler: active (worker-1)".to_owned())
        );
    }
}
