//! mcp-server's settings, read from the environment with envy and checked before the
//! server binds, so a misconfiguration stops it with a message rather than at the first job.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mcp_jobs_env_config::{comma_separated, from_vars, require_positive, EnvError};
use mcp_jobs_kafka::KafkaSettings;
use mcp_jobs_shared_state::{MessagingSettings, Store};
use mcp_jobs_upstream::{Allowlist, CommandAllowlist, EnvRules, Policy, PoolSettings};
use serde::Deserialize;

pub use crate::tasks::{TaskMode, TaskSettings};

/// The environment as envy reads it; field names are the variables, lowercased.
#[derive(Debug, Deserialize)]
struct Env {
    #[serde(default = "default_port")]
    port: u16,
    #[serde(default = "default_bind")]
    mcp_bind: String,
    #[serde(default)]
    mcp_auth: Option<String>,
    #[serde(default)]
    mcp_api_keys: String,
    #[serde(default)]
    mcp_allowed_commands: String,
    #[serde(default)]
    mcp_allowed_env: Option<String>,
    #[serde(default)]
    mcp_env_dir: Option<PathBuf>,
    #[serde(default)]
    mcp_servers_file: Option<PathBuf>,
    #[serde(default)]
    mcp_work_dir: Option<PathBuf>,
    #[serde(default)]
    mcp_allowed_remote_hosts: String,
    #[serde(default = "default_allowed_hosts")]
    mcp_allowed_hosts: String,
    #[serde(default = "default_max_body_bytes")]
    mcp_max_body_bytes: usize,
    #[serde(default = "default_call_timeout_ms")]
    mcp_call_timeout_ms: u64,
    #[serde(default = "default_max_argument_bytes")]
    mcp_max_argument_bytes: usize,
    #[serde(default = "default_pool_max_total")]
    mcp_pool_max_total: usize,
    #[serde(default = "default_pool_max_per_server")]
    mcp_pool_max_per_server: usize,
    #[serde(default = "default_pool_max_calls_per_child")]
    mcp_pool_max_calls_per_child: usize,
    #[serde(default = "default_pool_restart_backoff_ms")]
    mcp_pool_restart_backoff_ms: u64,
    #[serde(default = "default_pool_restart_backoff_max_ms")]
    mcp_pool_restart_backoff_max_ms: u64,
    #[serde(default = "default_pool_idle_seconds")]
    mcp_pool_idle_seconds: u64,
    #[serde(default = "default_child_env")]
    mcp_child_env: String,
    #[serde(default)]
    mcp_drain_seconds: u64,
    #[serde(default = "default_toolsets")]
    mcp_toolsets: String,
    #[serde(default = "default_redis_url")]
    redis_url: String,
    #[serde(default = "default_message_ttl_seconds")]
    messaging_message_ttl_seconds: u64,
    #[serde(default = "default_max_message_bytes")]
    messaging_max_message_bytes: usize,
    #[serde(default = "default_max_wait_seconds")]
    messaging_max_wait_seconds: u64,
    #[serde(default = "default_max_waiters")]
    messaging_max_waiters: usize,
    #[serde(default = "default_task_ttl_seconds")]
    mcp_task_ttl_seconds: u64,
    #[serde(default = "default_task_poll_ms")]
    mcp_task_poll_ms: u64,
    #[serde(default)]
    mcp_meta_tasks: String,
    #[serde(default = "default_task_hold_ms")]
    mcp_task_hold_ms: u64,
}

