//! One term as the active dispatcher: fence the previous one, read the schedules and
//! delayed topics to their end (committed records only, so it starts from the last
//! state the previous owner committed), then follow them, fire what is due, and, for
//! `overlap: skip`, follow the results topic for the outcome of each schedule's last
//! run.

mod release;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mcp_jobs_kafka::topic::{partition_count, Reader};
use mcp_jobs_kafka::KafkaSettings;
use mcp_jobs_runtime::Tally;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::plan::{self, Due, Occurrence, Plans};
use super::transaction::{Fired, Publisher, Sent, Skipped, Transaction, TransactionError};
use super::{guarded, SchedulerError, MAX_SLEEP};
use crate::catalog::{Catalog, Change, State};
use crate::metrics;
use crate::schedule::{job_id, InvalidSchedule, Overlap, Schedule};
use crate::waiting::{DelayedRecord, Position, WaitingJobs};

/// Records one transaction carries at most; more due at once go in the next.
pub(super) const MAX_TRANSACTION_RECORDS: usize = 2_000;
/// How far back before its publication the outcome of a schedule's last run is looked for.
const CLOCK_MARGIN: chrono::Duration = chrono::Duration::minutes(1);
/// What each reader may prefetch, in KB: librdkafka's default (64 MB) would dwarf
/// the index of waiting jobs, and the results reader reads a busy topic.
const READER_PREFETCH_KB: &str = "4096";

/// The readers an active dispatcher follows its topics with, from their beginning.
pub(super) struct Readers {
    pub(super) schedules: StreamConsumer<Reader>,
    pub(super) delayed: StreamConsumer<Reader>,
}

/// What the active dispatcher knows and owns.
pub(super) struct Term<'a> {
    settings: &'a KafkaSettings,
    publisher: Publisher,
    /// Reads delayed jobs back by offset when they are due.
    fetcher: BaseConsumer<Reader>,
    catalog: Catalog,
    compiled: HashMap<String, Result<Schedule, InvalidSchedule>>,
    plans: Plans,
    waiting: WaitingJobs,
    /// When to read due delayed jobs back again, after some could not be.
    pub(super) delayed_retry_at: Option<DateTime<Utc>>,
    /// Partitions of each topic not read to their end yet.
    schedules_loading: bool,
    delayed_loading: HashSet<i32>,
    results_loading: HashSet<i32>,
    /// `overlap: skip` schedules whose last run has no outcome yet: name → jobID, and
    /// jobID → name and occurrence.
    running: HashMap<String, String>,
    awaiting: HashMap<String, Run>,
    /// Schedules whose state changed in memory (an outcome seen) and is not written yet.
    unsaved: HashSet<String>,
    /// Schedules deleted since the last transaction: their state is tombstoned in it.
    deleted: HashSet<String>,
    /// Waiting delayed jobs a tombstone of an older copy follows, to write again.
    rewrites: Vec<Position>,
    /// Occurrences fired and skipped, delayed jobs sent: summed up once a minute.
    tally: Tally,
}

/// A run of an `overlap: skip` schedule waiting for its outcome.
struct Run {
    schedule: String,
    nominal: DateTime<Utc>,
}

impl<'a> Term<'a> {
    /// Fences the previous dispatcher, then starts reading both topics from their
    /// beginning.
    pub(super) fn start(
        settings: &'a KafkaSettings,
        group: &str,
    ) -> Result<(Self, Readers), SchedulerError> {
        let publisher = Publisher::fence(settings, group)?;
        let reader_config = |purpose: &str| {
            guarded(
                settings.consumer_config(&[
                    ("group.id", &format!("{group}.{purpose}")),
                    ("queued.max.messages.kbytes", READER_PREFETCH_KB),
                ]),
                READER_GUARDS,
            )
        };
        let schedules: StreamConsumer<Reader> =
            reader_config("schedules").create_with_context(Reader)?;
        let delayed: StreamConsumer<Reader> =
            reader_config("delayed").create_with_context(Reader)?;
        // Reads due jobs back: it must not wait on a long poll of a partition at its end.
        let fetcher: BaseConsumer<Reader> = reader_config("fetch")
            .set("fetch.wait.max.ms", "10")
            .create_with_context(Reader)?;
        assign_all(&schedules, &settings.schedules_topic, |_| Offset::Beginning)?;
        let delayed_partitions =
            assign_all(&delayed, &settings.delayed_topic, |_| Offset::Beginning)?;
        let dispatch = Self {
            settings,
            publisher,
            fetcher,
            catalog: Catalog::default(),
            compiled: HashMap::new(),
            plans: Plans::default(),
            waiting: WaitingJobs::default(),
            delayed_retry_at: None,
            schedules_loading: true,
            delayed_loading: (0..delayed_partitions).collect(),
            results_loading: HashSet::new(),
            running: HashMap::new(),
            awaiting: HashMap::new(),
            unsaved: HashSet::new(),
            deleted: HashSet::new(),
            rewrites: Vec::new(),
            tally: Tally::new("scheduler"),
        };
        Ok((dispatch, Readers { schedules, delayed }))
    }

