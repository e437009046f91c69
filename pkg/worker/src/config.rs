//! kafka-worker's settings, read with envy and validated at start: a missing or invalid
//! variable stops the worker with its name in the message.

use std::collections::BTreeMap;
use std::time::Duration;

use mcp_jobs_engine::fit::MIN_RECORD_BYTES;
use mcp_jobs_engine::runner::{JobRunner, RunnerSettings};
use mcp_jobs_engine::tool_client::ToolClient;
use mcp_jobs_env_config::{
    comma_separated, from_prefixed_vars, from_vars, require_non_empty, require_positive, EnvError,
};
use rdkafka::ClientConfig;
use serde::Deserialize;

/// The environment as envy reads it; field names are the variables, lowercased.
#[derive(Deserialize)]
struct Env {
    #[serde(default = "default_job_source")]
    job_source: String,
    kafka_brokers: Option<String>,
    #[serde(default = "default_topic")]
    kafka_topic: String,
    kafka_results_topic: Option<String>,
    kafka_dlq_topic: Option<String>,
    kafka_schedules_topic: Option<String>,
    kafka_delayed_topic: Option<String>,
    kafka_console_topic: Option<String>,
    #[serde(default = "default_scheduler_enabled")]
    scheduler_enabled: bool,
    #[serde(default = "default_delay_min_ms")]
    delay_min_ms: u64,
    #[serde(default = "default_group")]
    mcp_consumer_group: String,
    #[serde(default = "default_server_url")]
    mcp_server_url: String,
    mcp_api_key: Option<String>,
    #[serde(default = "default_job_timeout_ms")]
    job_timeout_ms: u64,
    #[serde(default = "default_concurrency")]
    worker_concurrency: u64,
    #[serde(default = "default_job_max_attempts")]
    job_max_attempts: u64,
    #[serde(default = "default_job_retry_backoff_ms")]
    job_retry_backoff_ms: u64,
    #[serde(default = "default_max_message_bytes")]
    max_message_bytes: usize,
    #[serde(default = "default_result_max_bytes")]
    result_max_bytes: usize,
    #[serde(default = "default_retry_max_backoff_ms")]
    retry_max_backoff_ms: u64,
    #[serde(default = "default_shutdown_grace_seconds")]
    shutdown_grace_seconds: u64,
    #[serde(default = "default_metrics_port")]
    metrics_port: u16,
    worker_id: Option<String>,
    hostname: Option<String>,
    #[serde(default = "default_redis_url")]
    redis_url: String,
    #[serde(default = "default_topic")]
    redis_stream: String,
    redis_results_stream: Option<String>,
    redis_dlq_stream: Option<String>,
    #[serde(default = "default_redis_claim_idle_ms")]
    redis_claim_idle_ms: u64,
    #[serde(default = "default_redis_max_deliveries")]
    redis_max_deliveries: u64,
}

fn default_job_source() -> String {
    "kafka".into()
}
fn default_redis_url() -> String {
    "redis://127.0.0.1:6379".into()
}
fn default_redis_claim_idle_ms() -> u64 {
    30_000
}
fn default_redis_max_deliveries() -> u64 {
    5
}
fn default_scheduler_enabled() -> bool {
    true
}
/// A job due sooner than this waits in its slot; a later one goes to the delayed topic.
fn default_delay_min_ms() -> u64 {
    2_000
}
fn default_topic() -> String {
    "mcp-jobs".into()
}
fn default_group() -> String {
    "mcp-workers".into()
}
fn default_server_url() -> String {
    "http://localhost:8080/mcp".into()
}
fn default_job_timeout_ms() -> u64 {
    60_000
}
fn default_concurrency() -> u64 {
    64
}
fn default_job_max_attempts() -> u64 {
    3
}
fn default_job_retry_backoff_ms() -> u64 {
    1_000
}
fn default_max_message_bytes() -> usize {
    1024 * 1024
}
/// Under the broker's default record limit (`message.max.bytes`, 1,048,588) and the
/// producer's (1,000,000), with room for the key, headers and batch overhead.
fn default_result_max_bytes() -> usize {
    900_000
}
fn default_retry_max_backoff_ms() -> u64 {
    30_000
}
fn default_shutdown_grace_seconds() -> u64 {
    25
}
fn default_metrics_port() -> u16 {
    9090
}

/// Where jobs come from (`JOB_SOURCE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobSource {
    Kafka,
    Redis,
}

/// The Redis Streams source's settings (`JOB_SOURCE=redis`).
#[derive(Debug, Clone)]
pub struct RedisSourceSettings {
    pub url: String,
    pub stream: String,
    pub results_stream: String,
    pub dlq_stream: String,
    /// Entries pending this long on a consumer are taken to be abandoned and claimed.
    pub claim_idle: Duration,
    /// An entry delivered this many times is dead-lettered instead of run again.
    pub max_deliveries: u64,
}

