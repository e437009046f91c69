//! `kafka-worker delayed list | show | cancel`: the delayed jobs waiting for their time,
//! read from the delayed topic as the dispatcher reads it ([`WaitingJobs`]: a job's
//! newest copy waits; a tombstone naming a copy ends its wait), and cancelling one. A
//! cancellation is a tombstone the dispatcher takes as "sent", so the job never goes
//! back to the jobs topic, and a cancelled result record, so the job's page says what
//! happened to it instead of nothing.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mcp_jobs_contract::headers::{DelayedMeta, SENT_OFFSET};
use mcp_jobs_contract::outcome::{Failure, Outcome};
use mcp_jobs_contract::{redact_job_secrets, FailureKind};
use mcp_jobs_kafka::headers::header;
use mcp_jobs_kafka::topic::{self, partition_count, ReadError, Reader};
use mcp_jobs_kafka::KafkaSettings;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset};
use serde_json::Value;

use crate::waiting::{self, Position, WaitingJobs};

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
            let Some(job_id) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                return;
            };
            let at = Position {
                partition: message.partition(),
                offset: message.offset(),
            };
            let meta = DelayedMeta::from_headers(|name| header(message.headers(), name));
            let sent_offset = header(message.headers(), SENT_OFFSET)
                .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok());
            let payload = message.payload();
            waiting.record(job_id, at, meta.due_at_ms, sent_offset, payload.is_none());
            if let Some(payload) = payload {
                copies.insert(
                    at,
                    WaitingJob {
                        job_id: job_id.to_owned(),
                        due: meta.due_at_ms.and_then(DateTime::from_timestamp_millis),
                        delayed_from: meta.delayed_from,
                        partition: at.partition,
                        offset: at.offset,
                        bytes: payload.len(),
                    },
                );
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

    /// Job `job_id` if it waits, and the job itself with its secrets hidden (a record
    /// that is not JSON, as text).
    pub fn show(&self, job_id: &str) -> Result<(WaitingJob, Value), DelayedError> {
        let job = self.find(job_id)?;
        let at = Position {
            partition: job.partition,
            offset: job.offset,
        };
        let topic = &self.settings.delayed_topic;
        let mut fetched = waiting::fetch(&self.reader, topic, &[at], Duration::from_secs(10))?;
        match fetched.found.remove(&at) {
            Some(message) => {
                let payload = message.payload().unwrap_or_default();
                let mut shown = serde_json::from_slice(payload)
                    .unwrap_or_else(|_| Value::from(String::from_utf8_lossy(payload)));
                redact_job_secrets(&mut shown);
                Ok((job, shown))
            }
            None => Err(self.not_waiting(job_id)),
        }
    }

    /// Cancels job `job_id` if it waits: it will not run (unless the dispatcher is
    /// sending it back this very moment, when it is due), and its result record says
    /// it was cancelled. Returns what was cancelled.
    pub async fn cancel(&self, job_id: &str) -> Result<WaitingJob, DelayedError> {
        let job = self.find(job_id)?;
        let producer: FutureProducer = self.settings.acked_producer_config().create()?;
        let offset = job.offset.to_string();
        let tombstone = FutureRecord::<str, [u8]>::to(&self.settings.delayed_topic)
            .partition(job.partition)
            .key(job_id)
            .headers(OwnedHeaders::new().insert(Header {
                key: SENT_OFFSET,
                value: Some(&offset),
            }));
        producer
            .send(tombstone, Timeout::After(WRITE_TIMEOUT))
            .await
            .map_err(|(e, _)| e)?;
        let due = job
            .due
            .map_or_else(|| "at once".to_owned(), |due| due.to_rfc3339());
        let outcome = Outcome::refused(
            Some(job_id.to_owned()),
            Failure {
                kind: FailureKind::Cancelled,
                message: format!("cancelled while waiting for its time (due {due})"),
            },
            CANCELLED_BY,
        );
        let record = outcome.record();
        let result = FutureRecord::to(&self.settings.results_topic)
            .key(job_id)
            .payload(&record);
        producer
            .send(result, Timeout::After(WRITE_TIMEOUT))
            .await
            .map_err(|(e, _)| e)?;
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