fn default_port() -> u16 {
    8080
}
fn default_bind() -> String {
    "0.0.0.0".into()
}
fn default_allowed_hosts() -> String {
    "localhost,127.0.0.1,::1".into()
}
fn default_max_body_bytes() -> usize {
    4 * 1024 * 1024
}
fn default_call_timeout_ms() -> u64 {
    60_000
}
fn default_max_argument_bytes() -> usize {
    1024 * 1024
}
fn default_pool_max_total() -> usize {
    64
}
fn default_pool_max_per_server() -> usize {
    4
}
fn default_pool_max_calls_per_child() -> usize {
    32
}
fn default_pool_restart_backoff_ms() -> u64 {
    250
}
fn default_pool_restart_backoff_max_ms() -> u64 {
    30_000
}
fn default_pool_idle_seconds() -> u64 {
    300
}
fn default_toolsets() -> String {
    "jobs,messaging,streams".into()
}
fn default_redis_url() -> String {
    "redis://127.0.0.1:6379".into()
}
fn default_message_ttl_seconds() -> u64 {
    300
}
fn default_max_message_bytes() -> usize {
    64 * 1024
}
fn default_max_wait_seconds() -> u64 {
    600
}
/// Each waiting call holds a task and its caller's connection; Redis holds one
/// subscription for all of them.
fn default_max_waiters() -> usize {
    10_000
}
fn default_task_ttl_seconds() -> u64 {
    24 * 60 * 60
}
fn default_task_hold_ms() -> u64 {
    50
}
fn default_task_poll_ms() -> u64 {
    1_000
}
fn default_child_env() -> String {
    "PATH,HOME,LANG,LC_ALL,TZ,TMPDIR,USER".into()
}

/// How callers prove who they are.
#[derive(Clone)]
pub enum Auth {
    /// `Authorization: Bearer <key>` or `X-API-Key: <key>` must match one of `keys`;
    /// `scopes[i]` is what `keys[i]` may reach.
    ApiKeys {
        keys: Vec<String>,
        scopes: Vec<KeyScope>,
    },
    /// No check at all: only for a trusted network, and said so in the log at start.
    Disabled,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ApiKeys { keys, .. } => write!(f, "ApiKeys({} keys)", keys.len()),
            Self::Disabled => f.write_str("Disabled"),
        }
    }
}

/// What one API key may reach: every named server or some, and the meta-tools
/// endpoints (`/mcp`, `/tools`, `/ws/tools`, `/stats`) or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyScope {
    /// `None`: every named server.
    pub servers: Option<BTreeSet<String>>,
    pub meta_tools: bool,
}

impl KeyScope {
    pub const FULL: Self = Self {
        servers: None,
        meta_tools: true,
    };

    pub fn allows_server(&self, name: &str) -> bool {
        self.servers
            .as_ref()
            .is_none_or(|names| names.contains(name))
    }
}

/// `MCP_API_KEYS`: comma-separated entries, each a key with optional scope words after
/// it — `servers=a|b` (only these named servers, and so no meta-tools, which can name
/// any) and `meta=off` (no meta-tools). Keys never hold spaces, so the first word is the
/// key. Errors name the entry, never the key.
fn parse_api_keys(text: &str) -> Result<(Vec<String>, Vec<KeyScope>), ConfigError> {
    let mut keys = Vec::new();
    let mut scopes = Vec::new();
    for (index, entry) in comma_separated(text).iter().enumerate() {
        let mut words = entry.split_whitespace();
        let Some(key) = words.next() else { continue };
        let mut scope = KeyScope::FULL;
        for word in words {
            let bad = |reason: &str| ConfigError::KeyScope {
                entry: index + 1,
                reason: format!("{word:?}: {reason}"),
            };
            match word.split_once('=') {
                Some(("servers", names)) => {
                    let names: BTreeSet<String> = names
                        .split('|')
                        .filter(|n| !n.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if names.is_empty() {
                        return Err(bad("name at least one server (servers=a|b)"));
                    }
                    scope.servers = Some(names);
                }
                Some(("meta", "off")) => scope.meta_tools = false,
                _ => return Err(bad("the scope words are servers=a|b and meta=off")),
            }
        }
        // The meta-tools reach any named server by its name: a key limited to some
        // servers has none of them.
        if scope.servers.is_some() {
            scope.meta_tools = false;
        }
        keys.push(key.to_owned());
        scopes.push(scope);
    }
    Ok((keys, scopes))
}

/// Which groups of tools are served (`MCP_TOOLSETS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Toolsets {
    pub jobs: bool,
    pub messaging: bool,
    pub streams: bool,
}

