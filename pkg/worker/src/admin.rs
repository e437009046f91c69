//! `kafka-worker create-topics`: creates the jobs, results and dead-letter topics.
//! Idempotent, so the quick start, compose and CI can run it every time.

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

/// Creates the three topics; one that exists already is left as it is. Returns the
/// names of those it created.
pub async fn create_topics(
    settings: &WorkerSettings,
    partitions: i32,
    replication: i32,
) -> Result<Vec<String>, AdminError> {
    let admin: AdminClient<DefaultClientContext> = settings.kafka_config(&[]).create()?;
    let names = [
        &settings.topic,
        &settings.results_topic,
        &settings.dlq_topic,
    ];
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(replication)))
        .collect();
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