#[derive(Clone)]
pub struct WorkerSettings {
    pub source: JobSource,
    pub redis: RedisSourceSettings,
    pub brokers: String,
    pub topic: String,
    pub results_topic: String,
    pub dlq_topic: String,
    /// The compacted topic of schedule definitions and dispatcher state (one partition).
    pub schedules_topic: String,
    /// The compacted topic where jobs wait for their `scheduledAt`, keyed by jobID.
    pub delayed_topic: String,
    /// The console's compacted ledger: replays, logouts, submitted forms (one partition).
    pub console_topic: String,
    /// Whether `kafka-worker run` also runs the schedule dispatcher (`SCHEDULER_ENABLED`).
    pub scheduler_enabled: bool,
    /// A job due further ahead than this goes to the delayed topic; a nearer one waits
    /// in its slot, so no job runs early.
    pub delay_min: Duration,
    pub group: String,
    /// mcp-server replicas' Streamable HTTP endpoints (`/mcp` is added to a bare base URL).
    pub server_urls: Vec<String>,
    /// Sent as `Authorization: Bearer`; a secret, so kept out of Debug.
    pub api_key: Option<String>,
    /// Jobs running at once.
    pub concurrency: usize,
    pub runner: RunnerSettings,
    /// The largest outcome record (result or dead letter) the worker writes; larger
    /// ones are cut to fit and marked.
    pub result_max_bytes: usize,
    pub shutdown_grace: Duration,
    /// Where `/metrics`, `/health` and `/ready` are served.
    pub metrics_port: u16,
    /// `RDKAFKA_SESSION_TIMEOUT_MS=6000` → `session.timeout.ms=6000`; applied last, so
    /// they override anything the worker sets.
    pub rdkafka_overrides: BTreeMap<String, String>,
}

impl std::fmt::Debug for WorkerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerSettings")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("group", &self.group)
            .field("server_urls", &self.server_urls)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field(
                "rdkafka_overrides",
                &self.rdkafka_overrides.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("MCP_SERVER_URL entry {url:?} is not an http(s) URL: {reason}")]
    ServerUrl { url: String, reason: String },
    #[error("JOB_SOURCE={0:?}: the job sources are kafka (the default) and redis")]
    JobSource(String),
    #[error("RESULT_MAX_BYTES={0} is too small: at least {min} bytes are needed for a failed record and its markers", min = MIN_RECORD_BYTES)]
    ResultMaxBytes(usize),
}

