//! The dispatcher: fires each schedule's occurrences and sends delayed jobs back when
//! they are due. Any number may run; one is active.
//!
//! - Election: every dispatcher joins the group `<MCP_CONSUMER_GROUP>.scheduler` on the
//!   one-partition schedules topic; the member that owns the partition is active. A
//!   member that dies loses it after its session times out, and another takes over.
//! - Fencing: the active dispatcher publishes only in Kafka transactions, under one
//!   `transactional.id` shared by all. Taking over starts with `init_transactions`,
//!   which aborts whatever the previous owner left open and fences it: a dispatcher
//!   that lost the partition without noticing can no longer commit anything.
//! - Loading: after that, it reads the schedules topic and the delayed topic to their
//!   end (committed records only) before it fires anything, so it starts from the last
//!   state the previous owner committed.
//! - Firing: an occurrence's job and the schedule's new state are one transaction, as
//!   are a delayed job sent back and its tombstone: a crash between the two cannot fire
//!   anything twice or lose it. Missed occurrences inside the catch-up window fire late,
//!   oldest first; older ones are skipped and counted.
//! - `overlap: skip`: it follows the results topic for the outcome of each schedule's
//!   last run, and skips occurrences while there is none.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use mcp_jobs_contract::headers::{DelayedMeta, RELEASED, SENT_OFFSET};
use mcp_jobs_kafka::headers::{self, header};
use mcp_jobs_kafka::KafkaSettings;
use mcp_jobs_runtime::{Readiness, Tally};
use mcp_jobs_telemetry::propagation;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::catalog::{Catalog, Change, Key, State};
use crate::metrics;
use crate::presence::{self, Presence};
use crate::schedule::{job_id, InvalidSchedule, Overlap, Schedule};
use crate::waiting::{self, Position, WaitingJobs};
use mcp_jobs_kafka::topic::{partition_count, ReadError, Reader};

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Records one transaction carries at most; more due at once go in the next.
const MAX_TRANSACTION_RECORDS: usize = 2_000;
/// Delayed jobs read back and sent in one transaction at most.
const MAX_DELAYED_PER_TRANSACTION: usize = 500;
/// The longest sleep between looks at the clock (a wall clock may jump).
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// How far back before its publication the outcome of a schedule's last run is looked for.
const CLOCK_MARGIN: chrono::Duration = chrono::Duration::minutes(1);
/// Occurrences counted one by one when skipping a long outage; beyond, the count is a floor.
const MAX_SKIPS_COUNTED: u64 = 1_000_000;
/// What each reader may prefetch, in KB: librdkafka's default (64 MB) would dwarf
/// the index of waiting jobs, and the results reader reads a busy topic.
const READER_PREFETCH_KB: &str = "4096";
/// How long reading due delayed jobs back may take; what was read by then is sent.
const FETCH_LIMIT: Duration = Duration::from_secs(5);
/// How long loading both topics may take before this term is given up and tried again.
const LOAD_LIMIT: Duration = Duration::from_secs(120);
/// How long a commit may take before it is given up and tried again.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

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

/// The last of the membership events queued after `event`: an assignment already
/// revoked again must not start a term (it would fence the real owner).
fn latest(
    mut event: Membership,
    membership: &mut mpsc::UnboundedReceiver<Membership>,
) -> Membership {
    while let Ok(next) = membership.try_recv() {
        event = next;
    }
    event
}

