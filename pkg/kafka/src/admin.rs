//! `kafka-worker create-topics`: creates the jobs, results and dead-letter topics, the
//! scheduler's two compacted topics (schedules: one partition, whose owner is the
//! active dispatcher; delayed jobs, keyed by jobID) and the console's compacted ledger
//! (one partition), the compacted tasks topic (durable MCP tasks, keyed by task id) and
//! the compacted status topic (the jobs in flight, keyed by jobID).
//! Idempotent, so the quick start, compose and CI can run it every
//! time; and it checks the topics that were there already ([`check_topics`]): one made
//! by hand or auto-created by the broker may lack what mcp-jobs relies on.

use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, NewTopic, OwnedResourceSpecifier, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

use crate::settings::KafkaSettings;

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

/// Creates the eight topics; one that exists already is left as it is. Returns the
/// names of those it created.
pub async fn create_topics(
    settings: &KafkaSettings,
    partitions: i32,
    replication: i32,
) -> Result<Vec<String>, AdminError> {
    create(settings, &layout(settings, partitions), replication).await
}

/// Creates the console's ledger topic unless it exists (the console does at start, so
/// that it runs where `create-topics` was not run since it was added).
pub async fn create_console_topic(settings: &KafkaSettings) -> Result<(), AdminError> {
    let [.., console] = layout(settings, 1);
    // -1: the broker's default replication factor.
    create(settings, &[console], -1).await.map(drop)
}

