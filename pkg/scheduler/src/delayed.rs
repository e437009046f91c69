//! `kafka-worker delayed list | show | cancel`: the delayed jobs waiting for their time,
//! read from the delayed topic as the dispatcher reads it ([`WaitingJobs`]: a job's
//! newest copy waits; a tombstone naming a copy ends its wait), and cancelling one. A
//! cancellation is a tombstone the dispatcher takes as "sent", so the job never goes
//! back to the jobs topic, and a cancelled result record, so the job's page says what
//! happened to it instead of nothing.
//!
//! A process that shows them again and again (the console) follows the topic instead
//! ([`follow`]): it keeps the dispatcher's index (a few dozen bytes a job, never the
//! jobs) and reads back only the records a page shows.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mcp_jobs_contract::headers::SENT_OFFSET;
use mcp_jobs_contract::outcome::{Failure, Outcome};
use mcp_jobs_contract::{redact_job_secrets, FailureKind};
use mcp_jobs_kafka::follow;
use mcp_jobs_kafka::topic::{self, partition_count, ReadError, Reader};
use mcp_jobs_kafka::KafkaSettings;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::schedule::rfc3339;
use crate::waiting::{self, DelayedRecord, Position, WaitingJobs};

/// Who a cancelled job's result record names as its worker.
pub const CANCELLED_BY: &str = "kafka-worker delayed cancel";

/// How long a write may wait for the broker.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum DelayedError {
    #[error("the delayed topic: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Topic(#[from] ReadError),
    #[error("the delayed topic cannot be followed: {0}")]
    Following(String),
    #[error("no job {job_id:?} waits on {topic}: it was never delayed, or it was sent or cancelled already")]
    NotWaiting { job_id: String, topic: String },
}

/// A job waiting on the delayed topic.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitingJob {
    pub job_id: String,
    /// When the dispatcher sends it back to the jobs topic; `None` for a record not
    /// written by a worker, which it sends at once.
    pub due: Option<DateTime<Utc>>,
    /// Where a worker first consumed it: `topic/partition/offset`.
    pub delayed_from: Option<String>,
    pub partition: i32,
    pub offset: i64,
    /// The size of the job as it waits.
    pub bytes: usize,
}

impl WaitingJob {
    /// The job a copy on the delayed topic is, unless it is a tombstone.
    fn of(record: &DelayedRecord<'_>) -> Option<Self> {
        Some(Self {
            job_id: record.job_id.to_owned(),
            due: record
                .meta
                .due_at_ms
                .and_then(DateTime::from_timestamp_millis),
            delayed_from: record.meta.delayed_from.clone(),
            partition: record.at.partition,
            offset: record.at.offset,
            bytes: record.bytes?,
        })
    }

    /// Where its copy waits.
    pub fn at(&self) -> Position {
        Position {
            partition: self.partition,
            offset: self.offset,
        }
    }

    /// When it is due, as the command line writes times; "at once" for a record not
    /// written by a worker.
    pub fn due_text(&self) -> String {
        self.due.map_or_else(|| "at once".to_owned(), rfc3339)
    }
}

/// What waits on the delayed topic: [`DelayedJobs::list`] and its neighbours read it
/// whole (it is compacted: about one record per waiting job).
pub struct DelayedJobs<'a> {
    settings: &'a KafkaSettings,
    reader: BaseConsumer<Reader>,
}

/// The waiting jobs, earliest due first, as far as asked for.
#[derive(Debug)]
pub struct Listing {
    pub jobs: Vec<WaitingJob>,
    /// How many wait in all.
    pub total: usize,
}

impl<'a> DelayedJobs<'a> {
    pub fn new(settings: &'a KafkaSettings) -> Result<Self, DelayedError> {
        Ok(Self {
            settings,
            reader: topic::reader(settings, "kafka-worker-delayed")?,
        })
    }

    /// The first `limit` waiting jobs by due time, and how many wait in all.
    pub fn list(&self, limit: usize) -> Result<Listing, DelayedError> {
        let topic = &self.settings.delayed_topic;
        let partitions = partition_count(&self.reader, topic)?;
        let starts: Vec<_> = (0..partitions).map(|p| (p, Offset::Beginning)).collect();
        let mut waiting = WaitingJobs::default();
        let mut copies: HashMap<Position, WaitingJob> = HashMap::new();
        topic::read_range(&self.reader, topic, &starts, usize::MAX, |message| {
            if let Some(record) = DelayedRecord::of(message) {
                record.apply(&mut waiting);
                if let Some(job) = WaitingJob::of(&record) {
                    copies.insert(record.at, job);
                }
            }
        })?;
        let jobs = waiting
            .due(i64::MAX, limit)
            .into_iter()
            .filter_map(|(_, at)| copies.remove(&at))
            .collect();
        Ok(Listing {
            jobs,
            total: waiting.len(),
        })
    }

    /// Job `job_id` if it waits, and the job itself with its secrets hidden.
    pub fn show(&self, job_id: &str) -> Result<(WaitingJob, Value), DelayedError> {
        let job = self.find(job_id)?;
        let at = job.at();
        let topic = &self.settings.delayed_topic;
        let mut fetched = waiting::fetch(&self.reader, topic, &[at], Duration::from_secs(10))?;
        match fetched.found.remove(&at) {
            Some(message) => Ok((job, shown_job(message.payload().unwrap_or_default()))),
            None => Err(self.not_waiting(job_id)),
        }
    }

    /// Cancels job `job_id` if it waits: see [`cancel`]. Returns what was cancelled.
    pub async fn cancel(&self, job_id: &str) -> Result<WaitingJob, DelayedError> {
        let job = self.find(job_id)?;
        cancel(self.settings, &job).await?;
        Ok(job)
    }