    pub(super) fn loaded(&self) -> bool {
        !self.schedules_loading && self.delayed_loading.is_empty()
    }

    pub(super) fn log_loaded(&self, took: Duration) {
        tracing::info!(
            schedules = self.catalog.definitions.len(),
            delayed = self.waiting.len(),
            ?took,
            "scheduler state loaded"
        );
    }

    /// Follows the results topic from shortly before the oldest run of an
    /// `overlap: skip` schedule whose outcome has not been seen, to learn whether it has
    /// one (runs whose outcome was seen are recorded so in the schedule's state).
    pub(super) fn results_reader(&mut self) -> Result<StreamConsumer<Reader>, SchedulerError> {
        let mut since: Option<DateTime<Utc>> = None;
        let unfinished: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = self
            .catalog
            .states
            .iter()
            .filter(|(name, _)| self.skips_overlaps(name))
            .filter(|(name, state)| {
                // Resumed since: the operator said not to wait for that run.
                let resumed = self
                    .catalog
                    .definitions
                    .get(*name)
                    .and_then(|d| d.resumed_at);
                resumed.is_none() || resumed < state.last_fired_at
            })
            .filter_map(|(name, state)| {
                Some((name.clone(), state.unfinished()?, state.last_fired_at?))
            })
            .collect();
        for (name, fired, at) in unfinished {
            self.start_running(&name, fired);
            since = Some(since.map_or(at, |s| s.min(at)));
        }
        let group = format!("{}.scheduler.results", self.settings.group);
        let reader: StreamConsumer<Reader> = guarded(
            self.settings.consumer_config(&[
                ("group.id", &group),
                ("queued.max.messages.kbytes", READER_PREFETCH_KB),
            ]),
            READER_GUARDS,
        )
        .create_with_context(Reader)?;
        let start = match since {
            Some(since) => Offset::Offset((since - CLOCK_MARGIN).timestamp_millis()),
            None => Offset::End,
        };
        let partitions = assign_all(&reader, &self.settings.results_topic, |_| start)?;
        if since.is_some() {
            // Turn the timestamps into offsets.
            let wanted = reader.assignment()?;
            let offsets = reader.offsets_for_times(wanted, Duration::from_secs(30))?;
            reader.assign(&offsets)?;
        }
        self.results_loading = (0..partitions).collect();
        Ok(reader)
    }

    pub(super) fn on_schedule_record(&mut self, received: Result<BorrowedMessage<'_>, KafkaError>) {
        match received {
            Ok(message) => match self.catalog.apply(message.key(), message.payload()) {
                Some(Change::Definition(name)) if !self.catalog.definitions.contains_key(&name) => {
                    // Deleted: nothing of it is written again, not even the outcome of
                    // a run still in flight; and its state is tombstoned once more, in
                    // case this dispatcher wrote one after the delete's own tombstone
                    // (it reads the topic behind the CLI's writes).
                    self.forget_running(&name);
                    self.unsaved.remove(&name);
                    self.catalog.states.remove(&name);
                    self.compile(&name);
                    self.replan(&name);
                    self.deleted.insert(name);
                }
                Some(Change::Definition(name)) => {
                    let resumed = self
                        .catalog
                        .definitions
                        .get(&name)
                        .and_then(|d| d.resumed_at);
                    let fired_at = self.catalog.states.get(&name).and_then(|s| s.last_fired_at);
                    if resumed.is_some() && resumed > fired_at {
                        self.forget_running(&name);
                    }
                    self.compile(&name);
                    self.replan(&name);
                }
                Some(Change::State(name)) => self.replan(&name),
                None => {}
            },
            Err(KafkaError::PartitionEOF(_)) => self.schedules_loading = false,
            Err(e) => tracing::warn!(error = %e, "reading the schedules topic"),
        }
    }

    pub(super) fn on_delayed_record(&mut self, received: Result<BorrowedMessage<'_>, KafkaError>) {
        match received {
            Ok(message) => {
                let Some(record) = DelayedRecord::of(&message) else {
                    tracing::warn!(
                        partition = message.partition(),
                        offset = message.offset(),
                        "a delayed record without a UTF-8 jobID key: skipped"
                    );
                    return;
                };
                if let Some(copy) = record.apply(&mut self.waiting) {
                    tracing::info!(
                        job_id = record.job_id,
                        "a newer copy of a sent delayed job is written again after its tombstone"
                    );
                    self.rewrites.push(copy);
                }
                metrics::delayed_waiting(self.waiting.len());
            }
            Err(KafkaError::PartitionEOF(partition)) => {
                self.delayed_loading.remove(&partition);
            }
            Err(e) => tracing::warn!(error = %e, "reading the delayed topic"),
        }
    }

