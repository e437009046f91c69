//! The dispatcher: fires each schedule's occurrences and sends delayed jobs back when
//! they are due. Any number may run; one is active.
//!
//! - [`election`]: which dispatcher is active (the owner of the schedules partition).
//! - [`transaction`]: fencing and publishing: everything the active one writes goes in
//!   a Kafka transaction under one shared `transactional.id`.
//! - [`term`]: one term as the active dispatcher: load both topics to their end
//!   (committed records only) before firing anything, then follow them; its `release`
//!   reads due delayed jobs back by offset and sends them with their tombstones.
//! - [`plan`]: the pure decisions: which occurrences fire or are skipped at an instant
//!   (missed ones inside the catch-up window fire late, oldest first; older ones are
//!   skipped and counted; `overlap: skip` waits for the last run's outcome, read from
//!   the results topic), and when each schedule fires next.

mod election;
mod plan;
mod term;
mod transaction;

use std::time::{Duration, Instant};

use chrono::Utc;
use mcp_jobs_kafka::topic::{partition_count, ReadError, Reader};
use mcp_jobs_kafka::KafkaSettings;
use mcp_jobs_runtime::Readiness;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::ClientConfig;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics;
use crate::presence::{self, Presence};
use election::{latest, pause_on_error, Election, Membership};
use term::Term;
use transaction::TransactionError;

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Why a term as the active dispatcher ended before its partition was revoked.
#[derive(Debug, thiserror::Error)]
enum TermError {
    #[error("starting: {0}")]
    Start(#[from] SchedulerError),
    #[error("loading {schedules} and {delayed} did not finish within {limit:?}")]
    Loading {
        schedules: String,
        delayed: String,
        limit: Duration,
    },
    #[error("following {topic}: {source}")]
    FollowResults {
        topic: String,
        source: SchedulerError,
    },
    #[error(transparent)]
    Transaction(TransactionError),
}

/// The longest sleep between looks at the clock (a wall clock may jump).
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// How long loading both topics may take before this term is given up and tried again.
const LOAD_LIMIT: Duration = Duration::from_secs(120);

/// Runs a dispatcher until `shutdown`: standby while another is active, active when
/// this one owns the schedules partition.
pub async fn run(
    settings: KafkaSettings,
    ready: Readiness,
    shutdown: CancellationToken,
) -> Result<(), SchedulerError> {
    let group = presence::election_group(&settings);
    let (events, mut membership) = mpsc::unbounded_channel();
    let election: StreamConsumer<Election> = settings
        .consumer_config(&[
            ("group.id", &group),
            ("client.id", &settings.client_id),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "latest"),
            ("partition.assignment.strategy", "cooperative-sticky"),
        ])
        .create_with_context(Election { events })?;
    election.subscribe(&[settings.schedules_topic.as_str()])?;
    if let Err(e) =
        tokio::task::block_in_place(|| partition_count(&election, &settings.schedules_topic))
    {
        tracing::warn!(error = %e, "the scheduler waits for its topic");
    }
    tracing::info!(group, topic = %settings.schedules_topic, "scheduler started: standby until it owns the schedules partition");
    let mut assigned = false;
    let mut lookup_at = Instant::now();
    loop {
        metrics::active(false);
        if !assigned {
            if lookup_at <= Instant::now() {
                let seen = tokio::task::block_in_place(|| presence::look(&election, &settings));
                presence::record(&seen);
                ready.set_scheduler(match &seen {
                    Presence::Active(member) => format!("standby (active: {member})"),
                    other => format!("standby ({})", other.describe(&settings)),
                });
                lookup_at = Instant::now() + Duration::from_secs(10);
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                Some(event) = membership.recv() => assigned = latest(event, &mut membership) == Membership::Assigned,
                received = election.recv() => pause_on_error(received.err()).await,
                () = tokio::time::sleep(Duration::from_secs(10)) => {}
            }
            continue;
        }
        ready.set_scheduler(format!("active ({})", settings.client_id));
        metrics::dispatcher_seen(true);
        tracing::info!(worker = %settings.client_id, "scheduler active: this replica dispatches");
        metrics::active(true);
        let stepped_down = activate(&settings, &group, &election, &mut membership, &shutdown).await;
        metrics::active(false);
        match stepped_down {
            StepDown::Shutdown => return Ok(()),
            StepDown::Revoked => {
                tracing::info!(
                    "scheduler standby: the schedules partition moved to another replica"
                );
                assigned = false;
            }
            StepDown::Failed(reason) => {
                // Fenced by another owner, or the broker failing: look again shortly; a
                // revocation meanwhile makes this a standby.
                tracing::warn!(%reason, "scheduler stepped down; trying again in 5 s");
                ready.set_scheduler(format!("stepped down: {reason}"));
                let until = tokio::time::Instant::now() + Duration::from_secs(5);
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        Some(event) = membership.recv() => assigned = latest(event, &mut membership) == Membership::Assigned,
                        received = election.recv() => pause_on_error(received.err()).await,
                        () = tokio::time::sleep_until(until) => break,
                    }
                }
            }
        }
        lookup_at = Instant::now();
    }
}

