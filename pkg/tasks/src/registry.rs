//! The tasks as this process knows them: a follower thread reads the tasks topic from
//! its beginning and keeps every live task's facts in memory (a few hundred bytes each;
//! results stay on the results topic, found by their place). A task this process has
//! not read yet may have just been created on another replica: before saying "no such
//! task", [`Registry::get`] catches up on the task's partition to the end the broker
//! has now, so a task acknowledged by [`crate::TaskStore`] is always found.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use mcp_jobs_contract::task::{JobState, TaskFact, TaskRecord};
use mcp_jobs_contract::JsonRecord;
use mcp_jobs_kafka::topic::{self, partition_count, ReadError, Reader};
use mcp_jobs_kafka::KafkaSettings;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::Notify;

use crate::id::partition_of;

/// How long [`Registry::get`] may wait to catch up before it gives up.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("the tasks topic: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Topic(#[from] ReadError),
    #[error("this replica is more than {0:?} behind the tasks topic; ask again")]
    Behind(Duration),
}

/// How many live tasks a registry holds in each state of their job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskStates {
    pub queued: usize,
    pub running: usize,
    pub retrying: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub cancelled: usize,
}

impl TaskStates {
    /// Each state's name, as metrics label it, with its count.
    pub fn named(&self) -> [(&'static str, usize); 6] {
        [
            ("queued", self.queued),
            (JobState::Running.as_str(), self.running),
            (JobState::Retrying.as_str(), self.retrying),
            (JobState::Succeeded.as_str(), self.succeeded),
            (JobState::Failed.as_str(), self.failed),
            (JobState::Cancelled.as_str(), self.cancelled),
        ]
    }
}

/// One task as a client may see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: String,
    /// The [`TaskRecord::Created`] record.
    pub created: TaskRecord,
    /// The newest [`TaskRecord::Status`], once a worker has run its job.
    pub status: Option<TaskRecord>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl Task {
    /// When the task is forgotten.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        match &self.created {
            TaskRecord::Created {
                created_at, ttl_ms, ..
            } => Some(*created_at + TimeDelta::milliseconds(i64::try_from(*ttl_ms).ok()?)),
            _ => None,
        }
    }

    fn owned_by(&self, owner: &str) -> bool {
        matches!(&self.created, TaskRecord::Created { owner: o, .. } if o == owner)
    }
}

/// What has been read of one task: its facts may arrive in any order after a restart
/// of compaction, so each is kept as it comes.
#[derive(Default)]
struct Facts {
    created: Option<TaskRecord>,
    status: Option<TaskRecord>,
    cancelled_at: Option<DateTime<Utc>>,
}

struct Shared {
    tasks: RwLock<HashMap<String, Facts>>,
    /// Per partition, the offset after the last record read (or the end, once reached).
    read_up_to: Vec<AtomicI64>,
    consumer: BaseConsumer<Reader>,
    /// Woken whenever a task's job reports its end.
    ended: Notify,
    /// Woken whenever a task changes: its job's status, or a cancellation.
    changed: Notify,
    /// Woken whenever the follower reads further, for a catch-up waiting on it.
    advanced: Notify,
    /// Asks the broker where partitions end. Not the follower itself: a broker answers
    /// one connection's requests in order, so this question would wait behind the
    /// follower's fetch, which waits at the end for new records.
    ends: BaseConsumer<Reader>,
    topic: String,
    stop: AtomicBool,
}

/// A handle on the tasks this process follows; cloning it shares them. The follower
/// stops when the last handle is dropped.
#[derive(Clone)]
pub struct Registry {
    shared: Arc<Shared>,
    _stop: Arc<StopOnDrop>,
}

struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Relaxed);
    }
}

