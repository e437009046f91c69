//! Reading topics outside any consumer group, as the operators' tools do: chosen
//! partitions from chosen offsets to their end, bounded. The scheduler loads its topics
//! this way; the dead-letter commands read and replay from bounded slices.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::settings::KafkaSettings;

/// The context of consumers that read to the end of partitions: they ask to hear of
/// each end, which librdkafka also reports as a client error; that is not worth a log
/// line.
#[derive(Default)]
pub struct Reader;

impl ClientContext for Reader {
    fn error(&self, error: KafkaError, reason: &str) {
        let end_of_partition = matches!(error, KafkaError::PartitionEOF(_))
            || error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF);
        if !end_of_partition {
            tracing::error!(error = %error, reason, "librdkafka");
        }
    }
}

impl ConsumerContext for Reader {}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("reading {topic}: no answer from the broker within {waited:?}")]
    Timeout { topic: String, waited: Duration },
    #[error("the topic {0} does not exist: create it with `kafka-worker create-topics`")]
    NoTopic(String),
}

/// A consumer for [`read_range`]: outside any group (`group` only names it to the
/// broker), committing nothing, seeing committed records only. It does not wait at a
/// partition's end for more (a bounded read stops there), so a reader used again for
/// another range starts fetching at once instead of after its last long poll.
pub fn reader(settings: &KafkaSettings, group: &str) -> Result<BaseConsumer<Reader>, KafkaError> {
    outside_group(settings, group, "10")
}

/// Like [`reader`], for reading single records by their place (a result record a
/// durable task points at): the record is there, so a fetch never waits at the broker.
/// (A fetch right after an assignment waits its full `fetch.wait.max.ms` even when the
/// record is there: 10 ms a read with [`reader`]'s setting, 1.4 ms with this one.)
pub fn record_reader(
    settings: &KafkaSettings,
    group: &str,
) -> Result<BaseConsumer<Reader>, KafkaError> {
    outside_group(settings, group, "1")
}

/// Like [`reader`], for following a topic as it grows: it waits at the end for new
/// records (up to 500 ms a fetch) instead of asking again and again.
pub fn follower(settings: &KafkaSettings, group: &str) -> Result<BaseConsumer<Reader>, KafkaError> {
    outside_group(settings, group, "500")
}

fn outside_group(
    settings: &KafkaSettings,
    group: &str,
    fetch_wait_ms: &str,
) -> Result<BaseConsumer<Reader>, KafkaError> {
    settings
        .consumer_config(&[
            ("group.id", group),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", "true"),
            ("isolation.level", "read_committed"),
            ("fetch.wait.max.ms", fetch_wait_ms),
        ])
        .create_with_context(Reader)
}

/// How long a read may go without hearing from the broker.
const QUIET_LIMIT: Duration = Duration::from_secs(30);

/// The number of partitions of `topic`; an error naming it when it does not exist.
pub fn partition_count<C: ConsumerContext>(
    consumer: &impl Consumer<C>,
    topic: &str,
) -> Result<i32, ReadError> {
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    if partitions == 0 {
        return Err(ReadError::NoTopic(topic.to_owned()));
    }
    Ok(i32::try_from(partitions).unwrap_or(i32::MAX))
}

/// Where each partition of `topic` holds its first record at or after `time`
/// (its end when there is none).
pub fn offsets_at(
    consumer: &BaseConsumer<Reader>,
    topic: &str,
    time: DateTime<Utc>,
) -> Result<Vec<(i32, Offset)>, ReadError> {
    let mut wanted = TopicPartitionList::new();
    for partition in 0..partition_count(consumer, topic)? {
        wanted.add_partition_offset(topic, partition, Offset::Offset(time.timestamp_millis()))?;
    }
    let found = consumer.offsets_for_times(wanted, Duration::from_secs(10))?;
    Ok(found
        .elements()
        .iter()
        .map(|e| (e.partition(), e.offset()))
        .collect())
}

/// Where each partition of `topic` holds its `count`-th newest record (its beginning
/// when it holds fewer).
pub fn offsets_before_end(
    consumer: &BaseConsumer<Reader>,
    topic: &str,
    count: usize,
) -> Result<Vec<(i32, Offset)>, ReadError> {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    (0..partition_count(consumer, topic)?)
        .map(|partition| {
            let (low, high) =
                consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
            Ok((
                partition,
                Offset::Offset(low.max(high.saturating_sub(count))),
            ))
        })
        .collect()
}

/// Every partition of `topic` from its beginning.
pub fn from_beginning(
    consumer: &BaseConsumer<Reader>,
    topic: &str,
) -> Result<Vec<(i32, Offset)>, ReadError> {
    Ok((0..partition_count(consumer, topic)?)
        .map(|partition| (partition, Offset::Beginning))
        .collect())
}

/// Reads the partitions of `topic` from the given offsets to their end, at most
/// `max_per_partition` records of each, handing every record to `each`. The consumer
/// must have `enable.partition.eof=true`. Returns how many records were read.
pub fn read_range(
    consumer: &BaseConsumer<Reader>,
    topic: &str,
    starts: &[(i32, Offset)],
    max_per_partition: usize,
    mut each: impl FnMut(&BorrowedMessage<'_>),
) -> Result<usize, ReadError> {
    let mut assignment = TopicPartitionList::new();
    let mut open = HashSet::new();
    for &(partition, offset) in starts {
        // An end offset: nothing to read there.
        if offset != Offset::End {
            assignment.add_partition_offset(topic, partition, offset)?;
            open.insert(partition);
        }
    }
    consumer.assign(&assignment)?;
    let read = read_assigned(consumer, topic, open, max_per_partition, &mut each);
    // A reader left assigned would go on fetching (and buffering) what nobody reads.
    consumer.unassign()?;
    read
}

/// [`read_range`]'s reading, once its partitions are assigned.
fn read_assigned(
    consumer: &BaseConsumer<Reader>,
    topic: &str,
    mut open: HashSet<i32>,
    max_per_partition: usize,
    each: &mut impl FnMut(&BorrowedMessage<'_>),
) -> Result<usize, ReadError> {
    let mut read: std::collections::HashMap<i32, usize> = std::collections::HashMap::new();
    let mut heard = Instant::now();
    while !open.is_empty() {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => {
                heard = Instant::now();
                let partition = rdkafka::Message::partition(&message);
                if !open.contains(&partition) {
                    continue;
                }
                each(&message);
                let count = read.entry(partition).or_default();
                *count += 1;
                if *count >= max_per_partition {
                    open.remove(&partition);
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                heard = Instant::now();
                open.remove(&partition);
            }
            Some(Err(e)) => tracing::debug!(topic, error = %e, "reading a topic"),
            None if heard.elapsed() > QUIET_LIMIT => {
                return Err(ReadError::Timeout {
                    topic: topic.to_owned(),
                    waited: QUIET_LIMIT,
                })
            }
            None => {}
        }
    }
    Ok(read.values().sum())
}
