//! A durable task's job as the worker sees it: where it is, told on the tasks topic for
//! every mcp-server replica to answer `tasks/get` with (each attempt as it starts, each
//! retry with its error, the end with the place of the result record; one writer per
//! worker hands them to the producer in the order they happened, so a late "running"
//! never lands after the end, and awaits their acknowledgements apart, so one task's
//! write does not wait for another's); and whether its client cancelled it, read from
//! the same topic.

use std::time::Duration;

use chrono::Utc;
use mcp_jobs_contract::outcome::Outcome;
use mcp_jobs_contract::status::JobStatus;
use mcp_jobs_contract::task::{JobState, OutcomeAt, TaskRecord};
use mcp_jobs_tasks::{Registry, TaskStore};
use tokio::sync::{mpsc, oneshot};

struct Report {
    id: String,
    record: TaskRecord,
    /// Told once the record is written (or given up), for the end of a job.
    written: Option<oneshot::Sender<()>>,
}

/// How often a running task's job looks for its cancellation.
const CANCEL_POLL: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub struct TaskReporter {
    worker: String,
    queue: mpsc::UnboundedSender<Report>,
    /// The tasks as the topic has them: cancellations.
    registry: Registry,
}

impl TaskReporter {
    /// Starts the writer; it ends when the last reporter is dropped.
    pub fn start(store: TaskStore, registry: Registry, worker: &str) -> Self {
        let (queue, mut reports) = mpsc::unbounded_channel::<Report>();
        tokio::spawn(async move {
            while let Some(report) = reports.recv().await {
                let enqueued = store.enqueue(&report.id, &report.record);
                tokio::spawn(async move {
                    let written = match enqueued {
                        Ok(acknowledged) => acknowledged.await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = written {
                        tracing::warn!(task = %report.id, error = %e, "could not report the task's job on the tasks topic");
                    }
                    if let Some(written) = report.written {
                        let _ = written.send(());
                    }
                });
            }
        });
        Self {
            worker: worker.to_owned(),
            queue,
            registry,
        }
    }

    /// Whether task `id` was cancelled, the tasks topic read up to its end first: for a
    /// job about to start. A topic that cannot be read lets the job run.
    pub async fn was_cancelled(&self, id: &str) -> bool {
        self.registry.cancelled(id).await.unwrap_or_else(|e| {
            tracing::warn!(task = id, error = %e, "could not read the tasks topic for a cancellation; running the job");
            false
        })
    }

    /// Resolves within [`CANCEL_POLL`] of a cancellation of task `id` reaching this
    /// worker: for a job that runs.
    pub async fn cancelled(&self, id: &str) {
        while !self.registry.cancelled_now(id) {
            tokio::time::sleep(CANCEL_POLL).await;
        }
    }

    /// Tells where task `id`'s job is now; does not wait.
    pub fn progress(&self, id: &str, status: &JobStatus) {
        let record = self.status(status.state, status.attempt, status.error.clone(), None);
        self.send(id, record, None);
    }

    /// Tells that task `id`'s job ended, and where its result record is (`None` if it
    /// could not be written); returns once that is on the tasks topic.
    pub async fn finished(&self, id: &str, outcome: &Outcome, at: Option<OutcomeAt>) {
        let (state, attempts) = (end_of(outcome), outcome.attempts);
        let (written, wait) = oneshot::channel();
        self.send(id, self.status(state, attempts, None, at), Some(written));
        let _ = wait.await;
    }

    fn status(
        &self,
        state: JobState,
        attempt: u32,
        error: Option<String>,
        outcome: Option<OutcomeAt>,
    ) -> TaskRecord {
        TaskRecord::Status {
            state,
            worker: self.worker.clone(),
            attempt,
            error,
            outcome,
            at: Utc::now(),
        }
    }

    fn send(&self, id: &str, record: TaskRecord, written: Option<oneshot::Sender<()>>) {
        let report = Report {
            id: id.to_owned(),
            record,
            written,
        };
        // The writer lives as long as any reporter: a send cannot fail while we hold one.
        let _ = self.queue.send(report);
    }
}

fn end_of(outcome: &Outcome) -> JobState {
    if outcome.succeeded() {
        JobState::Succeeded
    } else if outcome.was_cancelled() {
        JobState::Cancelled
    } else {
        JobState::Failed
    }
}
