//! A consumer group seen from outside: how far it is behind on its topic, per partition
//! and in total (the figure KEDA's Kafka scaler uses), and who its members are with
//! the partitions each holds.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::settings::KafkaSettings;

/// How long one broker request may take before the caller gives up.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("topic {topic:?} does not exist on {brokers} (KAFKA_TOPIC)")]
    NoTopic { topic: String, brokers: String },
    #[error("consumer group {group:?} does not exist on {brokers} (MCP_CONSUMER_GROUP): no member has joined it and it has committed nothing")]
    NoGroup { group: String, brokers: String },
}

/// One partition's position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub partition: i32,
    /// The group's committed offset (the next record it will read); `None` if it has
    /// committed nothing on this partition, in which case it starts at `start`.
    pub committed: Option<i64>,
    /// The oldest record still retained.
    pub start: i64,
    /// The offset the next produced record will get.
    pub end: i64,
}

impl PartitionLag {
    /// Records the group has yet to consume.
    pub fn lag(&self) -> i64 {
        (self.end - self.committed.unwrap_or(self.start).max(self.start)).max(0)
    }
}

#[derive(Debug, Clone)]
pub struct GroupLag {
    pub topic: String,
    pub group: String,
    pub partitions: Vec<PartitionLag>,
}

impl GroupLag {
    pub fn total(&self) -> i64 {
        self.partitions.iter().map(PartitionLag::lag).sum()
    }
}

/// The table `kafka-worker lag` prints.
impl std::fmt::Display for GroupLag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "topic {}, group {}", self.topic, self.group)?;
        writeln!(
            f,
            "{:>9} {:>12} {:>12} {:>12}",
            "partition", "committed", "end", "lag"
        )?;
        for p in &self.partitions {
            let committed = p.committed.map_or("-".to_owned(), |c| c.to_string());
            writeln!(
                f,
                "{:>9} {:>12} {:>12} {:>12}",
                p.partition,
                committed,
                p.end,
                p.lag()
            )?;
        }
        write!(f, "total lag {}", self.total())
    }
}

/// Reads the group's committed offsets and the partitions' start and end offsets.
pub fn group_lag(settings: &KafkaSettings) -> Result<GroupLag, GroupError> {
    let consumer: BaseConsumer = settings
        .consumer_config(&[
            ("group.id", &settings.group),
            ("enable.auto.commit", "false"),
        ])
        .create()?;
    let metadata = consumer.fetch_metadata(Some(&settings.topic), TIMEOUT)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == settings.topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(GroupError::NoTopic {
            topic: settings.topic.clone(),
            brokers: settings.brokers.clone(),
        });
    }
    let groups = consumer.fetch_group_list(Some(&settings.group), TIMEOUT)?;
    let known = groups
        .groups()
        .iter()
        .any(|g| g.name() == settings.group && g.state() != "Dead");
    let mut wanted = TopicPartitionList::new();
    for partition in &partitions {
        wanted.add_partition(&settings.topic, *partition);
    }
    let committed = consumer.committed_offsets(wanted, TIMEOUT)?;
    let committed_at = |partition: i32| match committed
        .find_partition(&settings.topic, partition)
        .map(|p| p.offset())
    {
        Some(Offset::Offset(offset)) => Some(offset),
        _ => None,
    };
    if !known && partitions.iter().all(|p| committed_at(*p).is_none()) {
        return Err(GroupError::NoGroup {
            group: settings.group.clone(),
            brokers: settings.brokers.clone(),
        });
    }
    let partitions = partitions
        .into_iter()
        .map(|partition| {
            let (start, end) = consumer.fetch_watermarks(&settings.topic, partition, TIMEOUT)?;
            Ok(PartitionLag {
                partition,
                committed: committed_at(partition),
                start,
                end,
            })
        })
        .collect::<Result<Vec<_>, GroupError>>()?;
    Ok(GroupLag {
        topic: settings.topic.clone(),
        group: settings.group.clone(),
        partitions,
    })
}

/// One member of a consumer group, as its coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub client_id: String,
    pub host: String,
    /// The partitions assigned to it, by topic (classic protocol assignments only).
    pub partitions: Vec<(String, i32)>,
}

/// The members of `group` (empty when it has none, or when the group runs the
/// consumer protocol, whose members the classic DescribeGroups does not list).
pub fn members<C: rdkafka::consumer::ConsumerContext>(
    consumer: &impl Consumer<C>,
    group: &str,
    timeout: Duration,
) -> Result<Vec<Member>, rdkafka::error::KafkaError> {
    let groups = consumer.fetch_group_list(Some(group), timeout)?;
    Ok(groups
        .groups()
        .iter()
        .filter(|g| g.name() == group)
        .flat_map(|g| g.members())
        .map(|m| Member {
            client_id: m.client_id().to_owned(),
            // The coordinator writes the address as Java prints it: `/10.0.0.7`.
            host: m.client_host().trim_start_matches('/').to_owned(),
            partitions: m.assignment().map(assigned_partitions).unwrap_or_default(),
        })
        .collect())
}

/// The partitions of a classic consumer-protocol assignment: version (i16), topic
/// count (i32), then per topic its name (i16 length, bytes) and partitions (i32
/// count, i32 each). What does not parse is left out.
fn assigned_partitions(assignment: &[u8]) -> Vec<(String, i32)> {
    struct Bytes<'a>(&'a [u8]);
    impl Bytes<'_> {
        fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
            let (head, rest) = self.0.split_first_chunk::<N>()?;
            self.0 = rest;
            Some(*head)
        }
        fn i32(&mut self) -> Option<i32> {
            self.take::<4>().map(i32::from_be_bytes)
        }
        fn string(&mut self) -> Option<String> {
            let len = usize::try_from(i16::from_be_bytes(self.take::<2>()?)).ok()?;
            let (name, rest) = self.0.split_at_checked(len)?;
            self.0 = rest;
            Some(String::from_utf8_lossy(name).into_owned())
        }
    }
    let mut bytes = Bytes(assignment);
    let mut partitions = Vec::new();
    let _version = bytes.take::<2>();
    let topics = bytes.i32().unwrap_or(0);
    for _ in 0..topics {
        let Some(topic) = bytes.string() else { break };
        let count = bytes.i32().unwrap_or(0);
        for _ in 0..count {
            let Some(partition) = bytes.i32() else { break };
            partitions.push((topic.clone(), partition));
        }
    }
    partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_assignments_decode_to_partitions() {
        let mut assignment = vec![0, 1, 0, 0, 0, 1, 0, 4];
        assignment.extend_from_slice(b"jobs");
        for value in [2i32, 0, 3] {
            assignment.extend_from_slice(&value.to_be_bytes());
        }
        assignment.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(
            assigned_partitions(&assignment),
            [("jobs".to_owned(), 0), ("jobs".to_owned(), 3)]
        );
        assert!(assigned_partitions(&[0, 1, 0]).is_empty());
        assert!(assigned_partitions(&[0, 1, 0, 0, 0, 1, 0, 9, b'x']).is_empty());
    }

    #[test]
    fn lag_counts_from_the_commit_or_the_oldest_record() {
        let at = |committed, start, end| PartitionLag {
            partition: 0,
            committed,
            start,
            end,
        };
        assert_eq!(at(Some(3), 0, 10).lag(), 7);
        assert_eq!(at(None, 4, 10).lag(), 6, "no commit: everything retained");
        assert_eq!(
            at(Some(2), 4, 10).lag(),
            6,
            "a commit before retention starts"
        );
        assert_eq!(at(Some(10), 0, 10).lag(), 0);
    }
}
