//! Where mcp-jobs' topics live and how its Kafka clients are configured, read from the
//! environment every process shares (`KAFKA_BROKERS`, `KAFKA_*_TOPIC`,
//! `MCP_CONSUMER_GROUP`, `RDKAFKA_*`), so the worker, the scheduler, the console and
//! mcp-server name the same topics the same way.

use std::collections::BTreeMap;

use mcp_jobs_env_config::{
    describe, from_prefixed_vars, from_vars, require_non_empty, require_positive, EnvError,
};
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The environment as envy reads it; field names are the variables, lowercased.
#[derive(Deserialize, Serialize)]
struct Env {
    kafka_brokers: Option<String>,
    #[serde(default = "default_topic")]
    kafka_topic: String,
    kafka_results_topic: Option<String>,
    kafka_dlq_topic: Option<String>,
    kafka_schedules_topic: Option<String>,
    kafka_delayed_topic: Option<String>,
    kafka_console_topic: Option<String>,
    kafka_tasks_topic: Option<String>,
    kafka_status_topic: Option<String>,
    #[serde(default = "default_group")]
    mcp_consumer_group: String,
    worker_id: Option<String>,
    hostname: Option<String>,
    #[serde(default = "default_max_message_bytes")]
    max_message_bytes: usize,
    #[serde(default = "default_result_max_bytes")]
    result_max_bytes: usize,
}

fn default_topic() -> String {
    "mcp-jobs".into()
}
fn default_group() -> String {
    "mcp-workers".into()
}
fn default_max_message_bytes() -> usize {
    1024 * 1024
}
/// Under the broker's default record limit (`message.max.bytes`, 1,048,588) and the
/// producer's (1,000,000), with room for the key, headers and batch overhead.
fn default_result_max_bytes() -> usize {
    900_000
}

/// The largest records mcp-jobs writes or accepts on its topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    /// The largest job message accepted (`MAX_MESSAGE_BYTES`).
    pub job_bytes: usize,
    /// The largest outcome record (result or dead letter) written (`RESULT_MAX_BYTES`);
    /// larger ones are cut to fit and marked.
    pub outcome_bytes: usize,
}