impl Registry {
    /// Starts following `settings`' tasks topic from its beginning.
    pub fn follow(settings: &KafkaSettings) -> Result<Self, RegistryError> {
        let consumer = topic::follower(settings, crate::READER_GROUP)?;
        let topic = settings.tasks_topic.clone();
        let partitions = partition_count(&consumer, &topic)?;
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            assignment.add_partition_offset(&topic, partition, Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        let shared = Arc::new(Shared {
            tasks: RwLock::default(),
            read_up_to: (0..partitions).map(|_| AtomicI64::new(0)).collect(),
            consumer,
            ended: Notify::new(),
            changed: Notify::new(),
            advanced: Notify::new(),
            ends: topic::reader(settings, crate::READER_GROUP)?,
            topic,
            stop: AtomicBool::new(false),
        });
        let follower = shared.clone();
        std::thread::Builder::new()
            .name("tasks-follower".into())
            .spawn(move || follow(&follower))
            .map_err(|e| KafkaError::ClientCreation(e.to_string()))?;
        Ok(Self {
            _stop: Arc::new(StopOnDrop(shared.clone())),
            shared,
        })
    }

    /// Task `id` if `owner` owns it and it has not expired. A task not read yet is
    /// waited for: the task's partition is read up to its end as the broker has it now.
    /// Another owner's task is `None`, as an unknown one is.
    pub async fn get(&self, id: &str, owner: &str) -> Result<Option<Task>, RegistryError> {
        if let Some(task) = self.read(id) {
            return Ok(Some(task).filter(|t| t.owned_by(owner)));
        }
        self.catch_up(partition_of(id, self.partitions())).await?;
        Ok(self.read(id).filter(|t| t.owned_by(owner)))
    }

    /// Task `id` once its job has ended, if that is within `within`; `None` if it is
    /// still going then (or unknown). For a caller that answers inline when it can.
    pub async fn ended(&self, id: &str, within: Duration) -> Option<Task> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let woken = self.shared.ended.notified();
            if let Some(task) = self.read(id).filter(|t| is_end(t.status.as_ref())) {
                return Some(task);
            }
            tokio::time::timeout_at(deadline, woken).await.ok()?;
        }
    }

    /// Holds `created`, task `id`'s record that this process has just written and seen
    /// acknowledged, before the follower reads it back: the replica that created a task
    /// answers for it at once, without catching up first.
    pub fn remember(&self, id: &str, created: TaskRecord) {
        if matches!(created, TaskRecord::Created { .. }) {
            let mut tasks = self
                .shared
                .tasks
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            tasks.entry(id.to_owned()).or_default().created = Some(created);
        }
    }

    /// Task `id` if `owner` owns it, as this process has read so far (no broker round
    /// trip): for following a task already found.
    pub fn peek(&self, id: &str, owner: &str) -> Option<Task> {
        self.read(id).filter(|t| t.owned_by(owner))
    }

    /// Resolves at the next change of any task's status or cancellation; take it before
    /// looking, so that a change in between is not missed.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.shared.changed.notified()
    }

    /// Whether task `id` was cancelled, as the broker has it now (its partition caught
    /// up first): for a worker about to run the task's job.
    pub async fn cancelled(&self, id: &str) -> Result<bool, RegistryError> {
        self.catch_up(partition_of(id, self.partitions())).await?;
        Ok(self.cancelled_now(id))
    }

    /// Whether task `id` was cancelled, as this process has read so far.
    pub fn cancelled_now(&self, id: &str) -> bool {
        self.tasks()
            .get(id)
            .is_some_and(|facts| facts.cancelled_at.is_some())
    }

    /// How many live tasks are in each state, by the state of their job.
    pub fn states(&self) -> TaskStates {
        let mut states = TaskStates::default();
        for facts in self.tasks().values().filter(|f| f.created.is_some()) {
            let count = match &facts.status {
                Some(TaskRecord::Status { state, .. }) if state.is_end() => match state {
                    JobState::Succeeded => &mut states.succeeded,
                    JobState::Failed => &mut states.failed,
                    _ => &mut states.cancelled,
                },
                _ if facts.cancelled_at.is_some() => &mut states.cancelled,
                Some(TaskRecord::Status {
                    state: JobState::Retrying,
                    ..
                }) => &mut states.retrying,
                Some(_) => &mut states.running,
                None => &mut states.queued,
            };
            *count += 1;
        }
        states
    }

    /// How many tasks are held (expired ones until [`Registry::sweep`] takes them).
    pub fn len(&self) -> usize {
        self.tasks().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the tasks whose TTL has passed at `now` and returns their ids, for their
    /// records to be tombstoned.
    pub fn sweep(&self, now: DateTime<Utc>) -> Vec<String> {
        let mut tasks = self
            .shared
            .tasks
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut expired = Vec::new();
        tasks.retain(|id, facts| {
            let keep = task_of(id, facts)
                .and_then(|t| t.expires_at())
                .is_none_or(|at| at > now);
            if !keep {
                expired.push(id.clone());
            }
            keep
        });
        expired
    }

    fn read(&self, id: &str) -> Option<Task> {
        let task = task_of(id, self.tasks().get(id)?)?;
        task.expires_at()
            .is_none_or(|at| at > Utc::now())
            .then_some(task)
    }

    fn tasks(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Facts>> {
        self.shared
            .tasks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn partitions(&self) -> i32 {
        i32::try_from(self.shared.read_up_to.len()).unwrap_or(i32::MAX)
    }

    async fn catch_up(&self, partition: i32) -> Result<(), RegistryError> {
        let shared = self.shared.clone();
        let end = tokio::task::spawn_blocking(move || {
            shared
                .ends
                .fetch_watermarks(&shared.topic, partition, CATCH_UP_LIMIT)
                .map(|(_, high)| high)
        })
        .await
        .map_err(|_| RegistryError::Behind(CATCH_UP_LIMIT))??;
        let read = &self.shared.read_up_to[usize::try_from(partition).unwrap_or(0)];
        let deadline = tokio::time::Instant::now() + CATCH_UP_LIMIT;
        loop {
            let advanced = self.shared.advanced.notified();
            if read.load(Ordering::Acquire) >= end {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, advanced).await.is_err() {
                return Err(RegistryError::Behind(CATCH_UP_LIMIT));
            }
        }
    }
}

fn task_of(id: &str, facts: &Facts) -> Option<Task> {
    Some(Task {
        id: id.to_owned(),
        created: facts.created.clone()?,
        status: facts.status.clone(),
        cancelled_at: facts.cancelled_at,
    })
}

/// The follower: applies every record to the tasks, and notes how far each partition
/// has been read.
fn follow(shared: &Shared) {
    while !shared.stop.load(Ordering::Relaxed) {
        match shared.consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                apply(shared, message.key(), message.payload());
                advance(shared, message.partition(), message.offset() + 1);
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                // At the end: the position is the end offset, past any record that
                // compaction or a transaction marker leaves no message for.
                if let Ok(positions) = shared.consumer.position() {
                    let at = positions.find_partition(&shared.topic, partition);
                    if let Some(Offset::Offset(end)) = at.map(|p| p.offset()) {
                        advance(shared, partition, end);
                    }
                }
            }
            Some(Err(e)) => tracing::warn!(error = %e, "reading the tasks topic"),
            None => {}
        }
    }
}

