//! One message's way to its outcome, the same for every source: decode it, decide
//! what to do (run it now, let it wait in its slot, delay it, or refuse it), run it,
//! and hand the outcome to the source's [`Sink`], which makes it durable before the
//! source lets the message go (commits its offset, acknowledges its entry).

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mcp_jobs_contract::outcome::{Failure, Outcome, Status};
use mcp_jobs_contract::status::{calls_of, JobStatus};
use mcp_jobs_contract::task::JobState;
use mcp_jobs_contract::FailureKind;

use crate::metrics;
use crate::runner::{JobRunner, Progress};
use crate::timing::Timing;

/// Where a source's outcomes go.
pub trait Sink: Sync {
    /// Makes `outcome` durable: its result record and, for a failure, its dead letter.
    /// Returns once it is (a source may retry for as long as its store is unreachable).
    fn write(&self, outcome: &Outcome) -> impl Future<Output = ()> + Send;

    /// Keeps job `job_id`, not due until `due`, elsewhere until it is. `Err` says why it
    /// cannot: the job is then refused as `delay_refused`, never run early.
    fn delay(
        &self,
        job_id: &str,
        due: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// Hears where job `job_id`'s run is, as it goes; must not block. Nothing by default.
    fn progress(&self, job_id: &str, status: JobStatus) {
        let _ = (job_id, status);
    }

    /// Whether job `job_id` was cancelled before it starts (a durable task its client
    /// cancelled): it is then not run. No, by default.
    fn was_cancelled(&self, job_id: &str) -> impl Future<Output = bool> + Send {
        let _ = job_id;
        std::future::ready(false)
    }

    /// Resolves if job `job_id` is cancelled while it runs: its run is then dropped,
    /// which cancels its calls. Never, by default.
    fn cancelled(&self, job_id: &str) -> impl Future<Output = ()> + Send {
        let _ = job_id;
        std::future::pending()
    }
}

/// A received message, as the lifecycle needs it.
pub struct Message<'a> {
    pub payload: &'a [u8],
    /// Sent by the dispatcher once due (by its clock): it may wait in its slot, but is
    /// never delayed again.
    pub released: bool,
    /// The dead letter it replays, if it does.
    pub replay_of: Option<String>,
    /// Where it came from, for the log: `topic[partition]@offset`, `stream/id`.
    pub origin: &'a str,
}

/// Takes `message` to a durable outcome through `sink`. `ran` is called once the job
/// no longer runs (its outcome may still be on its way): a source frees its slot then.
/// Run it inside a [`crate::runner::job_span`].
pub async fn handle(
    runner: &JobRunner,
    delay_min: Duration,
    message: Message<'_>,
    sink: &impl Sink,
    ran: impl FnOnce(),
) {
    let parsed = runner.parse(message.payload);
    let due = parsed
        .as_ref()
        .ok()
        .and_then(|job| Some((job.job_id.clone(), job.scheduled_at?.with_timezone(&Utc))));
    if let Some((job_id, due)) = due {
        match Timing::of(due, Utc::now(), delay_min, message.released) {
            Timing::Later => {
                ran();
                if let Err(why) = sink.delay(&job_id, due).await {
                    let failure = Failure {
                        kind: FailureKind::DelayRefused,
                        message: why,
                    };
                    refuse(runner, Some(job_id), failure, message.origin, sink).await;
                }
                return;
            }
            Timing::Soon(wait) => tokio::time::sleep(wait).await,
            Timing::Now => {}
        }
    }
    let job_id = parsed.as_ref().ok().map(|job| job.job_id.clone());
    let started_at = Utc::now();
    let in_flight = parsed.as_ref().ok().map(|job| {
        let (calls, more_calls) = calls_of(job);
        (job.job_type.as_str(), calls, more_calls)
    });
    let attempts = AtomicU32::new(0);
    let report = |progress| {
        if let Progress::Attempt(n) = progress {
            attempts.store(n, Ordering::Relaxed);
        }
        if let (Some(job_id), Some((job_type, calls, more_calls))) = (&job_id, &in_flight) {
            let now = Utc::now();
            let (state, attempt, error, next_attempt_at) = match progress {
                Progress::Attempt(n) => (JobState::Running, n, None, None),
                Progress::Retrying {
                    attempt,
                    error,
                    retry_in,
                } => {
                    let next = chrono::Duration::from_std(retry_in).ok().map(|d| now + d);
                    (JobState::Retrying, attempt, Some(error), next)
                }
            };
            let status = JobStatus {
                state,
                worker: runner.worker_id().to_owned(),
                attempt,
                started_at,
                at: now,
                job_type: (*job_type).to_owned(),
                calls: calls.clone(),
                more_calls: *more_calls,
                error,
                next_attempt_at,
                task: false,
            };
            sink.progress(job_id, status);
        }
    };
    let cancelled = || {
        let attempts = attempts.load(Ordering::Relaxed);
        let id = job_id.clone().unwrap_or_default();
        let outcome = Outcome::cancelled(id, attempts, started_at, runner.worker_id());
        metrics::job_finished(&outcome);
        outcome
    };
    let mut outcome = match &job_id {
        Some(id) if sink.was_cancelled(id).await => cancelled(),
        Some(id) => tokio::select! {
            () = sink.cancelled(id) => cancelled(),
            outcome = runner.run_parsed(parsed, message.payload, &report) => outcome,
        },
        None => runner.run_parsed(parsed, message.payload, &report).await,
    };
    outcome.replay_of = message.replay_of;
    ran();
    sink.write(&outcome).await;
    log_outcome(&outcome, message.origin);
}