impl Toolsets {
    fn parse(list: &str) -> Result<Self, ConfigError> {
        let mut toolsets = Self::default();
        for name in comma_separated(list) {
            match name.as_str() {
                "jobs" => toolsets.jobs = true,
                "messaging" => toolsets.messaging = true,
                "streams" => toolsets.streams = true,
                _ => return Err(ConfigError::UnknownToolset(name)),
            }
        }
        if toolsets == Self::default() {
            return Err(ConfigError::NoToolset);
        }
        Ok(toolsets)
    }
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub auth: Auth,
    /// `Host` header values accepted on `/mcp` (rmcp's DNS-rebinding guard); `*` accepts any,
    /// which a server behind a Kubernetes Service needs unless its names are listed.
    pub allowed_hosts: Allowlist,
    pub max_body_bytes: usize,
    /// The largest `arguments` object a tool call may carry, serialized.
    pub max_argument_bytes: usize,
    pub policy: Policy,
    pub pool: PoolSettings,
    /// How long `/ready` answers 503 before the listener closes on shutdown.
    pub drain: Duration,
    pub toolsets: Toolsets,
    /// Where messaging and stream state lives, shared by every replica.
    pub redis_url: String,
    pub messaging: MessagingSettings,
    /// The operator's named servers (`MCP_SERVERS_FILE`), if any.
    pub servers_file: Option<PathBuf>,
    /// Durable tasks, offered when mcp-server has Kafka (`KAFKA_BROKERS`).
    pub tasks: Option<TaskSettings>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("MCP_BIND={bind:?} with PORT={port} is not a listen address: {reason}")]
    Listen {
        bind: String,
        port: u16,
        reason: String,
    },
    #[error("MCP_AUTH={0:?} is not understood: use MCP_AUTH=none to turn authentication off, or leave it unset")]
    AuthMode(String),
    #[error("MCP_API_KEYS is empty: set at least one key, or MCP_AUTH=none to run without authentication")]
    NoApiKeys,
    #[error("MCP_API_KEYS entry {entry}: {reason}")]
    KeyScope { entry: usize, reason: String },
    #[error("MCP_TOOLSETS names {0:?}; the toolsets are jobs, messaging and streams")]
    UnknownToolset(String),
    #[error("MCP_TOOLSETS is empty: name at least one of jobs, messaging, streams")]
    NoToolset,
    #[error("REDIS_URL is not a Redis URL (redis://[:password@]host:port[/db]): {0}")]
    RedisUrl(String),
    #[error("MCP_META_TASKS={0}")]
    MetaTasks(String),
}

