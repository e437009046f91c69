//! The Kafka source: fetches jobs, runs up to `WORKER_CONCURRENCY` of them at once
//! through the engine, and stores a partition's offset only when every message at or
//! below it has a durable outcome (the engine's [`Window`] decides how far that is).
//! librdkafka commits stored offsets in the background, on revocation and at shutdown.
//!
//! Back-pressure: while the window is full the loop stops taking messages (librdkafka's
//! bounded prefetch queue holds the rest). The group protocol and `max.poll.interval.ms`
//! need the consumer polled, so a window full for longer than a moment, an unreachable
//! mcp-server and shutdown pause the partitions instead and keep polling. Pausing is
//! not the everyday path: resuming discards librdkafka's prefetched messages and
//! fetches them again.
//! A crash repeats at most the window's messages and those finished since the last
//! commit; it never loses one.
//!
//! A job due later than `DELAY_MIN_MS` is not run: it moves to the delayed topic
//! ([`mcp_jobs_engine::timing`]) and its offset moves on like any finished job's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use backon::Retryable;
use chrono::{DateTime, Utc};
use mcp_jobs_contract::headers::{self as contract_headers, is_carried, DelayedMeta, RELEASED};
use mcp_jobs_contract::outcome::{Outcome, Source, Status};
use mcp_jobs_contract::status::JobStatus;
use mcp_jobs_contract::task::OutcomeAt;
use mcp_jobs_engine::fit::{fit_dead_letter, fit_outcome, Cut, MIN_RECORD_BYTES};
use mcp_jobs_engine::lifecycle::{self, Sink};
use mcp_jobs_engine::metrics;
use mcp_jobs_engine::retry::infrastructure_backoff;
use mcp_jobs_engine::runner::{job_span, JobRunner};
use mcp_jobs_engine::window::{Delivery, Ticket, Window};
use mcp_jobs_kafka::headers;
use mcp_jobs_kafka::KafkaSettings;
use mcp_jobs_runtime::{Readiness, Tally};
use mcp_jobs_tasks::{Registry, TaskStore};
use mcp_jobs_telemetry::propagation;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Message, TopicPartitionList};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::WorkerSettings;
use crate::job_status::StatusReporter;
use crate::task_status::TaskReporter;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("Kafka client setup failed: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("Redis job source setup failed: {0}")]
    Redis(#[from] redis::RedisError),
}

type JobConsumer = StreamConsumer<RebalanceContext>;

/// How long the window may stay full with the consumer unpolled before partitions are
/// paused and polling resumes (a stall of jobs, not the everyday full window).
const STALL_BEFORE_PAUSE: Duration = Duration::from_secs(1);

/// Consumes until `shutdown` is cancelled; then stops fetching, finishes the jobs in
/// hand (running and waiting: every one finished means no finished job is repeated by
/// the next owner) within the grace period, commits what is done and leaves the group.
pub async fn run(
    settings: WorkerSettings,
    ready: Readiness,
    shutdown: CancellationToken,
) -> Result<(), WorkerError> {
    let consumer: JobConsumer = settings
        .kafka
        .consumer_config(&[
            ("group.id", &settings.kafka.group),
            ("client.id", &settings.runner.worker_id),
            ("enable.auto.commit", "true"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("partition.assignment.strategy", "cooperative-sticky"),
            // The window bounds what runs; prefetch only has to cover the next
            // fetch. librdkafka's defaults (64 MB or 100,000 messages per partition)
            // would dwarf everything else the worker holds.
            ("queued.max.messages.kbytes", "1024"),
            ("queued.min.messages", "1000"),
            // Per-partition lag and committed offsets for /metrics.
            ("statistics.interval.ms", "5000"),
        ])
        .create_with_context(RebalanceContext::default())?;
    // Outcomes go out at once: a job run alone would otherwise wait the linger on every
    // outcome. Under load records still batch, behind the requests already in flight.
    let producer: FutureProducer = settings.kafka.acked_producer_config().create()?;
    consumer.subscribe(&[settings.kafka.topic.as_str()])?;
    let runner = Arc::new(settings.job_runner());
    let metadata: rdkafka::consumer::BaseConsumer = settings
        .kafka
        .consumer_config(&[
            ("group.id", "kafka-worker-metadata"),
            ("allow.auto.create.topics", "false"),
        ])
        .create()?;
    let writer = Arc::new(OutcomeWriter {
        status: StatusReporter::if_topic_exists(&settings.kafka, &producer, &metadata),
        producer,
        results_topic: settings.kafka.results_topic.clone(),
        dlq_topic: settings.kafka.dlq_topic.clone(),
        delayed_topic: settings.kafka.delayed_topic.clone(),
        retry_max_backoff: settings.runner.retry_max_backoff,
        max_bytes: settings.kafka.limits.outcome_bytes,
        tally: Tally::new("worker"),
        delayed_topic_seen: std::sync::atomic::AtomicBool::new(false),
        metadata,
        tasks: task_reporter(&settings.kafka),
    });
    tracing::info!(
        topic = %settings.kafka.topic, group = %settings.kafka.group, servers = ?settings.server_urls,
        concurrency = settings.concurrency,
        group_protocol = if settings.kafka.consumer_protocol() { "consumer" } else { "classic" },
        "kafka-worker started"
    );
    let mut worker = Worker {
        consumer,
        topic: settings.kafka.topic.clone(),
        runner,
        writer,
        window: Window::new(settings.concurrency),
        running: HashMap::new(),
        paused: false,
        delay_min: settings.delay_min,
    };
    ready.set_ready(true);
    worker.consume(&shutdown, settings.shutdown_grace).await;
    ready.set_ready(false);
    worker.leave();
    Ok(())
}

/// What a job task reports: its work is over (the slot is free), then its outcome is
/// durable (the message may be committed).
enum JobEvent {
    Ran,
    Finished(Ticket<i32>),
}

struct Worker {
    consumer: JobConsumer,
    topic: String,
    runner: Arc<JobRunner>,
    writer: Arc<OutcomeWriter>,
    window: Window<i32>,
    /// Cancels a partition's running jobs when the partition is revoked.
    running: HashMap<i32, CancellationToken>,
    paused: bool,
    /// `DELAY_MIN_MS`: jobs due further ahead go to the delayed topic.
    delay_min: Duration,
}

impl Worker {
    async fn consume(&mut self, shutdown: &CancellationToken, grace: Duration) {
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let mut health = self.runner.health();
        let mut grace_ends: Option<Instant> = None;
        let mut full_since: Option<Instant> = None;
        loop {
            self.apply_revocations();
            while let Some(ticket) = self.window.next_to_start() {
                self.start(ticket, events_tx.clone());
            }
            metrics::in_flight(self.window.running());
            let full = self.window.is_full() || (self.paused && !self.window.has_room());
            full_since = if full {
                full_since.or_else(|| Some(Instant::now()))
            } else {
                None
            };
            let stalled = full_since.is_some_and(|since| since.elapsed() >= STALL_BEFORE_PAUSE);
            self.set_paused(grace_ends.is_some() || !*health.borrow() || stalled);
            if grace_ends.is_some() && self.window.held() == 0 {
                return;
            }
            tokio::select! {
                biased;
                Some(event) = events.recv() => match event {
                    JobEvent::Ran => self.window.ran(),
                    JobEvent::Finished(ticket) => self.finish(&ticket),
                },
                _ = shutdown.cancelled(), if grace_ends.is_none() => {
                    tracing::info!(held = self.window.held(), "shutting down: fetching stopped, finishing the jobs in hand");
                    grace_ends = Some(Instant::now() + grace);
                }
                _ = tokio::time::sleep_until(grace_ends.unwrap_or_else(Instant::now)), if grace_ends.is_some() => {
                    tracing::warn!(
                        held = self.window.held(),
                        "shutdown grace period over: abandoning unfinished jobs; they will be redelivered"
                    );
                    self.running.values().for_each(CancellationToken::cancel);
                    return;
                }
                _ = tokio::time::sleep_until(full_since.unwrap_or_else(Instant::now) + STALL_BEFORE_PAUSE),
                    if full_since.is_some() && !self.paused => {}
                Ok(()) = health.changed() => {
                    let healthy = *health.borrow_and_update();
                    if healthy {
                        tracing::info!("mcp-server answers again: resuming consumption");
                    } else {
                        tracing::warn!("mcp-server unavailable: pausing consumption until it answers");
                    }
                }
                received = self.consumer.recv(), if self.paused || !full => {
                    let received = received.map(|message| Delivery {
                        partition: message.partition(),
                        offset: message.offset(),
                        key: message.key().map(<[u8]>::to_vec),
                        payload: message.payload().unwrap_or_default().to_vec(),
                        headers: headers::all_of(message.headers()),
                        trace: headers::context_of(message.headers()),
                    });
                    match received {
                        Ok(delivery) if grace_ends.is_none() => self.admit(delivery),
                        // Shutting down: not started, not stored; redelivered to the next owner.
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "receiving from Kafka failed; trying again");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
            }
        }
    }

    fn admit(&mut self, delivery: Delivery<i32>) {
        self.apply_revocations();
        self.window.admit(delivery);
        if self.paused {
            // A partition assigned while paused starts out fetching.
            self.pause_assignment(true);
        }
    }

    fn start(&mut self, ticket: Ticket<i32>, events: mpsc::UnboundedSender<JobEvent>) {
        let cancel = self
            .running
            .entry(ticket.delivery.partition)
            .or_default()
            .clone();
        let runner = self.runner.clone();
        let writer = self.writer.clone();
        let source = Source {
            topic: self.topic.clone(),
            partition: ticket.delivery.partition,
            offset: ticket.delivery.offset,
        };
        let origin = format!("{}[{}]@{}", source.topic, source.partition, source.offset);
        let span = job_span(&origin, ticket.delivery.trace.clone());
        let delay_min = self.delay_min;
        let job = async move {
            let delivery = &ticket.delivery;
            let mut ran = false;
            // The receiver is gone only when the worker has stopped: nothing to report to.
            let abandoned = {
                let sink = Delivered {
                    writer: &writer,
                    delivery,
                    source: &source,
                };
                let message = lifecycle::Message {
                    payload: &delivery.payload,
                    released: delivery.headers.iter().any(|(name, _)| name == RELEASED),
                    replay_of: contract_headers::replay_of(&delivery.headers),
                    origin: &origin,
                };
                let job = lifecycle::handle(&runner, delay_min, message, &sink, || {
                    ran = true;
                    let _ = events.send(JobEvent::Ran);
                });
                tokio::select! {
                    () = job => false,
                    () = cancel.cancelled() => true,
                }
            };
            if abandoned {
                tracing::info!(
                    partition = source.partition,
                    offset = source.offset,
                    "job abandoned: its partition was revoked or the worker is stopping"
                );
                if !ran {
                    let _ = events.send(JobEvent::Ran);
                }
            }
            let _ = events.send(JobEvent::Finished(ticket));
        };
        tokio::spawn(job.instrument(span));
    }

    fn finish(&mut self, ticket: &Ticket<i32>) {
        let Some(offset) = self.window.finish(ticket) else {
            return;
        };
        let partition = ticket.delivery.partition;
        if let Err(e) = self.consumer.store_offset(&self.topic, partition, offset) {
            // Revoked meanwhile: its new owner redoes what was not committed.
            tracing::debug!(error = %e, partition, offset, "could not store offset");
        }
    }

    fn apply_revocations(&mut self) {
        for partition in self.consumer.context().take_revoked() {
            self.window.revoke(&partition);
            if let Some(jobs) = self.running.remove(&partition) {
                jobs.cancel();
            }
        }
    }

    fn set_paused(&mut self, pause: bool) {
        if pause != self.paused {
            self.pause_assignment(pause);
            self.paused = pause;
            ::metrics::gauge!("mcp_jobs_worker_paused").set(if pause { 1.0 } else { 0.0 });
        }
    }

    fn pause_assignment(&self, pause: bool) {
        let result = self.consumer.assignment().and_then(|assigned| {
            if pause {
                self.consumer.pause(&assigned)
            } else {
                self.consumer.resume(&assigned)
            }
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, pause, "could not change the paused state of partitions");
        }
    }

    /// Commits what is finished and leaves the group, so the partitions move at once.
    fn leave(self) {
        tracing::info!("kafka-worker stopping: committing finished work and leaving the group");
        if let Err(e) =
            tokio::task::block_in_place(|| self.consumer.commit_consumer_state(CommitMode::Sync))
        {
            // Nothing stored since the last commit gives "no offset": nothing is lost.
            tracing::debug!(error = %e, "final commit");
        }
        self.consumer.unsubscribe();
    }
}

/// Hears about rebalances on the polling task. Revoked partitions are committed
/// here, before they go, and handed to the loop to forget.
#[derive(Default)]
struct RebalanceContext {
    revoked: Mutex<Vec<i32>>,
}

impl RebalanceContext {
    fn take_revoked(&self) -> Vec<i32> {
        std::mem::take(&mut *self.revoked.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl ClientContext for RebalanceContext {
    /// librdkafka's own view of each assigned partition, every `statistics.interval.ms`.
    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, p) in stats.partitions.iter().filter(|(id, _)| **id >= 0) {
                let labels = [
                    ("topic", topic.clone()),
                    ("partition", partition.to_string()),
                ];
                if p.consumer_lag >= 0 {
                    ::metrics::gauge!("mcp_jobs_worker_consumer_lag", &labels)
                        .set(p.consumer_lag as f64);
                }
                if p.committed_offset >= 0 {
                    ::metrics::gauge!("mcp_jobs_worker_committed_offset", &labels)
                        .set(p.committed_offset as f64);
                }
            }
        }
    }
}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            let revoked = partition_numbers(partitions);
            tracing::info!(?revoked, "partitions revoked: committing finished work");
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                tracing::debug!(error = %e, "commit on revoke");
            }
            self.revoked
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(revoked);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            let assigned = partition_numbers(partitions);
            tracing::info!(?assigned, "partitions assigned");
        }
    }
}

