//! Writing a task's records: each one on the task's partition ([`partition_of`]) and
//! acknowledged by every in-sync replica (`acks=all`) before the write returns, so a
//! task reported created is on the topic for every mcp-server replica to read.

use std::future::Future;
use std::time::Duration;

use mcp_jobs_contract::task::{TaskFact, TaskRecord};
use mcp_jobs_contract::JsonRecord;
use mcp_jobs_kafka::topic::{self, partition_count, ReadError};
use mcp_jobs_kafka::KafkaSettings;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use crate::id::partition_of;

/// How long a write may wait for the broker before it fails.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the tasks topic: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Topic(#[from] ReadError),
}

#[derive(Clone)]
pub struct TaskStore {
    producer: FutureProducer,
    topic: String,
    partitions: i32,
}

impl TaskStore {
    /// A store for `settings`' tasks topic, which must exist (`create-topics` makes it).
    pub fn new(settings: &KafkaSettings) -> Result<Self, StoreError> {
        let producer: FutureProducer = settings.acked_producer_config().create()?;
        let reader = topic::reader(settings, crate::READER_GROUP)?;
        let partitions = partition_count(&reader, &settings.tasks_topic)?;
        Ok(Self {
            producer,
            topic: settings.tasks_topic.clone(),
            partitions,
        })
    }

    /// The acknowledged producer the records go through, for a task's job to share: a
    /// task record and its job sent together reach the broker in one request.
    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// Writes `record` about task `id` under the key of its fact.
    pub async fn write(&self, id: &str, record: &TaskRecord) -> Result<(), StoreError> {
        self.send(id, &record.fact().key(id), Some(&record.to_record()))
            .await
    }

    /// Hands `record` about task `id` to the producer now and returns its
    /// acknowledgement to await apart: records enqueued one after another reach the task's
    /// partition in that order (the producer is idempotent), without each waiting for
    /// the one before it to be acknowledged.
    pub fn enqueue(
        &self,
        id: &str,
        record: &TaskRecord,
    ) -> Result<impl Future<Output = Result<(), StoreError>> + Send + 'static, StoreError> {
        let key = record.fact().key(id);
        let value = record.to_record();
        let sent = FutureRecord::to(&self.topic)
            .partition(partition_of(id, self.partitions))
            .key(&key)
            .payload(&value);
        let delivery = self.producer.send_result(sent).map_err(|(e, _)| e)?;
        Ok(async move {
            match delivery.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((e, _))) => Err(e.into()),
                Err(_) => Err(KafkaError::Canceled.into()),
            }
        })
    }

    /// Forgets task `id`: a tombstone on each of its keys, which compaction then removes
    /// with everything before it.
    pub async fn forget(&self, id: &str) -> Result<(), StoreError> {
        for fact in TaskFact::ALL {
            self.send(id, &fact.key(id), None).await?;
        }
        Ok(())
    }

    async fn send(&self, id: &str, key: &str, value: Option<&[u8]>) -> Result<(), StoreError> {
        let mut record = FutureRecord::<str, [u8]>::to(&self.topic)
            .partition(partition_of(id, self.partitions))
            .key(key);
        record.payload = value;
        self.producer
            .send(record, Timeout::After(WRITE_TIMEOUT))
            .await
            .map_err(|(e, _)| e)?;
        Ok(())
    }
}