enum StepDown {
    Shutdown,
    Revoked,
    Failed(TermError),
}

/// One term as the active dispatcher: fence the previous one, load, then fire until the
/// partition goes, the process stops, or a transaction cannot be committed for good.
async fn activate(
    settings: &KafkaSettings,
    group: &str,
    election: &StreamConsumer<Election>,
    membership: &mut mpsc::UnboundedReceiver<Membership>,
    shutdown: &CancellationToken,
) -> StepDown {
    let started = Instant::now();
    let (mut term, readers) = match tokio::task::block_in_place(|| Term::start(settings, group)) {
        Ok(started) => started,
        Err(e) => return StepDown::Failed(e.into()),
    };
    let mut results: Option<StreamConsumer<Reader>> = None;
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        if !term.loaded() && started.elapsed() > LOAD_LIMIT {
            return StepDown::Failed(TermError::Loading {
                schedules: settings.schedules_topic.clone(),
                delayed: settings.delayed_topic.clone(),
                limit: LOAD_LIMIT,
            });
        }
        if term.loaded() {
            if results.is_none() {
                term.log_loaded(started.elapsed());
                match tokio::task::block_in_place(|| term.results_reader()) {
                    Ok(reader) => results = Some(reader),
                    Err(source) => {
                        return StepDown::Failed(TermError::FollowResults {
                            topic: settings.results_topic.clone(),
                            source,
                        })
                    }
                }
            }
            if retry_at.is_none_or(|at| at <= tokio::time::Instant::now()) {
                match term.tick(Utc::now()).await {
                    Ok(()) => retry_at = None,
                    Err(e @ TransactionError::Aborted(_)) => {
                        tracing::warn!(error = %e, "scheduler transaction failed; retrying in 1 s");
                        retry_at = Some(tokio::time::Instant::now() + Duration::from_secs(1));
                    }
                    Err(e) => return StepDown::Failed(TermError::Transaction(e)),
                }
            }
        }
        // While loading, nothing fires: the records being read wake the loop.
        let wake = match (term.loaded(), retry_at) {
            (false, _) => tokio::time::Instant::now() + MAX_SLEEP,
            (true, Some(at)) => at,
            (true, None) => term.wake(Utc::now()),
        };
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return StepDown::Shutdown,
            Some(event) = membership.recv() => if event == Membership::Revoked {
                return StepDown::Revoked;
            },
            received = election.recv() => pause_on_error(received.err()).await,
            received = readers.schedules.recv() => term.on_schedule_record(received),
            received = readers.delayed.recv() => term.on_delayed_record(received),
            received = recv_from(results.as_ref()) => term.on_result(received),
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}

async fn recv_from(
    reader: Option<&StreamConsumer<Reader>>,
) -> Result<BorrowedMessage<'_>, KafkaError> {
    match reader {
        Some(reader) => reader.recv().await,
        None => std::future::pending().await,
    }
}

/// A client's settings (the worker's, with the operator's `RDKAFKA_*` overrides) with
/// `guards` on top: what the dispatcher's guarantees rest on, which no override may
/// change.
fn guarded(mut config: ClientConfig, guards: &[(&str, &str)]) -> ClientConfig {
    for (key, value) in guards {
        config.set(*key, *value);
    }
    config
}
