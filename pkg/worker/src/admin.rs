//! `kafka-worker create-topics`: creates the jobs, results and dead-letter topics, the
//! scheduler's two compacted topics (schedules: one partition, whose owner is the
//! active dispatcher; delayed jobs, keyed by jobID) and the console's compacted ledger
//! (one partition). Idempotent, so the quick start, compose and CI can run it every
//! time.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::WorkerSettings;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("Kafka admin client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("creating topic {topic}: {code}")]
    Create {
        topic: String,
        code: RDKafkaErrorCode,
    },
}

/// Creates the six topics; one that exists already is left as it is. Returns the
/// names of those it created.
pub async fn create_topics<'a>(
    settings: &'a WorkerSettings,
    partitions: i32,
    replication: i32,
) -> Result<Vec<String>, AdminError> {
    let admin: AdminClient<DefaultClientContext> = settings.kafka_config(&[]).create()?;
    let topic = |name: &'a str, partitions: i32| {
        NewTopic::new(name, partitions, TopicReplication::Fixed(replication))
    };
    let compacted =
        |name: &'a str, partitions: i32| topic(name, partitions).set("cleanup.policy", "compact");
    let topics = [
        topic(&settings.topic, partitions),
        topic(&settings.results_topic, partitions),
        topic(&settings.dlq_topic, partitions),
        compacted(&settings.schedules_topic, 1),
        compacted(&settings.delayed_topic, partitions),
        compacted(&settings.console_topic, 1),
    ];
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let mut created = Vec::new();
    for result in admin.create_topics(&topics, &options).await? {
        match result {
            Ok(topic) => created.push(topic),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(AdminError::Create { topic, code }),
        }
    }
    Ok(created)
}
