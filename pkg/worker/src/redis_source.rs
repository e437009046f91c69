//! The Redis Streams job source (seed 000), chosen with `JOB_SOURCE=redis`: the same
//! envelopes, engine, outcomes and metrics as the Kafka source, from a consumer group.
//!
//! - An entry holds the envelope in its `job` field (as one JSON string, as the seed
//!   advises), optionally `traceparent`/`tracestate`.
//! - New entries arrive by blocking `XREADGROUP` (Redis pushes them; no polling), on a
//!   connection of its own so the block holds up nothing else.
//! - An entry is acknowledged (`XACK`) only after its outcome is on the results stream
//!   (and, if it failed, the dead-letter stream): a crash repeats work, never loses it.
//! - Failover: entries pending longer than `REDIS_CLAIM_IDLE_MS` belonged to a worker
//!   that died; the others claim them (`XPENDING` + `XCLAIM`). A live worker touches its
//!   running entries (`XCLAIM … JUSTID`) so that only a dead worker's go idle.
//! - An entry already delivered `REDIS_MAX_DELIVERIES` times without an outcome is not
//!   run again: it is dead-lettered as `max_deliveries` and acknowledged.
//!
//! - A job's `scheduledAt` is honoured as on Kafka within `DELAY_MIN_MS` (it waits in its
//!   slot); a job due later is refused as `delay_refused`, since a stream has no place
//!   where it could wait unread.
//!
//! Unlike Kafka partitions, a stream gives no per-key order: entries run as they come.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use backon::Retryable;
use mcp_jobs_contract::outcome::{Failure, Outcome, Status};
use mcp_jobs_contract::{FailureKind, ScheduledJobEnvelope};
use mcp_jobs_engine::fit::{fit_dead_letter, fit_outcome};
use mcp_jobs_engine::lifecycle::{self, Sink};
use mcp_jobs_engine::metrics;
use mcp_jobs_engine::retry::infrastructure_backoff;
use mcp_jobs_engine::runner::{job_span, JobRunner};
use mcp_jobs_runtime::Readiness;
use mcp_jobs_telemetry::propagation;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{
    StreamClaimReply, StreamId, StreamPendingCountReply, StreamReadOptions, StreamReadReply,
};
use redis::AsyncCommands;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{RedisSourceSettings, WorkerSettings};
use crate::consumer::WorkerError;

/// How long one `XREADGROUP` blocks before the loop looks at claims and shutdown.
const READ_BLOCK: Duration = Duration::from_secs(1);

/// Consumes until `shutdown` is cancelled; then stops reading and lets the running jobs
/// finish within the grace period. What is left pending is claimed by the others.
pub async fn run(
    settings: WorkerSettings,
    ready: Readiness,
    shutdown: CancellationToken,
) -> Result<(), WorkerError> {
    let client = redis::Client::open(settings.redis.url.as_str())?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(READ_BLOCK + Duration::from_secs(5)))
        .set_max_delay(Duration::from_secs(2));
    let source = Arc::new(Source {
        commands: ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?,
        reads: ConnectionManager::new_lazy_with_config(client, config)?,
        consumer: settings.runner.worker_id.clone(),
        group: settings.kafka.group.clone(),
        redis: settings.redis.clone(),
        running: Mutex::default(),
        retry_max_backoff: settings.runner.retry_max_backoff,
        max_bytes: settings.kafka.limits.outcome_bytes,
        delay_min: settings.delay_min,
    });
    let runner = Arc::new(settings.job_runner());
    source.ensure_group(&shutdown).await;
    tracing::info!(
        stream = %settings.redis.stream, group = %settings.kafka.group, consumer = %source.consumer,
        servers = ?settings.server_urls, concurrency = settings.concurrency, "kafka-worker started on Redis Streams"
    );
    ready.set_ready(true);
    let slots = Arc::new(Semaphore::new(settings.concurrency));
    let mut jobs = JoinSet::new();
    let mut health = runner.health();
    let claim_every =
        (settings.redis.claim_idle / 2).clamp(Duration::from_millis(200), Duration::from_secs(5));
    let touch_every = (settings.redis.claim_idle / 3).max(Duration::from_millis(100));
    let mut next_claim = Instant::now();
    let mut next_touch = Instant::now() + touch_every;
    while !shutdown.is_cancelled() {
        while jobs.try_join_next().is_some() {}
        metrics::in_flight(jobs.len());
        if Instant::now() >= next_touch {
            source.touch().await;
            next_touch = Instant::now() + touch_every;
        }
        if !*health.borrow() {
            tracing::warn!("mcp-server unavailable: reading paused until it answers");
            tokio::select! {
                _ = health.changed() => {}
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(touch_every) => {}
            }
            continue;
        }
        let room = slots.available_permits();
        if room == 0 {
            tokio::select! {
                _ = jobs.join_next() => {}
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep_until(next_touch) => {}
            }
            continue;
        }
        let entries = if Instant::now() >= next_claim {
            next_claim = Instant::now() + claim_every;
            source.claim_abandoned(room).await
        } else {
            source.read_new(room).await
        };
        for entry in entries {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            source.lock_running().insert(entry.id.clone());
            let job = run_entry(source.clone(), runner.clone(), entry);
            jobs.spawn(async move {
                job.await;
                drop(slot);
            });
        }
    }
    tracing::info!(
        running = jobs.len(),
        "shutting down: reading stopped, finishing the jobs in hand"
    );
    let finished = tokio::time::timeout(settings.shutdown_grace, async {
        while jobs.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            running = jobs.len(),
            "shutdown grace period over: abandoning unfinished jobs; other workers will claim them"
        );
        jobs.abort_all();
    }
    ready.set_ready(false);
    Ok(())
}

