//! The console's settings, from the environment beside kafka-worker's own: it refuses
//! to start without an API key.

use mcp_jobs_env_config::{comma_separated, describe, from_vars, EnvError};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Deserialize, Serialize)]
struct Env {
    #[serde(default = "default_port")]
    console_port: u16,
    console_api_keys: Option<String>,
    #[serde(default)]
    console_read_only: bool,
    #[serde(default = "secure_cookie")]
    console_cookie_secure: bool,
}

fn secure_cookie() -> bool {
    true
}

fn default_port() -> u16 {
    8081
}

pub struct ConsoleSettings {
    /// `CONSOLE_PORT`.
    pub port: u16,
    /// `CONSOLE_API_KEYS`, comma-separated: every request needs one.
    pub api_keys: Vec<String>,
    /// `CONSOLE_READ_ONLY`: every action is refused.
    pub read_only: bool,
    /// `CONSOLE_COOKIE_SECURE` (true): browsers send the login cookie over HTTPS and to
    /// localhost only; false for plain HTTP to another host.
    pub cookie_secure: bool,
    /// The mcp-server endpoints whose `/stats` the overview shows (kafka-worker's
    /// `MCP_SERVER_URL`), and the key it calls them with (`MCP_API_KEY`).
    pub servers: Vec<String>,
    pub server_api_key: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleConfigError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("CONSOLE_API_KEYS is not set: the console serves nothing without a key (comma-separate several)")]
    NoKeys,
}

impl ConsoleSettings {
    /// The console's variables as `vars` set them, defaults filled in and the keys
    /// hidden.
    pub fn described(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<BTreeMap<String, Value>, EnvError> {
        describe::<Env>(vars, &["CONSOLE_API_KEYS"])
    }

    /// The mcp-server replicas the overview reports on.
    pub fn with_servers(self, servers: Vec<String>, api_key: Option<String>) -> Self {
        Self {
            servers,
            server_api_key: api_key,
            ..self
        }
    }

    pub fn from_env() -> Result<Self, ConsoleConfigError> {
        Self::from_vars(std::env::vars())
    }

    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConsoleConfigError> {
        let env: Env = from_vars(vars)?;
        let api_keys = comma_separated(env.console_api_keys.as_deref().unwrap_or_default());
        if api_keys.is_empty() {
            return Err(ConsoleConfigError::NoKeys);
        }
        Ok(Self {
            port: env.console_port,
            api_keys,
            read_only: env.console_read_only,
            cookie_secure: env.console_cookie_secure,
            servers: Vec::new(),
            server_api_key: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_key_is_required() {
        let err = ConsoleSettings::from_vars(vars(&[]))
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("CONSOLE_API_KEYS")));
        let settings = ConsoleSettings::from_vars(vars(&[
            ("CONSOLE_API_KEYS", "a, b"),
            ("CONSOLE_READ_ONLY", "true"),
        ]))
        .expect("valid");
        assert_eq!(settings.api_keys, ["a", "b"]);
        assert!(settings.read_only);
        assert_eq!(settings.port, 8081);
        assert!(settings.cookie_secure);
    }
}
