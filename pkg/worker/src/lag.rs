//! `kafka-worker lag`: how far the consumer group is behind, per partition and in
//! total, and how many worker replicas that calls for — so that
//! `kubectl scale deployment kafka-worker --replicas=$(kafka-worker lag --replicas)`
//! scales on the same figure KEDA's Kafka scaler uses. With `JOB_SOURCE=redis`, the
//! figure is the stream group's undelivered plus pending entries.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use redis::streams::StreamInfoGroupsReply;

use crate::config::WorkerSettings;

/// How long one broker request may take before the command gives up.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum LagError {
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("topic {topic:?} does not exist on {brokers} (KAFKA_TOPIC)")]
    NoTopic { topic: String, brokers: String },
    #[error("consumer group {group:?} does not exist on {brokers} (MCP_CONSUMER_GROUP): no member has joined it and it has committed nothing")]
    NoGroup { group: String, brokers: String },
    #[error("Redis at REDIS_URL: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis did not answer within {0:?} (REDIS_URL)")]
    RedisTimeout(Duration),
    #[error("stream {stream:?} does not exist (REDIS_STREAM)")]
    NoStream { stream: String },
    #[error("consumer group {group:?} does not exist on stream {stream:?} (MCP_CONSUMER_GROUP): no worker has started on it")]
    NoStreamGroup { group: String, stream: String },
    #[error("Redis cannot tell how many entries of {stream:?} group {group:?} has yet to read: entries were deleted from the stream, or the group's position was set without ENTRIESREAD")]
    StreamLagUnknown { group: String, stream: String },
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

/// How `--replicas` turns lag into a replica count.
#[derive(Debug, Clone, Copy)]
pub struct ScalePolicy {
    /// Lag one replica is expected to keep up with.
    pub lag_per_replica: u64,
    pub min_replicas: u32,
    pub max_replicas: u32,
}

impl ScalePolicy {
    /// `clamp(ceil(total_lag / lag_per_replica), min, min(max, partitions))`: more
    /// replicas than partitions would sit idle, since a partition has one consumer.
    /// `partitions` is `None` for a Redis stream, whose group feeds any number.
    pub fn replicas(&self, total_lag: i64, partitions: Option<usize>) -> u32 {
        let wanted = (total_lag.max(0) as u64).div_ceil(self.lag_per_replica.max(1));
        let ceiling = self
            .max_replicas
            .min(partitions.map_or(u32::MAX, |p| u32::try_from(p).unwrap_or(u32::MAX)));
        let wanted = u32::try_from(wanted).unwrap_or(u32::MAX);
        wanted.min(ceiling).max(self.min_replicas)
    }
}

/// Reads the group's committed offsets and the partitions' start and end offsets.
pub fn group_lag(settings: &WorkerSettings) -> Result<GroupLag, LagError> {
    let consumer: BaseConsumer = settings
        .kafka_config(&[
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
        return Err(LagError::NoTopic {
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
        return Err(LagError::NoGroup {
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
        .collect::<Result<Vec<_>, LagError>>()?;
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

/// How far a Redis Streams consumer group is behind (`JOB_SOURCE=redis`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamBacklog {
    pub stream: String,
    pub group: String,
    /// Entries never delivered to the group.
    pub undelivered: u64,
    /// Entries delivered but not acknowledged: running, or left by a worker that died.
    pub pending: u64,
}

impl StreamBacklog {
    /// Work not yet done, as Kafka's lag counts it from the committed offset: what is
    /// running is still behind.
    pub fn total(&self) -> i64 {
        i64::try_from(self.undelivered + self.pending).unwrap_or(i64::MAX)
    }
}

/// What `kafka-worker lag` prints for a stream.
impl std::fmt::Display for StreamBacklog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "stream {}, group {}", self.stream, self.group)?;
        writeln!(f, "undelivered {}", self.undelivered)?;
        writeln!(f, "pending {}", self.pending)?;
        write!(f, "total lag {}", self.total())
    }
}

/// Reads the group's lag and pending count from `XINFO GROUPS` (Redis 7 or later).
pub async fn stream_backlog(settings: &WorkerSettings) -> Result<StreamBacklog, LagError> {
    let redis = &settings.redis;
    let groups = tokio::time::timeout(TIMEOUT, async {
        let client = redis::Client::open(redis.url.as_str())?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::AsyncCommands::xinfo_groups::<_, StreamInfoGroupsReply>(
            &mut connection,
            &redis.stream,
        )
        .await
    })
    .await
    .map_err(|_| LagError::RedisTimeout(TIMEOUT))?
    .map_err(|e| {
        if e.to_string().contains("no such key") {
            LagError::NoStream {
                stream: redis.stream.clone(),
            }
        } else {
            LagError::Redis(e)
        }
    })?;
    let group = groups
        .groups
        .into_iter()
        .find(|g| g.name == settings.group)
        .ok_or_else(|| LagError::NoStreamGroup {
            group: settings.group.clone(),
            stream: redis.stream.clone(),
        })?;
    let undelivered = group.lag.ok_or_else(|| LagError::StreamLagUnknown {
        group: settings.group.clone(),
        stream: redis.stream.clone(),
    })?;
    Ok(StreamBacklog {
        stream: redis.stream.clone(),
        group: group.name,
        undelivered: undelivered as u64,
        pending: group.pending as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_follow_lag_within_bounds() {
        let policy = ScalePolicy {
            lag_per_replica: 100,
            min_replicas: 1,
            max_replicas: 10,
        };
        assert_eq!(policy.replicas(0, Some(6)), 1, "never below the minimum");
        assert_eq!(policy.replicas(1, Some(6)), 1);
        assert_eq!(policy.replicas(250, Some(6)), 3, "rounded up");
        assert_eq!(
            policy.replicas(10_000, Some(6)),
            6,
            "no more than partitions"
        );
        assert_eq!(
            policy.replicas(10_000, Some(60)),
            10,
            "no more than the maximum"
        );
        assert_eq!(
            policy.replicas(550, None),
            6,
            "a stream caps nothing but the maximum"
        );
        let idle = ScalePolicy {
            min_replicas: 0,
            ..policy
        };
        assert_eq!(idle.replicas(0, Some(6)), 0, "scale to zero when allowed");
    }

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