impl ServerSettings {
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
        let env: Env = from_vars(vars.clone())?;
        let kafka = KafkaSettings::from_vars(vars)?;
        let listen = format!("{}:{}", bracket_ipv6(&env.mcp_bind), env.port)
            .parse()
            .map_err(|e: std::net::AddrParseError| ConfigError::Listen {
                bind: env.mcp_bind.clone(),
                port: env.port,
                reason: e.to_string(),
            })?;
        let auth = match env.mcp_auth.as_deref().map(str::trim) {
            Some("none") => Auth::Disabled,
            None | Some("" | "api-key") => {
                let (keys, scopes) = parse_api_keys(&env.mcp_api_keys)?;
                if keys.is_empty() {
                    return Err(ConfigError::NoApiKeys);
                }
                Auth::ApiKeys { keys, scopes }
            }
            Some(other) => return Err(ConfigError::AuthMode(other.to_owned())),
        };
        require_positive(&[
            ("MCP_MAX_BODY_BYTES", env.mcp_max_body_bytes as u64),
            ("MCP_CALL_TIMEOUT_MS", env.mcp_call_timeout_ms),
            ("MCP_MAX_ARGUMENT_BYTES", env.mcp_max_argument_bytes as u64),
            ("MCP_POOL_MAX_TOTAL", env.mcp_pool_max_total as u64),
            (
                "MCP_POOL_MAX_PER_SERVER",
                env.mcp_pool_max_per_server as u64,
            ),
            (
                "MCP_POOL_MAX_CALLS_PER_CHILD",
                env.mcp_pool_max_calls_per_child as u64,
            ),
            ("MCP_POOL_IDLE_SECONDS", env.mcp_pool_idle_seconds),
            (
                "MESSAGING_MESSAGE_TTL_SECONDS",
                env.messaging_message_ttl_seconds,
            ),
            (
                "MESSAGING_MAX_MESSAGE_BYTES",
                env.messaging_max_message_bytes as u64,
            ),
            ("MESSAGING_MAX_WAIT_SECONDS", env.messaging_max_wait_seconds),
            ("MESSAGING_MAX_WAITERS", env.messaging_max_waiters as u64),
        ])?;
        let toolsets = Toolsets::parse(&env.mcp_toolsets)?;
        let meta_tasks: TaskMode = env.mcp_meta_tasks.parse().map_err(ConfigError::MetaTasks)?;
        if meta_tasks == TaskMode::Required {
            // kafka-worker runs every job through call_tool, as a client without tasks.
            return Err(ConfigError::MetaTasks(
                "required: kafka-worker calls call_tool to run jobs and takes no tasks; use \
                 optional or afterMs:<milliseconds>"
                    .into(),
            ));
        }
        Store::check_url(&env.redis_url).map_err(|e| ConfigError::RedisUrl(e.to_string()))?;
        Ok(Self {
            listen,
            auth,
            allowed_hosts: Allowlist::parse(&env.mcp_allowed_hosts),
            max_body_bytes: env.mcp_max_body_bytes,
            max_argument_bytes: env.mcp_max_argument_bytes,
            policy: Policy {
                allowed_commands: CommandAllowlist::parse(&env.mcp_allowed_commands),
                allowed_env: EnvRules::parse(env.mcp_allowed_env.as_deref()),
                env_dir: env.mcp_env_dir,
                work_dir: env.mcp_work_dir,
                allowed_remote_hosts: Allowlist::parse(&env.mcp_allowed_remote_hosts),
                inherited_env: comma_separated(&env.mcp_child_env),
            },
            drain: Duration::from_secs(env.mcp_drain_seconds),
            toolsets,
            servers_file: env.mcp_servers_file,
            tasks: (!kafka.brokers.trim().is_empty()).then(|| TaskSettings {
                kafka,
                ttl: Duration::from_secs(env.mcp_task_ttl_seconds),
                poll_interval: Duration::from_millis(env.mcp_task_poll_ms),
                hold: Duration::from_millis(env.mcp_task_hold_ms),
                meta: meta_tasks,
            }),
            redis_url: env.redis_url,
            messaging: MessagingSettings {
                message_ttl: Duration::from_secs(env.messaging_message_ttl_seconds),
                max_message_bytes: env.messaging_max_message_bytes,
                max_wait: Duration::from_secs(env.messaging_max_wait_seconds),
                max_waiters: env.messaging_max_waiters,
            },
            pool: PoolSettings {
                max_per_server: env.mcp_pool_max_per_server,
                max_total: env.mcp_pool_max_total,
                max_calls_per_child: env.mcp_pool_max_calls_per_child,
                idle_timeout: Duration::from_secs(env.mcp_pool_idle_seconds),
                default_deadline: Duration::from_millis(env.mcp_call_timeout_ms),
                restart_backoff: Duration::from_millis(env.mcp_pool_restart_backoff_ms),
                restart_backoff_max: Duration::from_millis(
                    env.mcp_pool_restart_backoff_max_ms
                        .max(env.mcp_pool_restart_backoff_ms),
                ),
            },
        })
    }
}