/// Gives a message that will not run (`job_id` if it has one) its failed outcome
/// through `sink`, as for a job that ran and failed.
pub async fn refuse(
    runner: &JobRunner,
    job_id: Option<String>,
    failure: Failure,
    origin: &str,
    sink: &impl Sink,
) {
    let outcome = Outcome::refused(job_id, failure, runner.worker_id());
    metrics::job_finished(&outcome);
    sink.write(&outcome).await;
    log_outcome(&outcome, origin);
}

/// A failure at WARN (it was dead-lettered), a success at DEBUG.
pub fn log_outcome(outcome: &Outcome, origin: &str) {
    let job_id = outcome.job_id.as_deref().unwrap_or("(none)");
    match (&outcome.status, &outcome.error) {
        (Status::Failed, Some(error)) => tracing::warn!(
            job_id, origin, attempts = outcome.attempts, kind = %error.kind,
            error = %error.message, "job failed; dead-lettered"
        ),
        _ => tracing::debug!(job_id, origin, attempts = outcome.attempts, "job succeeded"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::runner::RunnerSettings;
    use crate::tool_client::ToolClient;

    /// Records what the lifecycle hands a source; refuses delays when told to.
    #[derive(Default)]
    struct Recorded {
        written: Mutex<Vec<Outcome>>,
        delayed: Mutex<Vec<(String, DateTime<Utc>)>>,
        refuse_delays: bool,
    }

    impl Sink for Recorded {
        async fn write(&self, outcome: &Outcome) {
            self.written.lock().expect("lock").push(outcome.clone());
        }

        async fn delay(&self, job_id: &str, due: DateTime<Utc>) -> Result<(), String> {
            if self.refuse_delays {
                return Err(format!("nowhere to keep {job_id}"));
            }
            self.delayed
                .lock()
                .expect("lock")
                .push((job_id.to_owned(), due));
            Ok(())
        }
    }

    /// A runner whose mcp-server is never reached: these paths do not call it.
    fn runner() -> JobRunner {
        let settings = RunnerSettings {
            job_timeout: Duration::from_secs(1),
            max_attempts: 1,
            retry_backoff: Duration::from_millis(10),
            retry_max_backoff: Duration::from_millis(10),
            max_message_bytes: 10_000,
            worker_id: "w-1".into(),
        };
        JobRunner::new(
            ToolClient::new(&["http://127.0.0.1:9/mcp".to_owned()], None, 1),
            settings,
        )
    }

    fn job_due_in(minutes: i64) -> (Vec<u8>, DateTime<Utc>) {
        let due = Utc::now() + chrono::Duration::minutes(minutes);
        let job = serde_json::json!({
            "jobID": "later", "jobType": "list-tools", "scheduledAt": due.to_rfc3339(),
            "payload": { "mcpServers": { "t": { "command": "mcp-server-time" } } }
        });
        (job.to_string().into_bytes(), due)
    }

    async fn handled(sink: &Recorded, payload: &[u8], released: bool) -> bool {
        let mut ran = false;
        let message = Message {
            payload,
            released,
            replay_of: None,
            origin: "jobs[0]@7",
        };
        handle(&runner(), Duration::from_secs(2), message, sink, || {
            ran = true
        })
        .await;
        ran
    }

    #[tokio::test]
    async fn a_job_due_later_is_delayed_not_run() {
        let sink = Recorded::default();
        let (payload, due) = job_due_in(60);
        assert!(handled(&sink, &payload, false).await, "its slot is freed");
        let delayed = sink.delayed.lock().expect("lock").clone();
        assert_eq!(delayed.len(), 1);
        assert_eq!(delayed[0].0, "later");
        assert_eq!(delayed[0].1.timestamp(), due.timestamp());
        assert!(
            sink.written.lock().expect("lock").is_empty(),
            "no outcome yet"
        );
    }

    #[tokio::test]
    async fn a_delay_the_source_cannot_keep_is_refused_with_its_reason() {
        let sink = Recorded {
            refuse_delays: true,
            ..Recorded::default()
        };
        let (payload, _) = job_due_in(60);
        handled(&sink, &payload, false).await;
        let written = sink.written.lock().expect("lock").clone();
        assert_eq!(written.len(), 1);
        assert_eq!(
            written[0].error_kind(),
            Some(FailureKind::DelayRefused.as_str())
        );
        assert_eq!(written[0].error_message(), Some("nowhere to keep later"));
        assert_eq!(written[0].attempts, 0, "never run");
        assert_eq!(written[0].worker, "w-1");
    }

    #[tokio::test]
    async fn a_message_that_is_no_job_fails_at_once() {
        let sink = Recorded::default();
        assert!(handled(&sink, b"{ not json", false).await);
        let written = sink.written.lock().expect("lock").clone();
        assert_eq!(written.len(), 1);
        assert_eq!(
            written[0].error_kind(),
            Some(FailureKind::MalformedJson.as_str())
        );
        assert!(sink.delayed.lock().expect("lock").is_empty());
    }
}
