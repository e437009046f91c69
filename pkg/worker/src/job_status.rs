//! Every job's status on the status topic ([`mcp_jobs_contract::status`]), for the
//! console's Now page. A status is handed to the producer as the job goes, without
//! waiting (the producer is idempotent: one job's records, all on one partition, land
//! in the order they were handed over); the tombstone that ends it is awaited next to
//! the outcome, so a job whose offset may be committed is no longer shown in flight.

use mcp_jobs_contract::status::JobStatus;
use mcp_jobs_contract::JsonRecord;
use mcp_jobs_kafka::topic::partition_count;
use mcp_jobs_kafka::KafkaSettings;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::{FutureProducer, FutureRecord};

pub struct StatusReporter {
    producer: FutureProducer,
    topic: String,
}

impl StatusReporter {
    /// The reporter writing with `producer`, if the status topic exists (`create-topics`
    /// makes it; it is not created on first use, which would make it without
    /// compaction). Without it no status is written, and the console shows no job as
    /// running.
    pub fn if_topic_exists(
        settings: &KafkaSettings,
        producer: &FutureProducer,
        metadata: &BaseConsumer,
    ) -> Option<Self> {
        let topic = &settings.status_topic;
        match partition_count(metadata, topic) {
            Ok(_) => Some(Self {
                producer: producer.clone(),
                topic: topic.clone(),
            }),
            Err(e) => {
                tracing::info!(%topic, reason = %e, "no status topic: the jobs in flight are not reported");
                None
            }
        }
    }

    /// Tells where job `job_id` is now; does not wait.
    pub fn progress(&self, job_id: &str, status: &JobStatus) {
        let value = status.to_record();
        let record = FutureRecord::to(&self.topic).key(job_id).payload(&value);
        match self.producer.send_result(record) {
            Ok(delivery) => {
                let job_id = job_id.to_owned();
                tokio::spawn(async move {
                    if let Ok(Err((e, _))) = delivery.await {
                        tracing::warn!(job_id, error = %e, "could not report the job's status");
                    }
                });
            }
            Err((e, _)) => tracing::warn!(job_id, error = %e, "could not report the job's status"),
        }
    }

    /// Tells that job `job_id` is no longer in flight (its outcome is being written);
    /// returns once the broker has it, or has refused it.
    pub async fn ended(&self, job_id: &str) {
        let record: FutureRecord<'_, str, [u8]> = FutureRecord::to(&self.topic).key(job_id);
        let written = match self.producer.send_result(record) {
            Ok(delivery) => match delivery.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((e, _))) => Err(e.to_string()),
                Err(cancelled) => Err(cancelled.to_string()),
            },
            Err((e, _)) => Err(e.to_string()),
        };
        if let Err(e) = written {
            tracing::warn!(job_id, error = %e, "could not clear the job's status: the console may show it in flight until it runs again");
        }
    }
}