fn bracket_ipv6(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_an_api_key() {
        assert!(matches!(
            ServerSettings::from_vars(Vec::<(&str, &str)>::new()),
            Err(ConfigError::NoApiKeys)
        ));
        let settings = ServerSettings::from_vars([("MCP_API_KEYS", "k1, k2")]).expect("valid");
        assert_eq!(settings.listen.port(), 8080);
        assert!(matches!(settings.auth, Auth::ApiKeys { ref keys, .. } if keys == &["k1", "k2"]));
        assert!(
            settings.policy.allowed_commands.is_empty(),
            "no command is allowed by default"
        );
        assert!(
            settings.policy.allowed_remote_hosts.is_empty(),
            "no remote host is allowed by default"
        );
        assert!(settings.toolsets.jobs && settings.toolsets.messaging && settings.toolsets.streams);
        assert_eq!(
            settings.policy.allowed_env,
            EnvRules::RefuseCodeLoading,
            "code-loading variables are refused by default"
        );
        assert!(settings.policy.work_dir.is_none(), "no cwd by default");
    }

    #[test]
    fn bad_values_are_named() {
        let err = ServerSettings::from_vars([("MCP_AUTH", "none"), ("PORT", "http")]).unwrap_err();
        assert!(err.to_string().contains("PORT"), "{err}");
        let err = ServerSettings::from_vars([("MCP_AUTH", "maybe")]).unwrap_err();
        assert!(err.to_string().contains("MCP_AUTH=\"maybe\""), "{err}");
        let err = ServerSettings::from_vars([("MCP_AUTH", "none"), ("MCP_POOL_MAX_TOTAL", "0")])
            .unwrap_err();
        assert!(err.to_string().contains("MCP_POOL_MAX_TOTAL"), "{err}");
        let err = ServerSettings::from_vars([("MCP_AUTH", "none"), ("MCP_TOOLSETS", "jobs,chat")])
            .unwrap_err();
        assert!(err.to_string().contains("\"chat\""), "{err}");
        let err = ServerSettings::from_vars([("MCP_AUTH", "none"), ("REDIS_URL", "http://x")])
            .unwrap_err();
        assert!(err.to_string().contains("REDIS_URL"), "{err}");
        let err = ServerSettings::from_vars([("MCP_AUTH", "none"), ("MCP_META_TASKS", "required")])
            .unwrap_err();
        assert!(
            err.to_string().contains("kafka-worker calls call_tool"),
            "{err}"
        );
    }

    #[test]
    fn keys_may_be_scoped_to_named_servers_and_off_the_meta_tools() {
        let settings = ServerSettings::from_vars([(
            "MCP_API_KEYS",
            "admin-key, ide-key servers=time|github,ops-key meta=off",
        )])
        .expect("valid");
        let Auth::ApiKeys { keys, scopes } = settings.auth else {
            panic!("keys");
        };
        assert_eq!(keys, ["admin-key", "ide-key", "ops-key"]);
        assert_eq!(scopes[0], KeyScope::FULL);
        assert!(scopes[1].allows_server("github") && !scopes[1].allows_server("shell"));
        assert!(!scopes[1].meta_tools);
        assert!(scopes[2].allows_server("anything") && !scopes[2].meta_tools);
        for bad in ["k servers=", "k meta=maybe", "k meta=on", "k tools=all"] {
            let err = ServerSettings::from_vars([("MCP_API_KEYS", bad)]).unwrap_err();
            assert!(
                err.to_string().starts_with("MCP_API_KEYS entry 1: "),
                "{err}"
            );
            assert!(
                !err.to_string().contains("\"k\""),
                "the key is never shown: {err}"
            );
        }
    }
}