/// Runs one entry to its outcome, writes it, then acknowledges the entry.
async fn run_entry(source: Arc<Source>, runner: Arc<JobRunner>, entry: StreamId) {
    let fields = text_fields(&entry);
    let origin = format!("{}/{}", source.redis.stream, entry.id);
    let span = job_span(&origin, propagation::extract(&fields));
    async {
        let sink = Entry {
            source: &source,
            id: &entry.id,
            job: fields.get("job").map_or("", String::as_str),
        };
        let Some(job) = fields.get("job") else {
            let failure = Failure {
                kind: FailureKind::MissingField,
                message: format!(
                    "stream entry {} has no `job` field holding the job envelope",
                    entry.id
                ),
            };
            lifecycle::refuse(&runner, None, failure, &origin, &sink).await;
            return;
        };
        let message = lifecycle::Message {
            payload: job.as_bytes(),
            released: false,
            replay_of: None,
            origin: &origin,
        };
        lifecycle::handle(&runner, source.delay_min, message, &sink, || {}).await;
    }
    .instrument(span)
    .await;
    source.lock_running().remove(&entry.id);
}

/// The lifecycle's sink for one entry: its outcome entries, then its acknowledgement.
struct Entry<'a> {
    source: &'a Source,
    id: &'a str,
    /// The envelope as the entry holds it, for the dead-letter entry.
    job: &'a str,
}

impl Sink for Entry<'_> {
    async fn write(&self, outcome: &Outcome) {
        self.source.settle(self.id, outcome, self.job).await;
    }

    /// A stream has no place where a job waits unread: one due within `DELAY_MIN_MS`
    /// waits in its slot, and a later one is refused rather than run early.
    async fn delay(&self, job_id: &str, due: DateTime<Utc>) -> Result<(), String> {
        Err(format!(
            "job {job_id} is due at {due}, more than DELAY_MIN_MS ({:?}) ahead: the Redis Streams \
             source runs a job due that soon in its slot but cannot hold a later one; publish it \
             when it is due, or use the Kafka source, whose delayed topic holds it",
            self.source.delay_min
        ))
    }
}

struct Source {
    /// Writes, acknowledgements and claims.
    commands: ConnectionManager,
    /// Blocking reads only: a block holds up its whole connection.
    reads: ConnectionManager,
    consumer: String,
    group: String,
    redis: RedisSourceSettings,
    /// Entries this worker is running, touched so they never look abandoned.
    running: Mutex<HashSet<String>>,
    retry_max_backoff: Duration,
    /// `RESULT_MAX_BYTES`: outcome entries are cut to this, as on Kafka.
    max_bytes: usize,
    /// `DELAY_MIN_MS`: the furthest ahead a job may be due and still wait in its slot.
    delay_min: Duration,
}

