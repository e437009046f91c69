//! The broker: the run's Apache Kafka (or one given by `KAFKA_TEST_BROKERS`), topics of
//! a test's own, producing and reading records.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::{wait_for, Outcome};

/// An Apache Kafka broker for the tests: the run's shared one when `KAFKA_TEST_BROKERS`
/// names it (scripts/test.sh starts one per run), else one of the handle's own, started
/// with scripts/kafka.sh and stopped on drop. Tests share the broker and nothing else:
/// each handle gives its topics and groups names of their own ([`Broker::name`]).
pub struct Broker {
    /// Held for its drop, which stops the broker.
    _own: Option<OwnBroker>,
    pub address: String,
    namespace: String,
    /// Replicas of the topics the tests create: one per node, at most three.
    replicas: i32,
}

/// A broker this handle started: its data directory, removed with it.
struct OwnBroker {
    dir: tempfile::TempDir,
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(kafka_script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

fn kafka_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka.sh")
}

impl Broker {
    pub fn start() -> Self {
        static HANDLES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let namespace = format!(
            "{}-{}",
            std::process::id(),
            HANDLES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        if let Ok(address) = std::env::var("KAFKA_TEST_BROKERS") {
            return Self {
                _own: None,
                address,
                namespace,
                replicas: 1,
            };
        }
        Self::start_own("start", namespace, 1)
    }

    /// Three Apache Kafka nodes on loopback, of this handle's own (scripts/kafka.sh
    /// cluster): internal topics replicated three times with `min.insync.replicas=2`.
    /// Topics created through [`Broker::create_topic`] get three replicas too.
    pub fn start_cluster() -> Self {
        Self::start_own("cluster", "cluster".into(), 3)
    }

    /// Runs `scripts/kafka.sh <command> DIR` for a broker (or cluster) of this handle's own.
    fn start_own(command: &str, namespace: String, replicas: i32) -> Self {
        let dir = tempfile::tempdir().expect("broker dir");
        let started = Command::new("bash")
            .arg(kafka_script())
            .arg(command)
            .arg(dir.path())
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("scripts/kafka.sh {command}: {e}"));
        assert!(
            started.status.success(),
            "starting Apache Kafka failed (scripts/kafka.sh {command})"
        );
        let address = String::from_utf8_lossy(&started.stdout).trim().to_owned();
        Self {
            _own: Some(OwnBroker { dir }),
            address,
            namespace,
            replicas,
        }
    }

    /// SIGKILL to node `id` of a cluster this handle started, as a crash would.
    pub fn kill_node(&self, id: i32) {
        self.node_command("node-kill", id);
    }

    /// Starts node `id` again (same data, same ports) and waits until it listens.
    pub fn restart_node(&self, id: i32) {
        self.node_command("node-start", id);
    }

    fn node_command(&self, command: &str, id: i32) {
        let own = self._own.as_ref().expect("a broker of this handle's own");
        let status = Command::new("bash")
            .arg(kafka_script())
            .arg(command)
            .arg(own.dir.path())
            .arg(id.to_string())
            .status()
            .expect("scripts/kafka.sh");
        assert!(status.success(), "kafka.sh {command} {id}");
    }

    /// The node that leads `partition` of `topic` now.
    pub fn leader(&self, topic: &str, partition: i32) -> i32 {
        let consumer: BaseConsumer = self.client_config().create().expect("consumer");
        wait_for(
            &format!("a leader of {topic}[{partition}]"),
            Duration::from_secs(60),
            || {
                let metadata = consumer
                    .fetch_metadata(Some(topic), Duration::from_secs(5))
                    .ok()?;
                let partitions = metadata.topics().first()?.partitions();
                let leader = partitions.iter().find(|p| p.id() == partition)?.leader();
                (leader >= 0).then_some(leader)
            },
        )
    }