fn partition_numbers(partitions: &TopicPartitionList) -> Vec<i32> {
    partitions
        .elements()
        .iter()
        .map(|p| p.partition())
        .collect()
}

/// Writes outcome records, retrying until the broker acknowledges each.
struct OutcomeWriter {
    producer: FutureProducer,
    results_topic: String,
    dlq_topic: String,
    delayed_topic: String,
    retry_max_backoff: Duration,
    /// Jobs delayed, summed up once a minute.
    tally: Tally,
    /// Whether the delayed topic was seen to exist (it is looked up until it is).
    delayed_topic_seen: std::sync::atomic::AtomicBool,
    /// Looks topics up without creating them: a delayed topic the broker auto-created
    /// would not be compacted, and a job delayed past its retention would be lost.
    metadata: rdkafka::consumer::BaseConsumer,
    /// `RESULT_MAX_BYTES`: records are cut to this before they are produced.
    max_bytes: usize,
    /// Where a task's job reports how it fares; `None` when the tasks topic does not exist.
    tasks: Option<TaskReporter>,
    /// Where every job reports how it fares; `None` when the status topic does not exist.
    status: Option<StatusReporter>,
}

/// A record the broker refused for good: retrying the same bytes cannot help.
struct Refused(KafkaError);

/// Whether the job is a durable task (mcp-server marked it so; its jobID is the task id).
fn is_task(delivery: &Delivery<i32>) -> bool {
    delivery
        .headers
        .iter()
        .any(|(name, _)| name == contract_headers::TASK)
}