impl WorkerSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads settings from the given variables instead of the process environment.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    ) -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let env: Env = from_vars(vars.iter().cloned())?;
        let rdkafka_overrides: BTreeMap<String, String> =
            from_prefixed_vars::<BTreeMap<String, String>>("RDKAFKA_", vars.iter().cloned())?
                .into_iter()
                .map(|(name, value)| (name.to_lowercase().replace('_', "."), value))
                .collect();

        let source = match env.job_source.trim() {
            "kafka" => JobSource::Kafka,
            "redis" => JobSource::Redis,
            other => return Err(ConfigError::JobSource(other.to_owned())),
        };
        // The Kafka source, `publish` and `lag` need brokers; the Redis source does not.
        let brokers = env.kafka_brokers.unwrap_or_default();
        if source == JobSource::Kafka && brokers.trim().is_empty() {
            return Err(EnvError::Missing {
                name: "KAFKA_BROKERS".into(),
            }
            .into());
        }
        require_non_empty(&[
            ("KAFKA_TOPIC", &env.kafka_topic),
            ("MCP_CONSUMER_GROUP", &env.mcp_consumer_group),
            ("REDIS_STREAM", &env.redis_stream),
        ])?;
        require_positive(&[
            ("JOB_TIMEOUT_MS", env.job_timeout_ms),
            ("WORKER_CONCURRENCY", env.worker_concurrency),
            ("JOB_MAX_ATTEMPTS", env.job_max_attempts),
            ("MAX_MESSAGE_BYTES", env.max_message_bytes as u64),
            ("RETRY_MAX_BACKOFF_MS", env.retry_max_backoff_ms),
            ("REDIS_CLAIM_IDLE_MS", env.redis_claim_idle_ms),
            ("REDIS_MAX_DELIVERIES", env.redis_max_deliveries),
        ])?;
        if env.result_max_bytes < MIN_RECORD_BYTES {
            return Err(ConfigError::ResultMaxBytes(env.result_max_bytes));
        }
        let server_urls = comma_separated(&env.mcp_server_url)
            .into_iter()
            .map(|url| mcp_endpoint(&url))
            .collect::<Result<Vec<_>, _>>()?;
        if server_urls.is_empty() {
            return Err(EnvError::Empty {
                name: "MCP_SERVER_URL",
            }
            .into());
        }
        let worker_id = env.worker_id.unwrap_or_else(|| {
            format!(
                "{}-{}",
                env.hostname.as_deref().unwrap_or("kafka-worker"),
                std::process::id()
            )
        });
        Ok(Self {
            source,
            redis: RedisSourceSettings {
                results_stream: env
                    .redis_results_stream
                    .unwrap_or_else(|| format!("{}.results", env.redis_stream)),
                dlq_stream: env
                    .redis_dlq_stream
                    .unwrap_or_else(|| format!("{}.dlq", env.redis_stream)),
                url: env.redis_url,
                stream: env.redis_stream,
                claim_idle: Duration::from_millis(env.redis_claim_idle_ms),
                max_deliveries: env.redis_max_deliveries,
            },
            results_topic: env
                .kafka_results_topic
                .unwrap_or_else(|| format!("{}.results", env.kafka_topic)),
            dlq_topic: env
                .kafka_dlq_topic
                .unwrap_or_else(|| format!("{}.dlq", env.kafka_topic)),
            schedules_topic: env
                .kafka_schedules_topic
                .unwrap_or_else(|| format!("{}.schedules", env.kafka_topic)),
            delayed_topic: env
                .kafka_delayed_topic
                .unwrap_or_else(|| format!("{}.delayed", env.kafka_topic)),
            console_topic: env
                .kafka_console_topic
                .unwrap_or_else(|| format!("{}.console", env.kafka_topic)),
            scheduler_enabled: env.scheduler_enabled,
            delay_min: Duration::from_millis(env.delay_min_ms),
            brokers,
            topic: env.kafka_topic,
            group: env.mcp_consumer_group,
            server_urls,
            api_key: env.mcp_api_key.filter(|k| !k.is_empty()),
            concurrency: usize::try_from(env.worker_concurrency).unwrap_or(usize::MAX),
            runner: RunnerSettings {
                job_timeout: Duration::from_millis(env.job_timeout_ms),
                max_attempts: u32::try_from(env.job_max_attempts).unwrap_or(u32::MAX),
                retry_backoff: Duration::from_millis(env.job_retry_backoff_ms),
                retry_max_backoff: Duration::from_millis(env.retry_max_backoff_ms),
                max_message_bytes: env.max_message_bytes,
                worker_id,
            },
            result_max_bytes: env.result_max_bytes,
            shutdown_grace: Duration::from_secs(env.shutdown_grace_seconds),
            metrics_port: env.metrics_port,
            rdkafka_overrides,
        })
    }

    /// The engine's job runner, calling the configured mcp-server replicas: the same
    /// for every job source.
    pub fn job_runner(&self) -> JobRunner {
        JobRunner::new(
            ToolClient::new(&self.server_urls, self.api_key.clone(), self.concurrency),
            self.runner.clone(),
        )
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

    /// A librdkafka config with the brokers, `base` settings, then the operator's
    /// overrides. Under the consumer protocol the classic group settings are left out:
    /// the broker owns them, and librdkafka refuses them there.
    pub fn kafka_config(&self, base: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        let consumer_protocol = self.consumer_protocol();
        let settings = base.iter().map(|(key, value)| (*key, *value)).chain(
            self.rdkafka_overrides
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        for (key, value) in settings {
            if consumer_protocol && CLASSIC_GROUP_SETTINGS.contains(&key) {
                continue;
            }
            config.set(key, value);
        }
        // rdkafka forwards only errors unless told otherwise; warnings matter here.
        config.set_log_level(rdkafka::config::RDKafkaLogLevel::Warning);
        config
    }

    /// [`Self::kafka_config`] for a producer or an admin client: the operator's
    /// overrides of consumer-only settings are left out.
    pub fn producer_config(&self, base: &[(&str, &str)]) -> ClientConfig {
        let mut config = self.kafka_config(base);
        for key in self.rdkafka_overrides.keys() {
            if CONSUMER_ONLY_SETTINGS.contains(&key.as_str()) {
                config.remove(key);
            }
        }
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

/// Accepts the seed's base URL (`http://mcp-server:8080`) as well as the full endpoint.
fn mcp_endpoint(url: &str) -> Result<String, ConfigError> {
    let invalid = |reason: String| ConfigError::ServerUrl {
        url: url.to_owned(),
        reason,
    };
    let mut parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(format!("scheme {:?}", parsed.scheme())));
    }
    if parsed.path() == "/" || parsed.path().is_empty() {
        parsed.set_path("/mcp");
    }
    Ok(parsed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_brokers_is_named() {
        let err = WorkerSettings::from_vars(Vec::<(&str, &str)>::new()).unwrap_err();
        assert_eq!(err.to_string(), "KAFKA_BROKERS is not set");
    }

    #[test]
    fn the_redis_source_needs_no_brokers() {
        let settings = WorkerSettings::from_vars([("JOB_SOURCE", "redis")]).expect("valid");
        assert_eq!(settings.source, JobSource::Redis);
        assert_eq!(settings.redis.stream, "mcp-jobs");
        assert_eq!(settings.redis.results_stream, "mcp-jobs.results");
        assert_eq!(settings.redis.max_deliveries, 5);
        let err = WorkerSettings::from_vars([("JOB_SOURCE", "rabbit")]).unwrap_err();
        assert!(err.to_string().contains("JOB_SOURCE=\"rabbit\""), "{err}");
    }

    #[test]
    fn defaults_and_overrides() {
        let settings = WorkerSettings::from_vars([
            ("KAFKA_BROKERS", "k:9092"),
            ("MCP_SERVER_URL", "http://mcp-server:8080"),
            ("RDKAFKA_SESSION_TIMEOUT_MS", "6000"),
            ("RDKAFKA_FETCH_WAIT_MAX_MS", "10"),
        ])
        .expect("valid");
        assert_eq!(settings.topic, "mcp-jobs");
        assert_eq!(settings.results_topic, "mcp-jobs.results");
        assert_eq!(settings.dlq_topic, "mcp-jobs.dlq");
        assert_eq!(settings.schedules_topic, "mcp-jobs.schedules");
        assert_eq!(settings.delayed_topic, "mcp-jobs.delayed");
        assert!(settings.scheduler_enabled);
        assert_eq!(settings.delay_min, Duration::from_secs(2));
        assert_eq!(settings.server_urls, ["http://mcp-server:8080/mcp"]);
        assert_eq!(settings.concurrency, 64);
        assert_eq!(settings.runner.max_attempts, 3);
        assert_eq!(settings.result_max_bytes, 900_000);
        assert_eq!(settings.rdkafka_overrides["session.timeout.ms"], "6000");
        assert_eq!(settings.rdkafka_overrides["fetch.wait.max.ms"], "10");
        let config = settings.kafka_config(&[("session.timeout.ms", "45000")]);
        assert_eq!(
            config.get("session.timeout.ms"),
            Some("6000"),
            "overrides win"
        );
        assert!(!settings.consumer_protocol());
        let producer = settings.producer_config(&[("acks", "all")]);
        assert_eq!(producer.get("session.timeout.ms"), None);
        assert_eq!(producer.get("fetch.wait.max.ms"), None);
        assert_eq!(producer.get("acks"), Some("all"));
    }

    #[test]
    fn the_consumer_protocol_leaves_classic_group_settings_to_the_broker() {
        let settings = WorkerSettings::from_vars([
            ("KAFKA_BROKERS", "k:9092"),
            ("RDKAFKA_GROUP_PROTOCOL", "consumer"),
            ("RDKAFKA_SESSION_TIMEOUT_MS", "6000"),
        ])
        .expect("valid");
        assert!(settings.consumer_protocol());
        let config = settings.kafka_config(&[
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("group.id", "g"),
        ]);
        assert_eq!(config.get("group.protocol"), Some("consumer"));
        assert_eq!(config.get("group.id"), Some("g"));
        assert_eq!(config.get("session.timeout.ms"), None);
        assert_eq!(config.get("partition.assignment.strategy"), None);
    }

    #[test]
    fn invalid_values_are_named() {
        let err = WorkerSettings::from_vars([("KAFKA_BROKERS", "k"), ("JOB_TIMEOUT_MS", "soon")])
            .unwrap_err();
        assert!(err.to_string().contains("JOB_TIMEOUT_MS"), "{err}");
        let err =
            WorkerSettings::from_vars([("KAFKA_BROKERS", "k"), ("MCP_SERVER_URL", "ftp://x")])
                .unwrap_err();
        assert!(err.to_string().contains("MCP_SERVER_URL"), "{err}");
        let err = WorkerSettings::from_vars([("KAFKA_BROKERS", "k"), ("WORKER_CONCURRENCY", "0")])
            .unwrap_err();
        assert!(err.to_string().contains("WORKER_CONCURRENCY"), "{err}");
        let err = WorkerSettings::from_vars([("KAFKA_BROKERS", "k"), ("RESULT_MAX_BYTES", "100")])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("RESULT_MAX_BYTES=100 is too small"),
            "{err}"
        );
    }

    #[test]
    fn several_server_urls() {
        let settings = WorkerSettings::from_vars([
            ("KAFKA_BROKERS", "k:9092"),
            ("MCP_SERVER_URL", "http://a:8080, http://b:8080/mcp"),
        ])
        .expect("valid");
        assert_eq!(
            settings.server_urls,
            ["http://a:8080/mcp", "http://b:8080/mcp"]
        );
    }
}