impl Source {
    /// Creates the consumer group (with the stream) if it is missing, waiting for Redis
    /// (until shutdown).
    async fn ensure_group(&self, shutdown: &CancellationToken) {
        let create = || async {
            let created: redis::RedisResult<()> = self
                .commands
                .clone()
                .xgroup_create_mkstream(&self.redis.stream, &self.group, "0")
                .await;
            match created {
                Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
                other => other,
            }
        };
        let created = create
            .retry(infrastructure_backoff(self.retry_max_backoff))
            .when(|_| !shutdown.is_cancelled())
            .notify(|e, delay| {
                tracing::warn!(error = %e, retry_in = ?delay, "cannot create the consumer group yet");
            })
            .await;
        if let Err(e) = created {
            tracing::info!(error = %e, "stopped before the consumer group could be created");
        }
    }

    /// Up to `room` entries never delivered to the group, waiting up to [`READ_BLOCK`].
    async fn read_new(&self, room: usize) -> Vec<StreamId> {
        let options = StreamReadOptions::default()
            .group(&self.group, &self.consumer)
            .count(room)
            .block(READ_BLOCK.as_millis() as usize);
        let read: redis::RedisResult<Option<StreamReadReply>> = self
            .reads
            .clone()
            .xread_options(&[&self.redis.stream], &[">"], &options)
            .await;
        match read {
            Ok(reply) => reply
                .into_iter()
                .flat_map(|reply| reply.keys)
                .flat_map(|key| key.ids)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "reading the job stream failed; trying again");
                tokio::time::sleep(READ_BLOCK).await;
                Vec::new()
            }
        }
    }

    /// Claims up to `room` entries abandoned by dead workers; those delivered too often
    /// already are dead-lettered instead.
    async fn claim_abandoned(&self, room: usize) -> Vec<StreamId> {
        let idle_ms = self.redis.claim_idle.as_millis() as u64;
        let pending: redis::RedisResult<StreamPendingCountReply> = redis::cmd("XPENDING")
            .arg(&self.redis.stream)
            .arg(&self.group)
            .arg("IDLE")
            .arg(idle_ms)
            .arg("-")
            .arg("+")
            .arg(room)
            .query_async(&mut self.commands.clone())
            .await;
        let pending = match pending {
            Ok(pending) => pending.ids,
            Err(e) => {
                tracing::warn!(error = %e, "listing pending entries failed");
                return Vec::new();
            }
        };
        let (exhausted, ids): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|p| p.times_delivered as u64 >= self.redis.max_deliveries);
        for spent in exhausted {
            // Claimed first: of several workers seeing it, only one dead-letters it.
            if let Some(entry) = self
                .claim(std::slice::from_ref(&spent.id), idle_ms)
                .await
                .pop()
            {
                let fields = text_fields(&entry);
                let job = fields.get("job").map_or("", String::as_str);
                let outcome = Outcome::refused(
                    ScheduledJobEnvelope::job_id_of(job.as_bytes()),
                    Failure {
                        kind: FailureKind::MaxDeliveries,
                        message: format!(
                            "entry {} was delivered {} times without an outcome (REDIS_MAX_DELIVERIES={}): its workers died or hung running it",
                            entry.id, spent.times_delivered, self.redis.max_deliveries
                        ),
                    },
                    &self.consumer,
                );
                metrics::job_finished(&outcome);
                tracing::warn!(entry = %entry.id, deliveries = spent.times_delivered, "dead-lettering an entry delivered too often");
                self.settle(&entry.id, &outcome, job).await;
            }
        }
        let ids: Vec<String> = ids.into_iter().map(|p| p.id).collect();
        if ids.is_empty() {
            return Vec::new();
        }
        let claimed = self.claim(&ids, idle_ms).await;
        if !claimed.is_empty() {
            tracing::info!(
                claimed = claimed.len(),
                "claimed entries abandoned by a dead worker"
            );
        }
        claimed
    }

    /// `XCLAIM`s `ids` still idle for `idle_ms` (another worker may have been quicker).
    async fn claim(&self, ids: &[String], idle_ms: u64) -> Vec<StreamId> {
        let claimed: redis::RedisResult<StreamClaimReply> = self
            .commands
            .clone()
            .xclaim(
                &self.redis.stream,
                &self.group,
                &self.consumer,
                idle_ms,
                ids,
            )
            .await;
        match claimed {
            Ok(reply) => reply.ids,
            Err(e) => {
                tracing::warn!(error = %e, "claiming pending entries failed");
                Vec::new()
            }
        }
    }

    /// Resets the idle time of the entries this worker runs, without counting a delivery.
    async fn touch(&self) {
        let ids: Vec<String> = self.lock_running().iter().cloned().collect();
        if ids.is_empty() {
            return;
        }
        let touched: redis::RedisResult<redis::Value> = redis::cmd("XCLAIM")
            .arg(&self.redis.stream)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(0)
            .arg(&ids)
            .arg("JUSTID")
            .query_async(&mut self.commands.clone())
            .await;
        if let Err(e) = touched {
            tracing::warn!(error = %e, "touching running entries failed; they may be claimed by others");
        }
    }

    /// Writes the outcome (and the dead-letter copy of a failure), then acknowledges
    /// the entry; retried until Redis takes all of it.
    async fn settle(&self, id: &str, outcome: &Outcome, job: &str) {
        let fitted = fit_outcome(outcome, self.max_bytes);
        if fitted.truncated {
            metrics::outcome_truncated("result");
        }
        let record = String::from_utf8_lossy(&fitted.record).into_owned();
        let dead_letter = match (&outcome.status, &outcome.error) {
            (Status::Failed, Some(error)) => Some(self.dead_letter_fields(id, outcome, error, job)),
            _ => None,
        };
        let job_id = outcome.job_id.clone().unwrap_or_default();
        let write = || async {
            let mut pipe = redis::pipe();
            pipe.atomic();
            pipe.xadd(
                &self.redis.results_stream,
                "*",
                &[("jobID", job_id.as_str()), ("record", record.as_str())],
            );
            if let Some(fields) = &dead_letter {
                pipe.xadd(&self.redis.dlq_stream, "*", fields);
            }
            pipe.xack(&self.redis.stream, &self.group, &[id]);
            pipe.query_async::<redis::Value>(&mut self.commands.clone())
                .await
        };
        let written = write
            .retry(infrastructure_backoff(self.retry_max_backoff))
            .notify(|e, delay| {
                tracing::warn!(entry = id, error = %e, retry_in = ?delay, "writing the outcome failed, retrying");
            })
            .await;
        // The backoff never ends; were it to, the entry stays pending and is claimed again.
        if let Err(e) = written {
            tracing::error!(entry = id, error = %e, "the outcome could not be written");
        }
    }

    /// The dead-letter entry of a failed job: the job (cut to `RESULT_MAX_BYTES`, with
    /// its original size and sha256 when cut), where it came from, and why it failed.
    fn dead_letter_fields(
        &self,
        id: &str,
        outcome: &Outcome,
        error: &Failure,
        job: &str,
    ) -> Vec<(&'static str, String)> {
        let (kept, cut) = fit_dead_letter(job.as_bytes(), self.max_bytes);
        let mut fields = vec![
            ("job", String::from_utf8_lossy(kept).into_owned()),
            ("jobID", outcome.job_id.clone().unwrap_or_default()),
            ("sourceStream", self.redis.stream.clone()),
            ("sourceId", id.to_owned()),
            ("errorKind", error.kind.to_string()),
            ("error", error.headline()),
            ("attempts", outcome.attempts.to_string()),
            ("worker", outcome.worker.clone()),
        ];
        if let Some(cut) = cut {
            metrics::outcome_truncated("dead_letter");
            fields.extend([
                ("truncated", "true".to_owned()),
                ("originalBytes", cut.original_bytes.to_string()),
                ("originalSha256", cut.sha256),
            ]);
        }
        fields
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A set of ids: a panic elsewhere cannot leave it torn.
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An entry's fields as text (binary values are skipped: the envelope is JSON).
fn text_fields(entry: &StreamId) -> HashMap<String, String> {
    entry
        .map
        .iter()
        .filter_map(|(field, value)| {
            redis::from_redis_value_ref::<String>(value)
                .ok()
                .map(|text| (field.clone(), text))
        })
        .collect()
}