/// The tasks topic's writer and reader, if the topic exists (`create-topics` makes
/// it): without it no mcp-server offers tasks, and jobs are reported on the results topic
/// alone.
fn task_reporter(settings: &KafkaSettings) -> Option<TaskReporter> {
    let started = TaskStore::new(settings)
        .map_err(|e| e.to_string())
        .and_then(|store| {
            Ok((
                store,
                Registry::follow(settings).map_err(|e| e.to_string())?,
            ))
        });
    match started {
        Ok((store, registry)) => Some(TaskReporter::start(store, registry, &settings.client_id)),
        Err(reason) => {
            tracing::info!(topic = %settings.tasks_topic, %reason, "no tasks topic: tasks are not reported");
            None
        }
    }
}

/// The lifecycle's sink for one delivery: its outcome records, or its move to the
/// delayed topic.
struct Delivered<'a> {
    writer: &'a OutcomeWriter,
    delivery: &'a Delivery<i32>,
    source: &'a Source,
}

impl Sink for Delivered<'_> {
    async fn write(&self, outcome: &Outcome) {
        let status_ended = async {
            if let (Some(status), Some(job_id)) = (&self.writer.status, &outcome.job_id) {
                status.ended(job_id).await;
            }
        };
        tokio::join!(
            self.writer.write(outcome, self.delivery, self.source),
            status_ended
        );
    }

    fn progress(&self, job_id: &str, mut status: JobStatus) {
        status.task = is_task(self.delivery);
        if let (Some(tasks), true) = (&self.writer.tasks, status.task) {
            tasks.progress(job_id, &status);
        }
        if let Some(reporter) = &self.writer.status {
            reporter.progress(job_id, &status);
        }
    }

    async fn was_cancelled(&self, job_id: &str) -> bool {
        match (&self.writer.tasks, is_task(self.delivery)) {
            (Some(tasks), true) => tasks.was_cancelled(job_id).await,
            _ => false,
        }
    }

    async fn cancelled(&self, job_id: &str) {
        match (&self.writer.tasks, is_task(self.delivery)) {
            (Some(tasks), true) => tasks.cancelled(job_id).await,
            _ => std::future::pending().await,
        }
    }

    async fn delay(&self, job_id: &str, due: DateTime<Utc>) -> Result<(), String> {
        self.writer
            .delay(job_id, due, self.delivery, self.source)
            .await
    }
}