async fn create(
    settings: &KafkaSettings,
    wanted: &[Wanted<'_>],
    replication: i32,
) -> Result<Vec<String>, AdminError> {
    let admin: AdminClient<DefaultClientContext> = settings.producer_config(&[]).create()?;
    let room: Vec<Option<String>> = wanted
        .iter()
        .map(|w| w.created_with_room.map(|bytes| bytes.to_string()))
        .collect();
    let topics: Vec<NewTopic<'_>> = wanted
        .iter()
        .zip(&room)
        .map(|(want, room)| {
            let mut topic = NewTopic::new(
                want.topic,
                want.partitions,
                TopicReplication::Fixed(replication),
            );
            if want.compacted {
                topic = topic.set("cleanup.policy", "compact");
            }
            if let Some(room) = room {
                topic = topic.set("max.message.bytes", room);
            }
            topic
        })
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

/// What a topic must be for mcp-jobs to rely on it.
struct Wanted<'a> {
    topic: &'a str,
    /// Why the topic is there, as a person would say it.
    role: &'static str,
    /// At least this many partitions (or exactly, with `exactly`).
    partitions: i32,
    exactly: bool,
    compacted: bool,
    /// Records up to this size must be accepted (`max.message.bytes`).
    records_up_to: Option<(usize, &'static str)>,
    /// Created with `max.message.bytes` this large (the broker's default otherwise).
    created_with_room: Option<usize>,
}

/// Every topic of a deployment, as mcp-jobs needs it: what `create-topics` makes and
/// what it checks.
fn layout(settings: &KafkaSettings, partitions: i32) -> [Wanted<'_>; 8] {
    let result_bytes = Some((settings.limits.outcome_bytes, "RESULT_MAX_BYTES"));
    let job_bytes = Some((settings.limits.job_bytes, "MAX_MESSAGE_BYTES"));
    [
        Wanted {
            topic: &settings.topic,
            role: "the jobs topic",
            partitions,
            exactly: false,
            compacted: false,
            records_up_to: job_bytes,
            created_with_room: None,
        },
        Wanted {
            topic: &settings.results_topic,
            role: "the results topic",
            partitions,
            exactly: false,
            compacted: false,
            records_up_to: result_bytes,
            created_with_room: None,
        },
        Wanted {
            topic: &settings.dlq_topic,
            role: "the dead-letter topic",
            partitions,
            exactly: false,
            compacted: false,
            records_up_to: result_bytes,
            created_with_room: None,
        },
        Wanted {
            topic: &settings.schedules_topic,
            role: "the schedules topic (its one partition elects the dispatcher)",
            partitions: 1,
            exactly: true,
            compacted: true,
            records_up_to: None,
            created_with_room: None,
        },
        Wanted {
            topic: &settings.delayed_topic,
            role: "the delayed-jobs topic (a job waits there until it is due)",
            partitions,
            exactly: false,
            compacted: true,
            records_up_to: job_bytes,
            // A delayed job must fit where it waits, with room for its headers.
            created_with_room: Some(settings.limits.job_bytes + 64 * 1024),
        },
        keyed(
            &settings.tasks_topic,
            "the tasks topic (durable MCP tasks: owner, status, cancellation)",
            partitions,
        ),
        keyed(
            &settings.status_topic,
            "the status topic (the jobs in flight, for the console)",
            partitions,
        ),
        Wanted {
            topic: &settings.console_topic,
            role: "the console's ledger",
            partitions: 1,
            exactly: true,
            compacted: true,
            records_up_to: None,
            created_with_room: None,
        },
    ]
}

/// A compacted topic of small records keyed by job or task id.
fn keyed<'a>(topic: &'a str, role: &'static str, partitions: i32) -> Wanted<'a> {
    Wanted {
        topic,
        role,
        partitions,
        exactly: false,
        compacted: true,
        records_up_to: None,
        created_with_room: None,
    }
}

/// Checks the deployment's topics as they are: partitions, `cleanup.policy` and
/// `max.message.bytes` where mcp-jobs relies on them. Each problem names the topic, what
/// is wrong and how to fix it; none when all is well.
pub async fn check_topics(
    settings: &KafkaSettings,
    partitions: i32,
) -> Result<Vec<String>, AdminError> {
    let admin: AdminClient<DefaultClientContext> = settings.producer_config(&[]).create()?;
    let wanted = layout(settings, partitions);
    let metadata = tokio::task::block_in_place(|| {
        admin.inner().fetch_metadata(None, Duration::from_secs(30))
    })?;
    let counts: std::collections::HashMap<&str, i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| {
            (
                t.name(),
                i32::try_from(t.partitions().len()).unwrap_or(i32::MAX),
            )
        })
        .collect();
    let specifiers: Vec<ResourceSpecifier<'_>> = wanted
        .iter()
        .filter(|w| counts.contains_key(w.topic))
        .map(|w| ResourceSpecifier::Topic(w.topic))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let mut configs: std::collections::HashMap<String, (Option<String>, Option<usize>)> =
        Default::default();
    for described in admin.describe_configs(&specifiers, &options).await? {
        let Ok(resource) = described else { continue };
        let OwnedResourceSpecifier::Topic(name) = &resource.specifier else {
            continue;
        };
        let entries = resource.entry_map();
        let value = |key: &str| entries.get(key).and_then(|e| e.value.clone());
        configs.insert(
            name.clone(),
            (
                value("cleanup.policy"),
                value("max.message.bytes").and_then(|v| v.parse().ok()),
            ),
        );
    }
    let mut problems = Vec::new();
    for want in &wanted {
        let topic = want.topic;
        let Some(&count) = counts.get(topic) else {
            problems.push(format!("{topic} ({}) does not exist", want.role));
            continue;
        };
        if want.exactly && count != want.partitions {
            problems.push(format!(
                "{topic} ({}) has {count} partitions, but must have exactly {}: delete it and run create-topics again",
                want.role, want.partitions
            ));
        } else if !want.exactly && count < want.partitions {
            problems.push(format!(
                "{topic} ({}) has {count} partitions, fewer than the {} asked for: add partitions \
                 (kafka-topics.sh --alter --topic {topic} --partitions {}) or ask for {count}",
                want.role, want.partitions, want.partitions
            ));
        }
        let (policy, max_bytes) = configs.get(topic).cloned().unwrap_or_default();
        let compacted = policy.as_deref().is_some_and(|p| p.contains("compact"));
        if want.compacted && !compacted {
            problems.push(format!(
                "{topic} ({}) has cleanup.policy={}, but must be compacted: records past its retention \
                 would be lost (kafka-configs.sh --alter --entity-type topics --entity-name {topic} \
                 --add-config cleanup.policy=compact)",
                want.role,
                policy.as_deref().unwrap_or("?")
            ));
        }
        if let (Some((needed, setting)), Some(max_bytes)) = (want.records_up_to, max_bytes) {
            if max_bytes < needed {
                problems.push(format!(
                    "{topic} ({}) takes records of at most {max_bytes} bytes (max.message.bytes), \
                     but {setting} is {needed}: raise it (kafka-configs.sh --alter --entity-type topics \
                     --entity-name {topic} --add-config max.message.bytes={needed}) or lower {setting}",
                    want.role
                ));
            }
        }
    }
    Ok(problems)
}

/// A client that keeps quiet: whether the brokers answer is the caller's to report,
/// once, not librdkafka's to log on every retry.
struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, _: rdkafka::config::RDKafkaLogLevel, _: &str, _: &str) {}
    fn error(&self, _: KafkaError, _: &str) {}
}

impl ConsumerContext for Quiet {}

/// Whether the brokers answer a metadata request within `timeout`: what a command an
/// operator waits for checks first, so a broker that is down is one clear error in
/// bounded time, not a hang and a screen of retries.
pub fn reachable(settings: &KafkaSettings, timeout: Duration) -> Result<(), KafkaError> {
    let client: BaseConsumer<Quiet> = settings
        .consumer_config(&[("group.id", "kafka-worker-cli")])
        .create_with_context(Quiet)?;
    client.fetch_metadata(None, timeout).map(|_| ())
}