    pub(super) fn on_result(&mut self, received: Result<BorrowedMessage<'_>, KafkaError>) {
        match received {
            Ok(message) => {
                let Some(job_id) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                    return;
                };
                if let Some(Run {
                    schedule: name,
                    nominal,
                }) = self.awaiting.remove(job_id)
                {
                    tracing::debug!(job_id, schedule = %name, "the schedule's last run has its outcome");
                    self.running.remove(&name);
                    let seen = State {
                        last_outcome: Some(nominal),
                        ..State::default()
                    };
                    self.catalog
                        .states
                        .entry(name.clone())
                        .or_default()
                        .merge(seen);
                    self.unsaved.insert(name);
                }
            }
            Err(KafkaError::PartitionEOF(partition)) => {
                self.results_loading.remove(&partition);
            }
            Err(e) => tracing::warn!(error = %e, "reading the results topic"),
        }
    }

    /// Checks `name`'s definition again, after it changed.
    fn compile(&mut self, name: &str) {
        match self.catalog.schedule(name) {
            Some(compiled) => {
                if let Err(e) = &compiled {
                    tracing::warn!(schedule = name, error = %e, "stored schedule is not valid: it does not fire");
                }
                self.compiled.insert(name.to_owned(), compiled);
            }
            None => {
                self.compiled.remove(name);
            }
        }
    }

    /// Recomputes when `name` next fires, after its record changed or it fired.
    fn replan(&mut self, name: &str) {
        let next = self.next_fire(name);
        self.plans.set(name, next);
    }

    fn next_fire(&self, name: &str) -> Option<DateTime<Utc>> {
        let state = self.catalog.states.get(name).copied().unwrap_or_default();
        plan::next_fire(
            self.compiled.get(name)?.as_ref().ok()?,
            self.catalog.definitions.get(name)?,
            &state,
        )
    }

    /// When to look again: the next occurrence or delayed job due, or `MAX_SLEEP`.
    pub(super) fn wake(&self, now: DateTime<Utc>) -> tokio::time::Instant {
        let next_ms = self
            .plans
            .next()
            .map(|at| at.timestamp_millis())
            .into_iter()
            .chain(self.waiting.next_due().map(|due| {
                let retry = self.delayed_retry_at.map(|at| at.timestamp_millis());
                retry.map_or(due, |retry| retry.max(due))
            }))
            .min();
        let mut until = next_ms
            .map(|ms| {
                Duration::from_millis(
                    u64::try_from(ms.saturating_sub(now.timestamp_millis())).unwrap_or(0),
                )
            })
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        if !self.results_loading.is_empty() {
            // Overlap decisions wait for the results reader, whose records wake the
            // loop anyway: no need to spin on an occurrence that waits for them.
            until = until.max(Duration::from_millis(100));
        }
        tokio::time::Instant::now() + until
    }

    /// Publishes what is due at `now`: occurrences (with their state) and delayed jobs
    /// (with their tombstones), in one transaction.
    pub(super) async fn tick(&mut self, now: DateTime<Utc>) -> Result<(), TransactionError> {
        let mut transaction = Transaction::default();
        // Catching up after a long outage walks every missed occurrence: off the
        // async workers.
        tokio::task::block_in_place(|| {
            for name in self.plans.due(now) {
                if transaction.records.len() >= MAX_TRANSACTION_RECORDS {
                    break;
                }
                self.decide(&name, now, &mut transaction);
            }
        });
        for name in &self.deleted {
            transaction.tombstone_state(&self.settings.schedules_topic, name);
        }
        for name in &self.unsaved {
            if !transaction.states.contains_key(name) {
                let state = self.catalog.states.get(name).copied().unwrap_or_default();
                transaction.add_state(&self.settings.schedules_topic, name, state);
            }
        }
        if let Err(e) = self.add_delayed(now, &mut transaction) {
            // The occurrences still go; the delayed jobs are tried again shortly.
            tracing::warn!(error = %e, "reading due delayed jobs back failed; trying again in 1 s");
            self.delayed_retry_at = Some(now + chrono::Duration::seconds(1));
        }
        if transaction.records.is_empty() && transaction.states.is_empty() {
            return Ok(());
        }
        let took = self
            .publisher
            .commit(std::mem::take(&mut transaction.records))
            .await?;
        metrics::transaction(took);
        self.deleted.clear();
        for (name, state) in transaction.states {
            self.unsaved.remove(&name);
            self.catalog
                .states
                .entry(name.clone())
                .or_default()
                .merge(state);
            self.replan(&name);
        }
        for Fired {
            schedule,
            occurrence,
        } in transaction.fired
        {
            let Occurrence { nominal, lateness } = occurrence;
            tracing::debug!(%schedule, job_id = %job_id(&schedule, nominal), ?lateness, "occurrence fired");
            self.tally.add("occurrences fired", 1);
            metrics::fired(&schedule, lateness);
            if self.skips_overlaps(&schedule) {
                self.start_running(&schedule, nominal);
            }
        }
        for Skipped {
            schedule,
            reason,
            count,
        } in transaction.skipped
        {
            let reason = reason.as_str();
            tracing::debug!(%schedule, reason, count, "occurrences skipped");
            self.tally.add("occurrences skipped", count);
            metrics::skipped(&schedule, reason, count);
        }
        if !transaction.sent.is_empty() {
            metrics::delayed_sent(transaction.sent.len());
        }
        self.rewrites
            .retain(|at| !transaction.rewritten.contains(at));
        for Sent { job_id, at } in transaction.sent {
            tracing::debug!(%job_id, "delayed job due: sent to the jobs topic");
            self.tally.add("delayed jobs sent", 1);
            self.waiting.sent(&job_id, at);
        }
        metrics::delayed_waiting(self.waiting.len());
        Ok(())
    }

    /// Adds the due occurrences of `name` that fire, and its new state.
    fn decide(&self, name: &str, now: DateTime<Utc>, transaction: &mut Transaction) {
        let (Some(definition), Some(Ok(schedule))) =
            (self.catalog.definitions.get(name), self.compiled.get(name))
        else {
            return;
        };
        let due = Due {
            schedule,
            definition,
            state: self.catalog.states.get(name).copied().unwrap_or_default(),
            running: self.running.contains_key(name),
            outcomes_known: self.results_loading.is_empty(),
        };
        let room = MAX_TRANSACTION_RECORDS.saturating_sub(transaction.records.len());
        let Some(decision) = plan::decide(due, now, room) else {
            return;
        };
        if decision.count_capped {
            tracing::warn!(
                schedule = name,
                "more than {} occurrences missed; counting stops there",
                plan::MAX_SKIPS_COUNTED
            );
        }
        for occurrence in decision.fire {
            transaction.add_occurrence(&self.settings.topic, schedule, occurrence);
        }
        for (reason, count) in decision.skipped {
            transaction.skipped.push(Skipped {
                schedule: name.to_owned(),
                reason,
                count,
            });
        }
        transaction.add_state(&self.settings.schedules_topic, name, decision.state);
    }

    fn skips_overlaps(&self, name: &str) -> bool {
        matches!(self.compiled.get(name), Some(Ok(s)) if s.overlap == Overlap::Skip)
    }

    /// `name`'s run of the occurrence at `nominal` has no outcome yet.
    fn start_running(&mut self, name: &str, nominal: DateTime<Utc>) {
        let id = job_id(name, nominal);
        if let Some(previous) = self.running.insert(name.to_owned(), id.clone()) {
            self.awaiting.remove(&previous);
        }
        self.awaiting.insert(
            id,
            Run {
                schedule: name.to_owned(),
                nominal,
            },
        );
    }

    /// Forgets `name`'s run without an outcome: `resume` after a run that never got
    /// one (its job lost downstream) lets the schedule fire again.
    fn forget_running(&mut self, name: &str) {
        if let Some(id) = self.running.remove(name) {
            tracing::info!(schedule = name, job_id = %id, "resumed: no longer waiting for the outcome of the last run");
            self.awaiting.remove(&id);
        }
    }
}

/// What the readers' correctness rests on: they commit nothing, report each
/// partition's end, and see committed transactions only (never an aborted occurrence
/// or tombstone).
const READER_GUARDS: &[(&str, &str)] = &[
    ("enable.auto.commit", "false"),
    ("enable.partition.eof", "true"),
    ("isolation.level", "read_committed"),
];

/// Assigns every partition of `topic` to `consumer` at `offset(partition)`; returns the
/// partition count.
fn assign_all<C: ConsumerContext>(
    consumer: &StreamConsumer<C>,
    topic: &str,
    offset: impl Fn(i32) -> Offset,
) -> Result<i32, SchedulerError> {
    let partitions = partition_count(consumer, topic)?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition, offset(partition))?;
    }
    consumer.assign(&assignment)?;
    Ok(partitions)
}