#[derive(Clone)]
pub struct KafkaSettings {
    /// Empty when no Kafka is configured (the Redis job source needs none).
    pub brokers: String,
    /// The jobs topic.
    pub topic: String,
    pub results_topic: String,
    pub dlq_topic: String,
    /// The compacted topic of schedule definitions and dispatcher state (one partition).
    pub schedules_topic: String,
    /// The compacted topic where jobs wait for their `scheduledAt`, keyed by jobID.
    pub delayed_topic: String,
    /// The console's compacted ledger: replays, logouts, submitted forms (one partition).
    pub console_topic: String,
    /// The compacted topic of durable MCP tasks, keyed by task id.
    pub tasks_topic: String,
    /// The compacted topic of the jobs in flight, keyed by jobID, for the console.
    pub status_topic: String,
    /// The workers' consumer group.
    pub group: String,
    /// This process to the brokers and in the records it writes (`WORKER_ID`, else
    /// `<HOSTNAME>-<pid>`).
    pub client_id: String,
    pub limits: RecordLimits,
    /// `RDKAFKA_SESSION_TIMEOUT_MS=6000` → `session.timeout.ms=6000`; applied last, so
    /// they override anything mcp-jobs sets.
    pub rdkafka_overrides: BTreeMap<String, String>,
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Override values may hold SASL passwords: only their names are shown.
        f.debug_struct("KafkaSettings")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("group", &self.group)
            .field("client_id", &self.client_id)
            .field(
                "rdkafka_overrides",
                &self.rdkafka_overrides.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl KafkaSettings {
    /// Its variables as `vars` set them, defaults filled in (`RDKAFKA_*` overrides
    /// aside: they may hold credentials).
    pub fn described(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<BTreeMap<String, Value>, EnvError> {
        describe::<Env>(vars, &[])
    }

    /// Reads the settings from the given variables; brokers may be absent (see
    /// [`Self::require_brokers`]).
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)> + Clone,
    ) -> Result<Self, EnvError> {
        let env: Env = from_vars(vars.clone())?;
        let rdkafka_overrides: BTreeMap<String, String> =
            from_prefixed_vars::<BTreeMap<String, String>>("RDKAFKA_", vars)?
                .into_iter()
                .map(|(name, value)| (name.to_lowercase().replace('_', "."), value))
                .collect();
        require_non_empty(&[
            ("KAFKA_TOPIC", &env.kafka_topic),
            ("MCP_CONSUMER_GROUP", &env.mcp_consumer_group),
        ])?;
        require_positive(&[("MAX_MESSAGE_BYTES", env.max_message_bytes as u64)])?;
        let topic = env.kafka_topic;
        let named =
            |set: Option<String>, suffix: &str| set.unwrap_or_else(|| format!("{topic}.{suffix}"));
        Ok(Self {
            brokers: env.kafka_brokers.unwrap_or_default(),
            results_topic: named(env.kafka_results_topic, "results"),
            dlq_topic: named(env.kafka_dlq_topic, "dlq"),
            schedules_topic: named(env.kafka_schedules_topic, "schedules"),
            delayed_topic: named(env.kafka_delayed_topic, "delayed"),
            console_topic: named(env.kafka_console_topic, "console"),
            tasks_topic: named(env.kafka_tasks_topic, "tasks"),
            status_topic: named(env.kafka_status_topic, "status"),
            topic,
            group: env.mcp_consumer_group,
            client_id: env.worker_id.unwrap_or_else(|| {
                format!(
                    "{}-{}",
                    env.hostname.as_deref().unwrap_or("kafka-worker"),
                    std::process::id()
                )
            }),
            limits: RecordLimits {
                job_bytes: env.max_message_bytes,
                outcome_bytes: env.result_max_bytes,
            },
            rdkafka_overrides,
        })
    }

    /// Fails naming `KAFKA_BROKERS` when no broker is configured.
    pub fn require_brokers(&self) -> Result<(), EnvError> {
        if self.brokers.trim().is_empty() {
            return Err(EnvError::Missing {
                name: "KAFKA_BROKERS".into(),
            });
        }
        Ok(())
    }

    /// Whether the group uses the consumer protocol of KIP-848
    /// (`RDKAFKA_GROUP_PROTOCOL=consumer`): the broker assigns partitions and keeps the
    /// session timeout (`group.consumer.session.timeout.ms`), with no stop-the-world
    /// rebalances.
    pub fn consumer_protocol(&self) -> bool {
        self.rdkafka_overrides
            .get("group.protocol")
            .map(String::as_str)
            == Some("consumer")
    }

    /// A consumer's librdkafka config: the brokers, `base` settings, then the operator's
    /// overrides. Under the consumer protocol the classic group settings are left out:
    /// the broker owns them, and librdkafka refuses them there.
    pub fn consumer_config(&self, base: &[(&str, &str)]) -> ClientConfig {
        let consumer_protocol = self.consumer_protocol();
        let classic = |key: &str| consumer_protocol && CLASSIC_GROUP_SETTINGS.contains(&key);
        self.config(base, |key| !classic(key), |key| !classic(key))
    }

    /// A producer's or an admin client's librdkafka config: as
    /// [`Self::consumer_config`], without the operator's overrides of consumer-only
    /// settings.
    pub fn producer_config(&self, base: &[(&str, &str)]) -> ClientConfig {
        self.config(base, |_| true, |key| !CONSUMER_ONLY_SETTINGS.contains(&key))
    }

    /// [`Self::producer_config`] for a writer whose caller waits on each write: acknowledged
    /// by every in-sync replica, idempotent (records to one partition keep their order),
    /// and sent at once (nothing to gain from lingering for a batch).
    pub fn acked_producer_config(&self) -> ClientConfig {
        self.producer_config(&[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("linger.ms", "0"),
        ])
    }

    fn config(
        &self,
        base: &[(&str, &str)],
        keep_base: impl Fn(&str) -> bool,
        keep_override: impl Fn(&str) -> bool,
    ) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        let base = base.iter().filter(|(key, _)| keep_base(key));
        let overrides = self
            .rdkafka_overrides
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .filter(|(key, _)| keep_override(key));
        for (key, value) in base.copied().chain(overrides) {
            config.set(key, value);
        }
        // rdkafka forwards only errors unless told otherwise; warnings matter here.
        config.set_log_level(rdkafka::config::RDKafkaLogLevel::Warning);
        config
    }
}

