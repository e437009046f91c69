//! `kafka-worker publish`: sends one job to the jobs topic, checked against the contract
//! first, and optionally waits for its result record.

use std::time::Duration;

use mcp_jobs_contract::outcome::Outcome;
use mcp_jobs_contract::{ContractError, ScheduledJobEnvelope};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset, TopicPartitionList};
use tracing::Instrument;

use crate::headers;
use crate::settings::KafkaSettings;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("not a valid job: {0}")]
    Invalid(#[from] ContractError),
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("no result for job {job_id:?} on {topic} within {waited:?}")]
    NoResult {
        job_id: String,
        topic: String,
        waited: Duration,
    },
    #[error("the result record does not read as one: {0}")]
    BadResult(serde_json::Error),
}

/// Where a published job landed.
#[derive(Debug, Clone)]
pub struct Published {
    pub job_id: String,
    pub partition: i32,
    pub offset: i64,
    /// Broker timestamp bound: results of this run are written no earlier.
    pub published_at_ms: i64,
}

/// Validates `message` and sends it, keyed by `key` when given, acknowledged by all replicas.
pub async fn publish(
    settings: &KafkaSettings,
    message: &[u8],
    key: Option<&str>,
) -> Result<Published, PublishError> {
    let job = ScheduledJobEnvelope::from_slice_limited(message, settings.limits.job_bytes)?;
    let producer: FutureProducer = settings.producer_config(&[("acks", "all")]).create()?;
    let published_at_ms = chrono::Utc::now().timestamp_millis();
    // The job's trace starts here: the worker's job span becomes a child of this one.
    let span = tracing::info_span!("publish", otel.kind = "producer", job_id = %job.job_id);
    let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(&settings.topic)
        .payload(message)
        .headers(headers::headers_of(&span));
    if let Some(key) = key {
        record = record.key(key);
    }
    let delivery = producer
        .send(record, Timeout::After(Duration::from_secs(30)))
        .instrument(span)
        .await
        .map_err(|(e, _)| e)?;
    Ok(Published {
        job_id: job.job_id,
        partition: delivery.partition,
        offset: delivery.offset,
        published_at_ms,
    })
}

/// Reads the results topic (without joining a group) until the result record of
/// `published` appears, or `wait` passes.
pub async fn wait_for_result(
    settings: &KafkaSettings,
    published: &Published,
    wait: Duration,
) -> Result<Outcome, PublishError> {
    let until = tokio::time::Instant::now() + wait;
    let consumer: StreamConsumer = settings
        .consumer_config(&[
            ("group.id", "kafka-worker-publish"),
            ("enable.auto.commit", "false"),
        ])
        .create()?;
    let topic = &settings.results_topic;
    let metadata = tokio::task::block_in_place(|| {
        consumer.fetch_metadata(Some(topic), Duration::from_secs(10))
    })?;
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        assignment.add_partition_offset(topic, partition.id(), Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    loop {
        let Ok(received) = tokio::time::timeout_at(until, consumer.recv()).await else {
            return Err(PublishError::NoResult {
                job_id: published.job_id.clone(),
                topic: topic.clone(),
                waited: wait,
            });
        };
        let message = received?;
        let is_ours = message.key() == Some(published.job_id.as_bytes())
            && message.timestamp().to_millis().unwrap_or(0) >= published.published_at_ms;
        if is_ours {
            return Outcome::from_record(message.payload().unwrap_or_default())
                .map_err(PublishError::BadResult);
        }
    }
}