/// A consumer error (e.g. the topic is missing) is logged and waited out, not spun on.
async fn pause_on_error(error: Option<KafkaError>) {
    if let Some(e) = error {
        tracing::debug!(error = %e, "scheduler election consumer");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Membership {
    Assigned,
    Revoked,
}

/// Hears, on the polling task, when the schedules partition comes and goes.
struct Election {
    events: mpsc::UnboundedSender<Membership>,
}

impl ClientContext for Election {}

impl ConsumerContext for Election {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            if partitions.count() > 0 {
                let _ = self.events.send(Membership::Revoked);
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            if partitions.count() > 0 {
                let _ = self.events.send(Membership::Assigned);
            }
        }
    }
}

enum StepDown {
    Shutdown,
    Revoked,
    Failed(String),
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
    let (mut dispatch, readers) =
        match tokio::task::block_in_place(|| Dispatch::start(settings, group)) {
            Ok(started) => started,
            Err(e) => return StepDown::Failed(e.to_string()),
        };
    let mut results: Option<StreamConsumer<Reader>> = None;
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        if !dispatch.loaded() && started.elapsed() > LOAD_LIMIT {
            return StepDown::Failed(format!(
                "loading {} and {} did not finish within {LOAD_LIMIT:?}",
                settings.schedules_topic, settings.delayed_topic
            ));
        }
        if dispatch.loaded() {
            if results.is_none() {
                tracing::info!(
                    schedules = dispatch.catalog.definitions.len(),
                    delayed = dispatch.waiting.len(),
                    took = ?started.elapsed(),
                    "scheduler state loaded"
                );
                match tokio::task::block_in_place(|| dispatch.results_reader()) {
                    Ok(reader) => results = Some(reader),
                    Err(e) => {
                        return StepDown::Failed(format!(
                            "following {}: {e}",
                            settings.results_topic
                        ))
                    }
                }
            }
            if retry_at.is_none_or(|at| at <= tokio::time::Instant::now()) {
                match dispatch.tick(Utc::now()).await {
                    Ok(()) => retry_at = None,
                    Err(TickError::Fatal(e)) => return StepDown::Failed(e),
                    Err(TickError::Retry(e)) => {
                        tracing::warn!(error = %e, "scheduler transaction failed; retrying in 1 s");
                        retry_at = Some(tokio::time::Instant::now() + Duration::from_secs(1));
                    }
                }
            }
        }
        // While loading, nothing fires: the records being read wake the loop.
        let wake = match (dispatch.loaded(), retry_at) {
            (false, _) => tokio::time::Instant::now() + MAX_SLEEP,
            (true, Some(at)) => at,
            (true, None) => dispatch.wake(Utc::now()),
        };
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return StepDown::Shutdown,
            Some(event) = membership.recv() => if event == Membership::Revoked {
                return StepDown::Revoked;
            },
            received = election.recv() => pause_on_error(received.err()).await,
            received = readers.schedules.recv() => dispatch.on_schedule_record(received),
            received = readers.delayed.recv() => dispatch.on_delayed_record(received),
            received = recv_from(results.as_ref()) => dispatch.on_result(received),
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

/// The readers an active dispatcher follows its topics with, from their beginning.
struct Readers {
    schedules: StreamConsumer<Reader>,
    delayed: StreamConsumer<Reader>,
}

/// What the active dispatcher knows and owns.
struct Dispatch<'a> {
    settings: &'a KafkaSettings,
    producer: FutureProducer,
    /// Reads delayed jobs back by offset when they are due.
    fetcher: BaseConsumer<Reader>,
    catalog: Catalog,
    compiled: HashMap<String, Result<Schedule, InvalidSchedule>>,
    plans: Plans,
    waiting: WaitingJobs,
    /// When to read due delayed jobs back again, after some could not be.
    delayed_retry_at: Option<DateTime<Utc>>,
    /// Partitions of each topic not read to their end yet.
    schedules_loading: bool,
    delayed_loading: HashSet<i32>,
    results_loading: HashSet<i32>,
    /// `overlap: skip` schedules whose last run has no outcome yet: name → jobID, and
    /// jobID → name and occurrence.
    running: HashMap<String, String>,
    awaiting: HashMap<String, (String, DateTime<Utc>)>,
    /// Schedules whose state changed in memory (an outcome seen) and is not written yet.
    unsaved: HashSet<String>,
    /// Schedules deleted since the last transaction: their state is tombstoned in it.
    deleted: HashSet<String>,
    /// Waiting delayed jobs a tombstone of an older copy follows, to write again.
    rewrites: Vec<Position>,
    /// Occurrences fired and skipped, delayed jobs sent: summed up once a minute.
    tally: Tally,
}

enum TickError {
    /// The producer cannot go on (fenced by a newer dispatcher, or broken).
    Fatal(String),
    /// Nothing was published; the same work is tried again.
    Retry(String),
}

impl Transaction {
    /// Publishes `state` as `name`'s state record.
    fn add_state(&mut self, topic: &str, name: &str, state: State) {
        self.records.push(Outgoing {
            topic: topic.to_owned(),
            partition: None,
            key: Some(Key::state(name).into_bytes()),
            // A state always serializes: times only.
            payload: Some(serde_json::to_vec(&state).unwrap_or_default()),
            headers: Vec::new(),
        });
        self.states.insert(name.to_owned(), state);
    }

    /// Publishes a tombstone for `name`'s state record.
    fn tombstone_state(&mut self, topic: &str, name: &str) {
        self.records.push(Outgoing {
            topic: topic.to_owned(),
            partition: None,
            key: Some(Key::state(name).into_bytes()),
            payload: None,
            headers: Vec::new(),
        });
    }
}

/// One record to publish in a transaction.
struct Outgoing {
    topic: String,
    partition: Option<i32>,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
}

/// What one transaction publishes, and what to remember once it is committed.
#[derive(Default)]
struct Transaction {
    records: Vec<Outgoing>,
    states: BTreeMap<String, State>,
    fired: Vec<(String, DateTime<Utc>, Duration)>,
    skipped: Vec<(String, &'static str, u64)>,
    sent: Vec<(String, Position)>,
    rewritten: Vec<Position>,
}

impl<'a> Dispatch<'a> {
    /// Fences the previous dispatcher, then starts reading both topics from their
    /// beginning.
    fn start(settings: &'a KafkaSettings, group: &str) -> Result<(Self, Readers), SchedulerError> {
        let producer: FutureProducer = guarded(
            settings.producer_config(&[
                ("linger.ms", "5"),
                // The jobs a dispatcher sends were accepted by the broker before; let
                // the topic's own limit decide, not the producer's default.
                ("message.max.bytes", "16777216"),
                ("transaction.timeout.ms", "60000"),
            ]),
            &[
                ("transactional.id", group),
                ("acks", "all"),
                ("enable.idempotence", "true"),
            ],
        )
        .create()?;
        producer.init_transactions(Timeout::After(TRANSACTION_TIMEOUT))?;
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
            producer,
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

    fn loaded(&self) -> bool {
        !self.schedules_loading && self.delayed_loading.is_empty()
    }

    /// Follows the results topic from shortly before the oldest run of an
    /// `overlap: skip` schedule whose outcome has not been seen, to learn whether it has
    /// one (runs whose outcome was seen are recorded so in the schedule's state).
    fn results_reader(&mut self) -> Result<StreamConsumer<Reader>, SchedulerError> {
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

    fn on_schedule_record(&mut self, received: Result<BorrowedMessage<'_>, KafkaError>) {
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

    fn on_delayed_record(&mut self, received: Result<BorrowedMessage<'_>, KafkaError>) {
        match received {
            Ok(message) => {
                let Some(job_id) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                    tracing::warn!(
                        partition = message.partition(),
                        offset = message.offset(),
                        "a delayed record without a UTF-8 jobID key: skipped"
                    );
                    return;
                };
                let sent_offset = header(message.headers(), SENT_OFFSET)
                    .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok());
                let at = Position {
                    partition: message.partition(),
                    offset: message.offset(),
                };
                let endangered = self.waiting.record(
                    job_id,
                    at,
                    DelayedMeta::from_headers(|name| header(message.headers(), name)).due_at_ms,
                    sent_offset,
                    message.payload().is_none(),
                );
                if let Some(copy) = endangered {
                    tracing::info!(
                        job_id,
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

    fn on_result(&mut self, received: Result<BorrowedMessage<'_>, KafkaError>) {
        match received {
            Ok(message) => {
                let Some(job_id) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                    return;
                };
                if let Some((name, nominal)) = self.awaiting.remove(job_id) {
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
        let definition = self.catalog.definitions.get(name).filter(|d| !d.paused)?;
        let schedule = self.compiled.get(name)?.as_ref().ok()?;
        let state = self.catalog.states.get(name).copied().unwrap_or_default();
        let nominal = schedule.next_after(definition.handled_until(&state))?;
        Some(schedule.fires_at(nominal))
    }

    /// When to look again: the next occurrence or delayed job due, or `MAX_SLEEP`.
    fn wake(&self, now: DateTime<Utc>) -> tokio::time::Instant {
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
    async fn tick(&mut self, now: DateTime<Utc>) -> Result<(), TickError> {
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
        for (name, nominal, lateness) in transaction.fired {
            tracing::debug!(schedule = %name, job_id = %job_id(&name, nominal), lateness = ?lateness, "occurrence fired");
            self.tally.add("occurrences fired", 1);
            metrics::fired(&name, lateness);
            if self.skips_overlaps(&name) {
                self.start_running(&name, nominal);
            }
        }
        for (name, reason, count) in transaction.skipped {
            tracing::debug!(schedule = %name, reason, count, "occurrences skipped");
            self.tally.add("occurrences skipped", count);
            metrics::skipped(&name, reason, count);
        }
        if !transaction.sent.is_empty() {
            metrics::delayed_sent(transaction.sent.len());
        }
        self.rewrites
            .retain(|at| !transaction.rewritten.contains(at));
        for (id, at) in transaction.sent {
            tracing::debug!(job_id = %id, "delayed job due: sent to the jobs topic");
            self.tally.add("delayed jobs sent", 1);
            self.waiting.sent(&id, at);
        }
        metrics::delayed_waiting(self.waiting.len());
        Ok(())
    }

    /// Decides the due occurrences of `name`: fire, or skip (outside the catch-up
    /// window, or overlapping a run without an outcome).
    fn decide(&self, name: &str, now: DateTime<Utc>, transaction: &mut Transaction) {
        let (Some(definition), Some(Ok(schedule))) =
            (self.catalog.definitions.get(name), self.compiled.get(name))
        else {
            return;
        };
        let mut state = self.catalog.states.get(name).copied().unwrap_or_default();
        let window_start = schedule.catchup_start(now);
        let mut from = definition.handled_until(&state);
        let mut outside = 0u64;
        let mut overlapped = 0u64;
        let mut running = self.running.contains_key(name);
        let skips = schedule.overlap == Overlap::Skip;
        while let Some(nominal) = schedule.next_after(from) {
            let fires_at = schedule.fires_at(nominal);
            if fires_at > now || transaction.records.len() >= MAX_TRANSACTION_RECORDS {
                break;
            }
            from = nominal;
            if nominal < window_start {
                outside += 1;
                if outside >= MAX_SKIPS_COUNTED {
                    from = window_start;
                    tracing::warn!(
                        schedule = name,
                        "more than {MAX_SKIPS_COUNTED} occurrences missed; counting stops there"
                    );
                }
                state.last_handled = Some(from);
                continue;
            }
            if skips && running {
                if !self.results_loading.is_empty() {
                    // Whether the last run finished is not known yet: decide later.
                    break;
                }
                overlapped += 1;
                state.last_handled = Some(nominal);
                continue;
            }
            let id = job_id(name, nominal);
            let mut headers = vec![(RELEASED.to_owned(), b"true".to_vec())];
            let span = tracing::info_span!("schedule", otel.kind = "producer", schedule = name, job_id = %id);
            let mut trace = HashMap::new();
            propagation::inject(&span, &mut trace);
            headers.extend(trace.into_iter().map(|(k, v)| (k, v.into_bytes())));
            transaction.records.push(Outgoing {
                topic: self.settings.topic.clone(),
                partition: None,
                key: Some(name.as_bytes().to_vec()),
                payload: Some(schedule.job(nominal)),
                headers,
            });
            let lateness = (now - fires_at).to_std().unwrap_or_default();
            transaction.fired.push((name.to_owned(), nominal, lateness));
            state.last_handled = Some(nominal);
            state.last_fired = Some(nominal);
            state.last_fired_at = Some(now);
            running = skips;
        }
        if state.last_handled == self.catalog.states.get(name).and_then(|s| s.last_handled) {
            return;
        }
        for (reason, count) in [("outside_catchup", outside), ("overlap", overlapped)] {
            if count > 0 {
                transaction.skipped.push((name.to_owned(), reason, count));
            }
        }
        transaction.add_state(&self.settings.schedules_topic, name, state);
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
        self.awaiting.insert(id, (name.to_owned(), nominal));
    }

    /// Forgets `name`'s run without an outcome: `resume` after a run that never got
    /// one (its job lost downstream) lets the schedule fire again.
    fn forget_running(&mut self, name: &str) {
        if let Some(id) = self.running.remove(name) {
            tracing::info!(schedule = name, job_id = %id, "resumed: no longer waiting for the outcome of the last run");
            self.awaiting.remove(&id);
        }
    }

    /// Adds the delayed jobs due at `now`, read back from their topic, and their tombstones.
    fn add_delayed(
        &mut self,
        now: DateTime<Utc>,
        transaction: &mut Transaction,
    ) -> Result<(), String> {
        let room = MAX_TRANSACTION_RECORDS.saturating_sub(transaction.records.len()) / 2;
        if self.delayed_retry_at.is_some_and(|at| at > now) {
            return Ok(());
        }
        self.delayed_retry_at = None;
        let due = self.waiting.due(
            now.timestamp_millis(),
            room.min(MAX_DELAYED_PER_TRANSACTION),
        );
        // A copy replaced by a newer one since (read after the tombstone) needs nothing.
        let waiting = &self.waiting;
        self.rewrites.retain(|at| waiting.holds(*at));
        if due.is_empty() && self.rewrites.is_empty() {
            return Ok(());
        }
        let positions: Vec<Position> = due
            .iter()
            .map(|(_, at)| *at)
            .chain(self.rewrites.iter().copied())
            .collect();
        let topic = &self.settings.delayed_topic;
        let fetched = tokio::task::block_in_place(|| {
            waiting::fetch(&self.fetcher, topic, &positions, FETCH_LIMIT)
        })
        .map_err(|e| format!("reading due jobs back from {topic}: {e}"))?;
        self.add_rewrites(&fetched, transaction);
        for (due_ms, at) in due {
            let Some(message) = fetched.found.get(&at) else {
                if fetched.gone.contains(&at) {
                    tracing::warn!(
                        partition = at.partition,
                        offset = at.offset,
                        "a delayed job's record is gone (compacted); forgetting it"
                    );
                    self.waiting.drop_position(due_ms, at);
                } else {
                    // Not read this time: try again shortly, not in a tight loop.
                    self.delayed_retry_at = Some(now + chrono::Duration::seconds(1));
                }
                continue;
            };
            let Some(job_id) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                self.waiting.drop_position(due_ms, at);
                continue;
            };
            let tombstone = Outgoing {
                topic: topic.clone(),
                partition: Some(at.partition),
                key: Some(job_id.as_bytes().to_vec()),
                payload: None,
                headers: vec![(SENT_OFFSET.to_owned(), at.offset.to_string().into_bytes())],
            };
            transaction.sent.push((job_id.to_owned(), at));
            let bytes = message.payload().map_or(0, <[u8]>::len);
            let limit = self.settings.limits.job_bytes;
            if bytes > limit {
                // Not written by a worker (it delays only jobs within the limit), and no
                // worker would run it: forwarding it could only fail the transaction.
                tracing::error!(
                    job_id,
                    bytes,
                    limit,
                    "a delayed record over MAX_MESSAGE_BYTES cannot be a job: dropped"
                );
                metrics::delayed_dropped();
                transaction.records.push(tombstone);
                continue;
            }
            let headers = headers::all_of(message.headers())
                .into_iter()
                .filter(|(name, _)| headers::TRACE.contains(&name.as_str()))
                .chain([(RELEASED.to_owned(), b"true".to_vec())])
                .collect();
            transaction.records.push(Outgoing {
                topic: self.settings.topic.clone(),
                partition: None,
                key: DelayedMeta::from_headers(|name| header(message.headers(), name)).original_key,
                payload: message.payload().map(<[u8]>::to_vec),
                headers,
            });
            transaction.records.push(tombstone);
        }
        Ok(())
    }

    /// Writes again, as they are, the waiting copies a tombstone of an older copy
    /// follows, so that compaction keeps them.
    fn add_rewrites(&mut self, fetched: &waiting::Fetched, transaction: &mut Transaction) {
        let topic = &self.settings.delayed_topic;
        self.rewrites.retain(|at| {
            if fetched.gone.contains(at) {
                tracing::warn!(
                    partition = at.partition,
                    offset = at.offset,
                    "a delayed job was compacted away before it could be written again"
                );
                return false;
            }
            true
        });
        for at in &self.rewrites {
            let Some(message) = fetched.found.get(at) else {
                continue;
            };
            transaction.records.push(Outgoing {
                topic: topic.clone(),
                partition: Some(at.partition),
                key: message.key().map(<[u8]>::to_vec),
                payload: message.payload().map(<[u8]>::to_vec),
                headers: headers::all_of(message.headers()),
            });
            transaction.rewritten.push(*at);
        }
    }

    /// Publishes `records` in one transaction; returns how long it took. Every record's
    /// acknowledgement is awaited before the commit, so the commit's own flush has
    /// nothing left to wait for (rust-rdkafka's flush polls in 100 ms steps).
    async fn commit(&self, records: Vec<Outgoing>) -> Result<Duration, TickError> {
        let started = Instant::now();
        let result = async {
            tokio::task::block_in_place(|| self.producer.begin_transaction())?;
            let mut deliveries = Vec::with_capacity(records.len());
            for record in &records {
                deliveries.push(self.enqueue(record).await?);
            }
            for delivered in futures::future::join_all(deliveries).await {
                match delivered {
                    Ok(Ok(_)) => {}
                    Ok(Err((e, _))) => return Err(e),
                    Err(_) => return Err(KafkaError::Canceled),
                }
            }
            tokio::task::block_in_place(|| {
                // librdkafka asks for a retriable failure (a timeout) to be committed again.
                let mut tries = 1;
                loop {
                    match self
                        .producer
                        .commit_transaction(Timeout::After(TRANSACTION_TIMEOUT))
                    {
                        Err(KafkaError::Transaction(e)) if e.is_retriable() && tries < 3 => {
                            tracing::warn!(error = %e, "committing again");
                            tries += 1;
                        }
                        committed => return committed,
                    }
                }
            })
        }
        .await;
        match result {
            Ok(()) => Ok(started.elapsed()),
            Err(e) => {
                let fatal = matches!(&e, KafkaError::Transaction(t) if t.is_fatal());
                if fatal {
                    return Err(TickError::Fatal(format!("transaction: {e}")));
                }
                let aborted = tokio::task::block_in_place(|| {
                    self.producer
                        .abort_transaction(Timeout::After(TRANSACTION_TIMEOUT))
                });
                if let Err(abort) = aborted {
                    return Err(TickError::Fatal(format!(
                        "transaction: {e}; abort: {abort}"
                    )));
                }
                Err(TickError::Retry(e.to_string()))
            }
        }
    }

    /// Hands `record` to the producer, waiting while its queue is full.
    async fn enqueue(&self, record: &Outgoing) -> Result<DeliveryFuture, KafkaError> {
        let mut future = FutureRecord::<[u8], [u8]>::to(&record.topic)
            .headers(headers::owned(record.headers.iter().map(|(n, v)| (n, v))));
        if let Some(partition) = record.partition {
            future = future.partition(partition);
        }
        if let Some(key) = &record.key {
            future = future.key(key);
        }
        if let Some(payload) = &record.payload {
            future = future.payload(payload);
        }
        loop {
            match self.producer.send_result(future) {
                Ok(delivery) => return Ok(delivery),
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    returned,
                )) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    future = returned;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
}

/// When each schedule's next occurrence fires (nominal + jitter), by name and in time
/// order, so that finding what is due costs no scan of every schedule.
#[derive(Default)]
struct Plans {
    by_name: HashMap<String, DateTime<Utc>>,
    by_time: BTreeSet<(DateTime<Utc>, String)>,
}

impl Plans {
    fn set(&mut self, name: &str, at: Option<DateTime<Utc>>) {
        if let Some(old) = self.by_name.remove(name) {
            self.by_time.remove(&(old, name.to_owned()));
        }
        if let Some(at) = at {
            self.by_name.insert(name.to_owned(), at);
            self.by_time.insert((at, name.to_owned()));
        }
    }

    fn next(&self) -> Option<DateTime<Utc>> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// The schedules due at `now`, earliest first.
    fn due(&self, now: DateTime<Utc>) -> Vec<String> {
        self.by_time
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, name)| name.clone())
            .collect()
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

/// A client's settings (the worker's, with the operator's `RDKAFKA_*` overrides) with
/// `guards` on top: what the dispatcher's guarantees rest on, which no override may
/// change.
fn guarded(mut config: ClientConfig, guards: &[(&str, &str)]) -> ClientConfig {
    for (key, value) in guards {
        config.set(*key, *value);
    }
    config
}

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