    /// `base` made unique to this handle: a topic or group name no other test uses.
    pub fn name(&self, base: &str) -> String {
        format!("{base}-{}", self.namespace)
    }

    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.address);
        config
    }

    pub fn create_topic(&self, topic: &str, partitions: i32) {
        self.create_topic_with(topic, partitions, &[]);
    }

    /// Creates `topic` with topic-level `config` (e.g. `max.message.bytes`).
    pub fn create_topic_with(&self, topic: &str, partitions: i32, config: &[(&str, &str)]) {
        let admin: AdminClient<DefaultClientContext> =
            self.client_config().create().expect("admin client");
        let topics = [config.iter().fold(
            NewTopic::new(topic, partitions, TopicReplication::Fixed(self.replicas)),
            |new, (key, value)| new.set(key, value),
        )];
        // librdkafka's own threads drive admin futures: any executor will do.
        let results =
            futures::executor::block_on(admin.create_topics(&topics, &AdminOptions::new()))
                .expect("create_topics");
        for result in results {
            result.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
        }
    }

    /// Creates the jobs topic and its results and dead-letter topics, the scheduler's
    /// compacted topics (schedules: one partition; delayed jobs), the tasks topic and the
    /// status topic.
    pub fn create_job_topics(&self, topic: &str, partitions: i32) {
        self.create_job_topics_reporting(topic, partitions, true);
    }

    /// [`Self::create_job_topics`], with the status topic only if `status` (without it
    /// the workers report no job in flight: what that reporting costs is measured so).
    pub fn create_job_topics_reporting(&self, topic: &str, partitions: i32, status: bool) {
        self.create_topic(topic, partitions);
        self.create_topic(&format!("{topic}.results"), partitions);
        self.create_topic(&format!("{topic}.dlq"), partitions);
        let compacted = [("cleanup.policy", "compact")];
        self.create_topic_with(&format!("{topic}.schedules"), 1, &compacted);
        self.create_topic_with(&format!("{topic}.delayed"), partitions, &compacted);
        self.create_topic_with(&format!("{topic}.tasks"), partitions, &compacted);
        if status {
            self.create_topic_with(&format!("{topic}.status"), partitions, &compacted);
        }
    }

    /// Produces the records in order (the idempotent producer keeps it) and waits
    /// until the broker has them all. Records up to 16 MB leave the producer; the
    /// topic's own `max.message.bytes` decides what the broker takes.
    pub fn produce(&self, topic: &str, records: &[(Option<&str>, &[u8])]) {
        let producer: BaseProducer = self
            .client_config()
            .set("linger.ms", "0")
            .set("enable.idempotence", "true")
            .set("message.max.bytes", "16777216")
            .create()
            .expect("producer");
        for (key, payload) in records {
            let mut record = BaseRecord::<str, [u8]>::to(topic).payload(payload);
            if let Some(key) = key {
                record = record.key(key);
            }
            while let Err((e, returned)) = producer.send(record) {
                assert!(
                    matches!(
                        e,
                        rdkafka::error::KafkaError::MessageProduction(
                            rdkafka::types::RDKafkaErrorCode::QueueFull
                        )
                    ),
                    "enqueue: {e}"
                );
                producer.poll(Duration::from_millis(10));
                record = returned;
            }
            producer.poll(Duration::ZERO);
        }
        producer.flush(Duration::from_secs(30)).expect("flush");
    }

    /// Reads `topic` from the beginning (no group) until `count` records arrived.
    pub fn read(&self, topic: &str, count: usize, timeout: Duration) -> Vec<Record> {
        let (consumer, _) = self.reader(topic);
        let mut records = Vec::new();
        wait_for(&format!("{count} records on {topic}"), timeout, || {
            while let Some(received) = consumer.poll(Duration::from_millis(100)) {
                match received {
                    Ok(message) => records.push(Record::from(&message)),
                    Err(rdkafka::error::KafkaError::PartitionEOF(_)) => {}
                    Err(e) if is_transient(&e) => {}
                    Err(e) => panic!("reading {topic}: {e}"),
                }
            }
            (records.len() >= count).then_some(())
        });
        records
    }

    /// Everything on `topic` now: reads each partition from the beginning to its end.
    pub fn read_all(&self, topic: &str) -> Vec<Record> {
        let (consumer, partitions) = self.reader(topic);
        let mut records = Vec::new();
        let mut at_end = 0;
        // A partition whose leader died answers again once another is elected.
        let mut heard = Instant::now();
        while at_end < partitions {
            match consumer.poll(Duration::from_secs(1)) {
                Some(Ok(message)) => records.push(Record::from(&message)),
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => at_end += 1,
                Some(Err(e)) if is_transient(&e) => continue,
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                None if heard.elapsed() > Duration::from_secs(60) => {
                    panic!("reading {topic}: no answer from the broker for 60 s")
                }
                None => continue,
            }
            heard = Instant::now();
        }
        records
    }

    /// A consumer assigned to every partition of `topic` from the beginning, outside any
    /// group, reporting the end of each partition; and the partition count.
    pub fn reader(&self, topic: &str) -> (BaseConsumer, usize) {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", "e2e-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()
            .expect("consumer");
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        let mut assignment = TopicPartitionList::new();
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            assignment
                .add_partition_offset(topic, partition.id(), Offset::Beginning)
                .expect("assignment");
        }
        consumer.assign(&assignment).expect("assign");
        (consumer, assignment.count())
    }

    /// Produces `count` records to one partition.
    pub fn produce_to(&self, topic: &str, partition: i32, count: usize) {
        let producer: BaseProducer = self
            .client_config()
            .set("linger.ms", "0")
            .create()
            .expect("producer");
        for n in 0..count {
            let payload = format!("record {n}");
            producer
                .send(
                    BaseRecord::<(), str>::to(topic)
                        .partition(partition)
                        .payload(&payload),
                )
                .map_err(|(e, _)| e)
                .expect("enqueue");
        }
        producer.flush(Duration::from_secs(10)).expect("flush");
    }

    /// Commits `offsets` (partition, next offset to read) for `group`, as a consumer of
    /// that group would.
    pub fn commit(&self, group: &str, topic: &str, offsets: &[(i32, i64)]) {
        let consumer = self.group_consumer(group);
        let mut list = TopicPartitionList::new();
        for (partition, offset) in offsets {
            list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .expect("offset");
        }
        consumer
            .commit(&list, rdkafka::consumer::CommitMode::Sync)
            .expect("commit");
    }

    /// A consumer of `group` that never joins it: for reading and writing its offsets.
    fn group_consumer(&self, group: &str) -> BaseConsumer {
        self.client_config()
            .set("group.id", group)
            .create()
            .expect("consumer")
    }

    /// The group's committed offset of each partition of `topic` (`None`: nothing committed).
    pub fn committed(&self, group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
        let consumer = self.group_consumer(group);
        let mut list = TopicPartitionList::new();
        for partition in 0..partitions {
            list.add_partition(topic, partition);
        }
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(10))
            .expect("committed offsets");
        committed
            .elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(offset) => Some(offset),
                _ => None,
            })
            .collect()
    }
}

/// A consumer error that a node going away causes and librdkafka recovers from.
fn is_transient(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode::*;
    matches!(
        e.rdkafka_error_code(),
        Some(
            BrokerTransportFailure
                | AllBrokersDown
                | NotLeaderForPartition
                | LeaderNotAvailable
                | NotCoordinator
                | CoordinatorNotAvailable
        )
    )
}

/// A record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
    /// The record's timestamp (when it was produced), in ms since the epoch.
    pub timestamp_ms: Option<i64>,
}

impl<M: Message> From<&M> for Record {
    fn from(message: &M) -> Self {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| {
                        let value = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                        (h.key.to_owned(), value.unwrap_or_default())
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers,
            timestamp_ms: message.timestamp().to_millis(),
        }
    }
}

impl Record {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload)
            .unwrap_or_else(|e| panic!("record is not JSON ({e}): {self:?}"))
    }

    /// The record as a result record.
    pub fn outcome(&self) -> Outcome {
        Outcome::from_record(&self.payload)
            .unwrap_or_else(|e| panic!("not a result record ({e}): {self:?}"))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}
