//! kafka-worker's settings, read with envy and validated at start: a missing or invalid
//! variable stops the worker with its name in the message.

use std::collections::BTreeMap;
use std::time::Duration;

use mcp_jobs_engine::fit::MIN_RECORD_BYTES;
use mcp_jobs_engine::runner::{JobRunner, RunnerSettings};
use mcp_jobs_engine::tool_client::ToolClient;
use mcp_jobs_env_config::{
    comma_separated, describe, from_vars, require_non_empty, require_positive, EnvError,
};
use mcp_jobs_kafka::KafkaSettings;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The environment as envy reads it; field names are the variables, lowercased.
#[derive(Deserialize, Serialize)]
struct Env {
    #[serde(default = "default_job_source")]
    job_source: String,
    #[serde(default = "default_scheduler_enabled")]
    scheduler_enabled: bool,
    #[serde(default = "default_delay_min_ms")]
    delay_min_ms: u64,
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
    #[serde(default = "default_retry_max_backoff_ms")]
    retry_max_backoff_ms: u64,
    #[serde(default = "default_shutdown_grace_seconds")]
    shutdown_grace_seconds: u64,
    #[serde(default = "default_metrics_port")]
    metrics_port: u16,
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
    /// Brokers and topics: the Kafka source's, and those of the scheduler, the console
    /// and the operator's subcommands.
    pub kafka: KafkaSettings,
    /// Whether `kafka-worker run` also runs the schedule dispatcher (`SCHEDULER_ENABLED`).
    pub scheduler_enabled: bool,
    /// A job due further ahead than this goes to the delayed topic; a nearer one waits
    /// in its slot, so no job runs early.
    pub delay_min: Duration,
    /// mcp-server replicas' Streamable HTTP endpoints (`/mcp` is added to a bare base URL).
    pub server_urls: Vec<String>,
    /// Sent as `Authorization: Bearer`; a secret, so kept out of Debug.
    pub api_key: Option<String>,
    /// Jobs running at once.
    pub concurrency: usize,
    pub runner: RunnerSettings,
    pub shutdown_grace: Duration,
    /// Where `/metrics`, `/health` and `/ready` are served.
    pub metrics_port: u16,
}

impl std::fmt::Debug for WorkerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerSettings")
            .field("source", &self.source)
            .field("kafka", &self.kafka)
            .field("server_urls", &self.server_urls)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
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
    /// The worker's own variables (not Kafka's) as `vars` set them, defaults filled in
    /// and the API key hidden.
    pub fn described(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<BTreeMap<String, Value>, EnvError> {
        describe::<Env>(vars, &["MCP_API_KEY"])
    }

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
        let kafka = KafkaSettings::from_vars(vars)?;
        let source = match env.job_source.trim() {
            "kafka" => JobSource::Kafka,
            "redis" => JobSource::Redis,
            other => return Err(ConfigError::JobSource(other.to_owned())),
        };
        // The Kafka source, `publish` and `lag` need brokers; the Redis source does not.
        if source == JobSource::Kafka {
            kafka.require_brokers()?;
        }
        require_non_empty(&[("REDIS_STREAM", &env.redis_stream)])?;
        require_positive(&[
            ("JOB_TIMEOUT_MS", env.job_timeout_ms),
            ("WORKER_CONCURRENCY", env.worker_concurrency),
            ("JOB_MAX_ATTEMPTS", env.job_max_attempts),
            ("RETRY_MAX_BACKOFF_MS", env.retry_max_backoff_ms),
            ("REDIS_CLAIM_IDLE_MS", env.redis_claim_idle_ms),
            ("REDIS_MAX_DELIVERIES", env.redis_max_deliveries),
        ])?;
        if kafka.limits.outcome_bytes < MIN_RECORD_BYTES {
            return Err(ConfigError::ResultMaxBytes(kafka.limits.outcome_bytes));
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
            scheduler_enabled: env.scheduler_enabled,
            delay_min: Duration::from_millis(env.delay_min_ms),
            server_urls,
            api_key: env.mcp_api_key.filter(|k| !k.is_empty()),
            concurrency: usize::try_from(env.worker_concurrency).unwrap_or(usize::MAX),
            runner: RunnerSettings {
                job_timeout: Duration::from_millis(env.job_timeout_ms),
                max_attempts: u32::try_from(env.job_max_attempts).unwrap_or(u32::MAX),
                retry_backoff: Duration::from_millis(env.job_retry_backoff_ms),
                retry_max_backoff: Duration::from_millis(env.retry_max_backoff_ms),
                max_message_bytes: kafka.limits.job_bytes,
                worker_id: kafka.client_id.clone(),
            },
            kafka,
            shutdown_grace: Duration::from_secs(env.shutdown_grace_seconds),
            metrics_port: env.metrics_port,
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
}

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
    fn defaults() {
        let settings = WorkerSettings::from_vars([
            ("KAFKA_BROKERS", "k:9092"),
            ("MCP_SERVER_URL", "http://mcp-server:8080"),
            ("WORKER_ID", "w-1"),
            ("MAX_MESSAGE_BYTES", "2048"),
        ])
        .expect("valid");
        assert_eq!(settings.kafka.topic, "mcp-jobs");
        assert!(settings.scheduler_enabled);
        assert_eq!(settings.delay_min, Duration::from_secs(2));
        assert_eq!(settings.server_urls, ["http://mcp-server:8080/mcp"]);
        assert_eq!(settings.concurrency, 64);
        assert_eq!(settings.runner.max_attempts, 3);
        assert_eq!(settings.runner.max_message_bytes, 2048);
        assert_eq!(settings.runner.worker_id, "w-1");
        assert_eq!(settings.kafka.client_id, "w-1");
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