impl OutcomeWriter {
    /// Writes `outcome` of `delivery`: its result record, and for a failure its dead
    /// letter (the original bytes, key and own headers, and what went wrong).
    async fn write(&self, outcome: &Outcome, delivery: &Delivery<i32>, source: &Source) {
        let (original, original_key) = (&delivery.payload, delivery.key.as_deref());
        let result_key = outcome
            .job_id
            .as_deref()
            .map(str::as_bytes)
            .or(original_key);
        let result = self.write_fitting("result", &self.results_topic, result_key, |limit| {
            let fitted = fit_outcome(outcome, limit);
            (
                fitted.record,
                fitted.truncated,
                Vec::<(String, Vec<u8>)>::new(),
            )
        });
        // A cancelled task is no fault to look into: no dead letter.
        if outcome.status == Status::Failed && !outcome.was_cancelled() {
            let headers: Vec<(String, Vec<u8>)> = outcome
                .dead_letter_headers(source)
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value.into_bytes()))
                .chain(
                    delivery
                        .headers
                        .iter()
                        .filter(|(name, _)| is_carried(name))
                        .cloned(),
                )
                .collect();
            let headers_size: usize = headers.iter().map(|(k, v)| k.len() + v.len()).sum();
            let dead_letter =
                self.write_fitting("dead_letter", &self.dlq_topic, original_key, |limit| {
                    // The marking headers are small and fixed; leave room for them too.
                    let room = limit.saturating_sub(headers_size + 256);
                    let (payload, cut) = fit_dead_letter(original, room);
                    let mut all = headers.clone();
                    all.extend(
                        cut.iter()
                            .flat_map(Cut::headers)
                            .map(|(name, value)| (name.to_owned(), value.into_bytes())),
                    );
                    (payload.to_vec(), cut.is_some(), all)
                });
            let (at, _) = futures::join!(result, dead_letter);
            self.report_task(outcome, delivery, at).await;
        } else {
            let at = result.await;
            self.report_task(outcome, delivery, at).await;
        }
    }

    /// For a job that is a task, says on the tasks topic that it finished and where its
    /// result record is, so that every mcp-server replica can answer for it.
    async fn report_task(
        &self,
        outcome: &Outcome,
        delivery: &Delivery<i32>,
        at: Option<OutcomeAt>,
    ) {
        if let (Some(tasks), Some(id), true) =
            (&self.tasks, outcome.job_id.as_deref(), is_task(delivery))
        {
            tasks.finished(id, outcome, at).await;
        }
    }

    /// Moves a job that is not due yet to the delayed topic, keyed by its id. A job the
    /// broker refuses there for good (the topic's record limit is lower than the jobs
    /// topic's) is refused, with why, rather than run early or hold its partition.
    async fn delay(
        &self,
        job_id: &str,
        due: DateTime<Utc>,
        delivery: &Delivery<i32>,
        source: &Source,
    ) -> Result<(), String> {
        self.delayed_topic_exists()
            .await
            .map_err(|missing| format!("job {job_id} is due at {due}, but {missing}"))?;
        let mut trace = HashMap::new();
        propagation::inject(&tracing::Span::current(), &mut trace);
        let meta = DelayedMeta {
            due_at_ms: Some(due.timestamp_millis()),
            delayed_from: Some(format!(
                "{}/{}/{}",
                source.topic, source.partition, source.offset
            )),
            original_key: delivery.key.clone(),
        };
        let headers: Vec<(String, Vec<u8>)> = meta
            .to_headers()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .chain(
                trace
                    .into_iter()
                    .map(|(name, value)| (name, value.into_bytes())),
            )
            .collect();
        self.deliver(
            &self.delayed_topic,
            Some(job_id.as_bytes()),
            &delivery.payload,
            &headers,
        )
        .await
        .map_err(|Refused(e)| {
            format!(
                "job {job_id} is due at {due}, but {} refused it: {e}",
                self.delayed_topic
            )
        })?;
        metrics::job_delayed();
        tracing::debug!(job_id, due = %due, topic = %self.delayed_topic, "job not due yet: moved to the delayed topic");
        self.tally
            .add("jobs moved to the delayed topic (not due yet)", 1);
        Ok(())
    }

    /// Whether the delayed topic exists, looked up without creating it; why not, if
    /// it does not (or cannot be told: then the write is tried and retried as usual).
    async fn delayed_topic_exists(&self) -> Result<(), String> {
        use std::sync::atomic::Ordering;
        if self.delayed_topic_seen.load(Ordering::Relaxed) {
            return Ok(());
        }
        let topic = &self.delayed_topic;
        let metadata = tokio::task::block_in_place(|| {
            self.metadata
                .fetch_metadata(Some(topic), Duration::from_secs(10))
        });
        let Ok(metadata) = metadata else {
            return Ok(());
        };
        let exists = metadata
            .topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
        if exists {
            self.delayed_topic_seen.store(true, Ordering::Relaxed);
            Ok(())
        } else {
            Err(format!(
                "the delayed topic {topic} does not exist: create it with `kafka-worker create-topics` \
                 (it is not created on first use: the broker would make it without compaction, \
                 and a job delayed past its retention would be lost)"
            ))
        }
    }

    /// Writes the record `build` makes for a limit, starting at `RESULT_MAX_BYTES`. A
    /// broker that refuses it as too large (its limit is lower than ours) gets it cut
    /// smaller; a record refused for good otherwise is counted and given up, so the
    /// offset can move on. Only an unreachable broker is retried without end.
    async fn write_fitting(
        &self,
        record: &'static str,
        topic: &str,
        key: Option<&[u8]>,
        build: impl Fn(usize) -> (Vec<u8>, bool, Vec<(String, Vec<u8>)>),
    ) -> Option<OutcomeAt> {
        let mut limit = self.max_bytes;
        loop {
            let (payload, truncated, headers) = build(limit);
            match self.deliver(topic, key, &payload, &headers).await {
                Ok(at) => {
                    if truncated {
                        metrics::outcome_truncated(record);
                        tracing::warn!(
                            topic,
                            record,
                            bytes = payload.len(),
                            "outcome record cut to fit"
                        );
                    }
                    return Some(at);
                }
                Err(Refused(e)) if is_too_large(&e) && limit > MIN_RECORD_BYTES => {
                    limit = (limit / 4).max(MIN_RECORD_BYTES);
                    tracing::warn!(topic, record, error = %e, limit, "the broker refused the outcome record as too large; cutting it smaller (raise the topic's max.message.bytes to keep more)");
                }
                Err(Refused(e)) => {
                    metrics::outcome_unwritable(record);
                    tracing::error!(topic, record, error = %e, "the broker refused the outcome record for good; giving it up so the partition moves on");
                    return None;
                }
            }
        }
    }

    /// Produces one record, retrying while the broker cannot be reached or is busy.
    async fn deliver(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: &[(impl AsRef<str>, impl AsRef<[u8]>)],
    ) -> Result<OutcomeAt, Refused> {
        let send = || async {
            let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).payload(payload);
            if let Some(key) = key {
                record = record.key(key);
            }
            if !headers.is_empty() {
                record = record.headers(headers::owned(headers.iter().map(|(n, v)| (n, v))));
            }
            self.producer
                .send(record, Timeout::Never)
                .await
                .map(|delivered| OutcomeAt {
                    partition: delivered.partition,
                    offset: delivered.offset,
                })
                .map_err(|(e, _)| e)
        };
        send.retry(infrastructure_backoff(self.retry_max_backoff))
            .when(|e| !is_permanent(e))
            .notify(|e, delay| {
                tracing::warn!(topic, error = %e, retry_in = ?delay, "writing outcome failed, retrying");
            })
            .await
            .map_err(Refused)
    }
}

fn is_too_large(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge)
    )
}

/// Errors about the record itself, which the same bytes would get again.
fn is_permanent(e: &KafkaError) -> bool {
    is_too_large(e)
        || matches!(
            e.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::InvalidRecord
                    | RDKafkaErrorCode::InvalidMessageSize
                    | RDKafkaErrorCode::InvalidTopic
            )
        )
}
