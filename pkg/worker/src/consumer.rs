//! The Kafka loop, in the spirit of rust-rdkafka's at-least-once example: a message's
//! offset is stored only after its outcome records are acknowledged by the broker, and
//! librdkafka commits stored offsets in the background (and once more at shutdown).
//! A crash at any point therefore repeats at most the message in hand; it never loses one.

use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::Message;
use tokio_util::sync::CancellationToken;

use crate::config::WorkerSettings;
use crate::outcome::{Outcome, Source, Status};
use crate::retry::infrastructure_backoff;
use crate::runner::JobRunner;
use crate::tool_client::ToolClient;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("Kafka client setup failed: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// Consumes until `shutdown` is cancelled, then lets the job in hand finish within the
/// grace period, commits what is done and leaves the group.
pub async fn run(settings: WorkerSettings, shutdown: CancellationToken) -> Result<(), WorkerError> {
    let consumer: StreamConsumer = settings
        .kafka_config(&[
            ("group.id", &settings.group),
            ("client.id", &settings.worker_id),
            ("enable.auto.commit", "true"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
        ])
        .create()?;
    let producer: FutureProducer = settings
        .kafka_config(&[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "5"),
        ])
        .create()?;
    consumer.subscribe(&[settings.topic.as_str()])?;
    let runner = JobRunner::new(
        ToolClient::new(settings.server_url.clone(), settings.api_key.clone()),
        settings.job_timeout,
        settings.max_message_bytes,
        settings.retry_max_backoff,
        settings.worker_id.clone(),
    );
    let writer = OutcomeWriter {
        producer: &producer,
        settings: &settings,
    };
    tracing::info!(topic = %settings.topic, group = %settings.group, server = %settings.server_url, "kafka-worker started");

    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => break,
            received = consumer.recv() => match received {
                Ok(message) => message,
                Err(e) => {
                    tracing::warn!(error = %e, "receiving from Kafka failed; trying again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            },
        };
        let source = Source {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
        };
        let payload = message.payload().unwrap_or_default();
        let work = async {
            let outcome = runner.run(payload).await;
            writer
                .write(&outcome, payload, message.key(), &source)
                .await;
            outcome
        };
        tokio::pin!(work);
        let finished = tokio::select! {
            outcome = &mut work => Some(outcome),
            _ = shutdown.cancelled() => tokio::time::timeout(settings.shutdown_grace, &mut work).await.ok(),
        };
        let Some(outcome) = finished else {
            tracing::warn!(
                partition = source.partition,
                offset = source.offset,
                "shutdown grace period over: abandoning the job in hand; it will be redelivered"
            );
            break;
        };
        log_outcome(&outcome, &source);
        if let Err(e) = consumer.store_offset(&source.topic, source.partition, source.offset) {
            // The partition was revoked meanwhile: its new owner will redo the job.
            tracing::warn!(error = %e, partition = source.partition, offset = source.offset, "could not store offset");
        }
    }

    tracing::info!("kafka-worker stopping: committing finished work and leaving the group");
    if let Err(e) = tokio::task::block_in_place(|| consumer.commit_consumer_state(CommitMode::Sync))
    {
        // Nothing stored since the last commit gives "no offset": nothing is lost.
        tracing::debug!(error = %e, "final commit");
    }
    consumer.unsubscribe();
    Ok(())
}

fn log_outcome(outcome: &Outcome, source: &Source) {
    let job_id = outcome.job_id.as_deref().unwrap_or("(none)");
    match (&outcome.status, &outcome.error) {
        (Status::Failed, Some(error)) => tracing::warn!(
            job_id, partition = source.partition, offset = source.offset,
            kind = %error.kind, error = %error.message, "job failed; dead-lettered"
        ),
        _ => tracing::info!(
            job_id,
            partition = source.partition,
            offset = source.offset,
            "job succeeded"
        ),
    }
}

/// Writes outcome records, retrying until the broker acknowledges each.
struct OutcomeWriter<'a> {
    producer: &'a FutureProducer,
    settings: &'a WorkerSettings,
}

impl OutcomeWriter<'_> {
    async fn write(
        &self,
        outcome: &Outcome,
        original: &[u8],
        original_key: Option<&[u8]>,
        source: &Source,
    ) {
        let record = outcome.record();
        let result_key = outcome
            .job_id
            .as_deref()
            .map(str::as_bytes)
            .or(original_key);
        let result = self.deliver(&self.settings.results_topic, result_key, &record, &[]);
        if outcome.status == Status::Failed {
            let headers = outcome.dead_letter_headers(source);
            let dead_letter =
                self.deliver(&self.settings.dlq_topic, original_key, original, &headers);
            futures::join!(result, dead_letter);
        } else {
            result.await;
        }
    }

    async fn deliver(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: &[(&str, String)],
    ) {
        let mut delays = infrastructure_backoff(self.settings.retry_max_backoff);
        loop {
            let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).payload(payload);
            if let Some(key) = key {
                record = record.key(key);
            }
            if !headers.is_empty() {
                let owned = headers
                    .iter()
                    .fold(OwnedHeaders::new(), |all, (name, value)| {
                        all.insert(Header {
                            key: name,
                            value: Some(value.as_bytes()),
                        })
                    });
                record = record.headers(owned);
            }
            match self.producer.send(record, Timeout::Never).await {
                Ok(_) => return,
                Err((e, _)) => {
                    let delay = delays.next().unwrap_or(self.settings.retry_max_backoff);
                    tracing::warn!(topic, error = %e, retry_in = ?delay, "writing outcome failed, retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}
