//! The Redis handle every shared-state tool goes through. It connects on first use and
//! reconnects by itself with exponential backoff (redis' `ConnectionManager`), so a
//! Redis that goes away makes calls fail fast with an error that says so, and calls
//! work again once it is back — no call hangs on it.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::RedisError;

#[derive(Clone)]
pub struct Store {
    client: redis::Client,
    connection: ConnectionManager,
    /// `REDIS_URL` without its password, for messages.
    shown_url: String,
}

/// Why a Redis call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Redis at {url} is unreachable ({source}); mcp-server reconnects with exponential backoff, so try again shortly")]
    Unavailable {
        url: String,
        #[source]
        source: RedisError,
    },
    #[error("Redis at {url} refused the command: {source}")]
    Command {
        url: String,
        #[source]
        source: RedisError,
    },
}

impl Store {
    /// Whether `url` is a Redis URL, without connecting (for configuration checks).
    pub fn check_url(url: &str) -> Result<(), RedisError> {
        redis::Client::open(url).map(drop)
    }

    /// Checks `url` (`redis://[:password@]host:port[/db]`); connects on first use.
    /// Call inside the Tokio runtime.
    pub fn open(url: &str) -> Result<Self, RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(2))
            .set_number_of_retries(3);
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(Self {
            client,
            connection,
            shown_url: shown(url),
        })
    }

    /// The shared, multiplexed connection: cheap to clone, one per call.
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// The client behind the handle, for a connection of another kind (subscriptions).
    pub fn client(&self) -> redis::Client {
        self.client.clone()
    }

    /// Classifies a failed call: Redis out of reach, or Redis saying no.
    pub fn error(&self, source: RedisError) -> StoreError {
        let url = self.shown_url.clone();
        if source.is_io_error()
            || source.is_connection_refusal()
            || source.is_connection_dropped()
            || source.is_timeout()
        {
            StoreError::Unavailable { url, source }
        } else {
            StoreError::Command { url, source }
        }
    }
}

/// `url` with any password replaced, so it can appear in errors and logs.
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Only URLs that cannot carry a password refuse one.
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(REDIS_URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            shown("redis://:hunter22@db:6379/0"),
            "redis://:***@db:6379/0"
        );
        assert_eq!(shown("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