/// librdkafka settings only a consumer takes: an operator's override of one (the README
/// advises `RDKAFKA_SESSION_TIMEOUT_MS`) is not given to producers and admin clients,
/// which would warn on every start that they ignore it (`CONFWARN`).
const CONSUMER_ONLY_SETTINGS: &[&str] = &[
    "group.id",
    "group.instance.id",
    "group.protocol",
    "group.protocol.type",
    "group.remote.assignor",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "coordinator.query.interval.ms",
    "max.poll.interval.ms",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "fetch.wait.max.ms",
    "fetch.queue.backoff.ms",
    "fetch.message.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.max.bytes",
    "fetch.min.bytes",
    "fetch.error.backoff.ms",
    "isolation.level",
    "enable.partition.eof",
    "check.crcs",
    "consume.callback.max.messages",
];

/// Settings of the classic group protocol that the consumer protocol moves to the broker.
const CLASSIC_GROUP_SETTINGS: &[&str] = &[
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "partition.assignment.strategy",
    "group.protocol.type",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> KafkaSettings {
        KafkaSettings::from_vars(
            vars.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>(),
        )
        .expect("valid")
    }

    #[test]
    fn topics_are_named_after_the_jobs_topic_unless_set() {
        let defaults = settings(&[]);
        assert_eq!(defaults.topic, "mcp-jobs");
        assert_eq!(defaults.results_topic, "mcp-jobs.results");
        assert_eq!(defaults.dlq_topic, "mcp-jobs.dlq");
        assert_eq!(defaults.schedules_topic, "mcp-jobs.schedules");
        assert_eq!(defaults.delayed_topic, "mcp-jobs.delayed");
        assert_eq!(defaults.console_topic, "mcp-jobs.console");
        assert_eq!(defaults.limits.outcome_bytes, 900_000);
        assert_eq!(
            defaults.require_brokers().unwrap_err().to_string(),
            "KAFKA_BROKERS is not set"
        );
        let named = settings(&[("KAFKA_TOPIC", "jobs"), ("KAFKA_DLQ_TOPIC", "graveyard")]);
        assert_eq!(named.results_topic, "jobs.results");
        assert_eq!(named.dlq_topic, "graveyard");
    }

    #[test]
    fn overrides_win_and_consumer_only_ones_never_reach_a_producer() {
        let settings = settings(&[
            ("KAFKA_BROKERS", "k:9092"),
            ("RDKAFKA_SESSION_TIMEOUT_MS", "6000"),
            ("RDKAFKA_FETCH_WAIT_MAX_MS", "10"),
        ]);
        assert_eq!(settings.rdkafka_overrides["session.timeout.ms"], "6000");
        let consumer = settings.consumer_config(&[("session.timeout.ms", "45000")]);
        assert_eq!(consumer.get("session.timeout.ms"), Some("6000"));
        assert_eq!(consumer.get("fetch.wait.max.ms"), Some("10"));
        assert!(!settings.consumer_protocol());
        let producer = settings.producer_config(&[("acks", "all")]);
        assert_eq!(producer.get("session.timeout.ms"), None);
        assert_eq!(producer.get("fetch.wait.max.ms"), None);
        assert_eq!(producer.get("acks"), Some("all"));
        assert_eq!(producer.get("bootstrap.servers"), Some("k:9092"));
    }

    #[test]
    fn the_consumer_protocol_leaves_classic_group_settings_to_the_broker() {
        let settings = settings(&[
            ("KAFKA_BROKERS", "k:9092"),
            ("RDKAFKA_GROUP_PROTOCOL", "consumer"),
            ("RDKAFKA_SESSION_TIMEOUT_MS", "6000"),
        ]);
        assert!(settings.consumer_protocol());
        let config = settings.consumer_config(&[
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("group.id", "g"),
        ]);
        assert_eq!(config.get("group.protocol"), Some("consumer"));
        assert_eq!(config.get("group.id"), Some("g"));
        assert_eq!(config.get("session.timeout.ms"), None);
        assert_eq!(config.get("partition.assignment.strategy"), None);
    }

    #[test]
    fn the_debug_form_shows_no_override_value() {
        let settings = settings(&[("RDKAFKA_SASL_PASSWORD", "hunter2")]);
        let shown = format!("{settings:?}");
        assert!(shown.contains("sasl.password"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