    fn find(&self, job_id: &str) -> Result<WaitingJob, DelayedError> {
        self.list(usize::MAX)?
            .jobs
            .into_iter()
            .find(|job| job.job_id == job_id)
            .ok_or_else(|| self.not_waiting(job_id))
    }

    fn not_waiting(&self, job_id: &str) -> DelayedError {
        DelayedError::NotWaiting {
            job_id: job_id.to_owned(),
            topic: self.settings.delayed_topic.clone(),
        }
    }
}

/// Cancels `job`, found waiting: it will not run (unless the dispatcher is sending it
/// back this very moment, when it is due), and its result record says it was cancelled.
pub async fn cancel(settings: &KafkaSettings, job: &WaitingJob) -> Result<(), DelayedError> {
    let producer: FutureProducer = settings.acked_producer_config().create()?;
    let offset = job.offset.to_string();
    let tombstone = FutureRecord::<str, [u8]>::to(&settings.delayed_topic)
        .partition(job.partition)
        .key(&job.job_id)
        .headers(OwnedHeaders::new().insert(Header {
            key: SENT_OFFSET,
            value: Some(&offset),
        }));
    producer
        .send(tombstone, Timeout::After(WRITE_TIMEOUT))
        .await
        .map_err(|(e, _)| e)?;
    let outcome = Outcome::refused(
        Some(job.job_id.clone()),
        Failure {
            kind: FailureKind::Cancelled,
            message: format!(
                "cancelled while waiting for its time (due {})",
                job.due_text()
            ),
        },
        CANCELLED_BY,
    );
    let record = outcome.record();
    let result = FutureRecord::to(&settings.results_topic)
        .key(&job.job_id)
        .payload(&record);
    producer
        .send(result, Timeout::After(WRITE_TIMEOUT))
        .await
        .map_err(|(e, _)| e)?;
    Ok(())
}

/// A job as people may see it: its secrets hidden. A record that is not JSON (no
/// worker writes one) is not shown: where its secrets are cannot be told.
fn shown_job(payload: &[u8]) -> Value {
    match serde_json::from_slice(payload) {
        Ok(mut job) => {
            redact_job_secrets(&mut job);
            job
        }
        Err(e) => Value::from(format!(
            "{} bytes that are not JSON ({e}); not shown, since where their secrets are cannot be told",
            payload.len()
        )),
    }
}

/// The delayed topic followed in the background: the index of what waits, for pages
/// that show it (the console's).
#[derive(Clone)]
pub struct Followed(follow::Followed<WaitingJobs>);

/// What a page shows of the waiting jobs.
#[derive(Debug, serde::Serialize)]
pub struct Page {
    /// The earliest due, as many as asked for.
    pub jobs: Vec<WaitingJob>,
    /// How many wait in all.
    pub total: usize,
    /// Whether the whole topic has been read yet (if not, more may be waiting).
    pub loaded: bool,
    /// Records read back for this page.
    #[serde(skip)]
    pub read: usize,
}

/// Follows `settings`' delayed topic from its beginning until `stop`.
pub fn follow(settings: KafkaSettings, group: &'static str, stop: CancellationToken) -> Followed {
    let topic = settings.delayed_topic.clone();
    Followed(follow::Followed::start(settings, group, topic, stop))
}

impl Followed {
    /// Forgets `job`, cancelled by this process, before the follower reads its
    /// tombstone: the pages this process shows next no longer list it.
    pub fn forget(&self, job: &WaitingJob) {
        self.0.view().sent(&job.job_id, job.at());
    }

    /// Job `job_id` if it waits, with its copy read back from the topic.
    pub fn find(
        &self,
        reader: &BaseConsumer<Reader>,
        settings: &KafkaSettings,
        job_id: &str,
    ) -> Result<Option<(WaitingJob, Value)>, DelayedError> {
        let Some((_, at)) = self.0.view().position_of(job_id) else {
            return Ok(None);
        };
        let mut read = self.read_back(reader, settings, &[at])?;
        Ok(read.pop().filter(|(job, _)| job.job_id == job_id))
    }

    /// The first `limit` waiting jobs by due time, read back from the topic.
    pub fn page(
        &self,
        reader: &BaseConsumer<Reader>,
        settings: &KafkaSettings,
        limit: usize,
    ) -> Result<Page, DelayedError> {
        if let Some(problem) = self.0.problem() {
            return Err(DelayedError::Following(problem));
        }
        let (positions, total) = {
            let waiting = self.0.view();
            let due = waiting.due(i64::MAX, limit);
            (
                due.into_iter().map(|(_, at)| at).collect::<Vec<_>>(),
                waiting.len(),
            )
        };
        let jobs: Vec<_> = self
            .read_back(reader, settings, &positions)?
            .into_iter()
            .map(|(job, _)| job)
            .collect();
        Ok(Page {
            read: jobs.len(),
            jobs,
            total,
            loaded: self.0.loaded(),
        })
    }

    /// The records at `positions`, in that order, with their jobs shown (secrets
    /// hidden); one gone meanwhile (sent, cancelled) is left out.
    fn read_back(
        &self,
        reader: &BaseConsumer<Reader>,
        settings: &KafkaSettings,
        positions: &[Position],
    ) -> Result<Vec<(WaitingJob, Value)>, DelayedError> {
        if positions.is_empty() {
            return Ok(Vec::new());
        }
        let topic = &settings.delayed_topic;
        let mut fetched = waiting::fetch(reader, topic, positions, Duration::from_secs(5))?;
        Ok(positions
            .iter()
            .filter_map(|at| fetched.found.remove(at))
            .filter_map(|message| {
                let job = WaitingJob::of(&DelayedRecord::of(&message)?)?;
                Some((job, shown_job(message.payload().unwrap_or_default())))
            })
            .collect())
    }
}