fn advance(shared: &Shared, partition: i32, to: i64) {
    if let Some(read) = usize::try_from(partition)
        .ok()
        .and_then(|p| shared.read_up_to.get(p))
    {
        if read.fetch_max(to, Ordering::AcqRel) < to {
            shared.advanced.notify_waiters();
        }
    }
}

fn apply(shared: &Shared, key: Option<&[u8]>, value: Option<&[u8]>) {
    let Some((id, fact)) = key
        .and_then(|k| std::str::from_utf8(k).ok())
        .and_then(TaskFact::parse)
    else {
        tracing::warn!("a record on the tasks topic has no task key; skipped");
        return;
    };
    let mut tasks = shared.tasks.write().unwrap_or_else(PoisonError::into_inner);
    let Some(value) = value else {
        // A tombstone: the task is forgotten, or one of its facts.
        match fact {
            TaskFact::Created => {
                tasks.remove(id);
            }
            TaskFact::Status => {
                if let Some(facts) = tasks.get_mut(id) {
                    facts.status = None;
                }
            }
            TaskFact::Cancel => {
                if let Some(facts) = tasks.get_mut(id) {
                    facts.cancelled_at = None;
                }
            }
        }
        return;
    };
    let record = match TaskRecord::from_record(value) {
        Ok(record) if record.fact() == fact => record,
        Ok(_) => {
            tracing::warn!(task = id, "a task record under another fact's key; skipped");
            return;
        }
        Err(e) => {
            tracing::warn!(task = id, error = %e, "an unreadable task record; skipped");
            return;
        }
    };
    let facts = tasks.entry(id.to_owned()).or_default();
    if !matches!(record, TaskRecord::Created { .. }) {
        shared.changed.notify_waiters();
    }
    match record {
        TaskRecord::Cancelled { at } => facts.cancelled_at = Some(at),
        // A job's end is final: a report of an attempt that arrives after it (from a
        // worker that ran the job again after a crash) does not undo it.
        status @ TaskRecord::Status { .. }
            if !is_end(facts.status.as_ref()) || is_end(Some(&status)) =>
        {
            if is_end(Some(&status)) {
                shared.ended.notify_waiters();
            }
            facts.status = Some(status)
        }
        TaskRecord::Status { .. } => {}
        created @ TaskRecord::Created { .. } => facts.created = Some(created),
    }
}

fn is_end(status: Option<&TaskRecord>) -> bool {
    matches!(status, Some(TaskRecord::Status { state, .. }) if state.is_end())
}
