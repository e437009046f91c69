//! The cache of live upstream connections. A connection is a cache entry, not state:
//! any request can be served by a fresh one, so entries are bounded, reaped when idle,
//! dropped when broken, and all closed when mcp-server stops.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_jobs_contract::ServerConfig;
use rmcp::model::{CallToolResult, JsonObject, RequestMetaObject, ServerPeerInfo, Tool};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::connection::Connection;
use crate::error::{FailureKind, UpstreamError};
use crate::policy::{Policy, Target};

/// Limits of the connection cache.
#[derive(Debug, Clone)]
pub struct ConnectorSettings {
    /// Live connections kept at most; the least recently used is closed to make room.
    pub max_connections: usize,
    /// A connection unused this long is closed.
    pub idle_timeout: Duration,
    /// Deadline of a call (including connecting) when the caller gives none.
    pub default_deadline: Duration,
}

/// One cache entry; the cell lets concurrent first requests share one connect.
type Slot = Arc<OnceCell<Arc<Connection>>>;

pub struct Connector {
    policy: Policy,
    settings: ConnectorSettings,
    http: reqwest::Client,
    slots: Mutex<HashMap<Target, Slot>>,
}

impl Connector {
    pub fn new(policy: Policy, settings: ConnectorSettings) -> Self {
        Self {
            policy,
            settings,
            http: reqwest::Client::new(),
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Connects (or reuses a connection) and returns the server's initialize result
    /// together with its tool list.
    pub async fn initialize(
        &self,
        server: &str,
        config: &ServerConfig,
        deadline: Option<Duration>,
    ) -> Result<(ServerPeerInfo, Vec<Tool>), UpstreamError> {
        let until = self.until(deadline);
        let (target, connection) = self.connection(server, config, until).await?;
        let info = connection.info().ok_or_else(|| UpstreamError::Handshake {
            server: server.to_owned(),
            reason: "the server sent no initialize result".into(),
        })?;
        let tools =
            self.forget_if_broken(&target, connection.list_tools(remaining(until)).await)?;
        Ok((info, tools))
    }

    pub async fn list_tools(
        &self,
        server: &str,
        config: &ServerConfig,
        deadline: Option<Duration>,
    ) -> Result<Vec<Tool>, UpstreamError> {
        let until = self.until(deadline);
        let (target, connection) = self.connection(server, config, until).await?;
        self.forget_if_broken(&target, connection.list_tools(remaining(until)).await)
    }

    pub async fn call_tool(
        &self,
        server: &str,
        config: &ServerConfig,
        tool: &str,
        arguments: JsonObject,
        meta: Option<RequestMetaObject>,
        deadline: Option<Duration>,
    ) -> Result<CallToolResult, UpstreamError> {
        let until = self.until(deadline);
        let (target, connection) = self.connection(server, config, until).await?;
        let result = connection
            .call_tool(tool, arguments, meta, remaining(until))
            .await;
        self.forget_if_broken(&target, result)
    }

    /// Closes connections idle longer than the idle timeout, every `every`, until dropped.
    pub async fn reap_idle(&self, every: Duration) {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            let idle: Vec<Slot> = {
                let mut slots = self.lock_slots();
                let expired: Vec<Target> = slots
                    .iter()
                    .filter(|(_, slot)| {
                        slot.get()
                            .is_some_and(|c| c.idle_for() >= self.settings.idle_timeout)
                    })
                    .map(|(target, _)| target.clone())
                    .collect();
                expired.iter().filter_map(|t| slots.remove(t)).collect()
            };
            if !idle.is_empty() {
                tracing::debug!(count = idle.len(), "closing idle upstream connections");
            }
            close_all(idle).await;
        }
    }

    /// Closes every connection, waiting for children to exit (or be killed).
    pub async fn shutdown(&self) {
        let all: Vec<Slot> = self.lock_slots().drain().map(|(_, slot)| slot).collect();
        close_all(all).await;
    }

    async fn connection(
        &self,
        server: &str,
        config: &ServerConfig,
        until: Instant,
    ) -> Result<(Target, Arc<Connection>), UpstreamError> {
        let target = self.policy.resolve(config).await?;
        let mut reconnected = false;
        loop {
            let slot = self.slot(&target);
            let opened = slot
                .get_or_try_init(|| async {
                    Connection::open(server, &target, &self.http, remaining(until))
                        .await
                        .map(Arc::new)
                })
                .await
                .cloned();
            match opened {
                // The child died or the session ended since last use: start afresh, once.
                Ok(connection) if connection.is_closed() && !reconnected => {
                    self.forget(&target, &slot);
                    reconnected = true;
                }
                Ok(connection) => return Ok((target, connection)),
                Err(e) => {
                    self.forget(&target, &slot);
                    return Err(e);
                }
            }
        }
    }

    /// The slot for `target`, making room if the cache is full.
    fn slot(&self, target: &Target) -> Slot {
        let mut slots = self.lock_slots();
        if let Some(slot) = slots.get(target) {
            return slot.clone();
        }
        let evicted = if slots.len() >= self.settings.max_connections {
            least_recently_used(&slots).and_then(|lru| slots.remove(&lru))
        } else {
            None
        };
        let slot = Slot::default();
        slots.insert(target.clone(), slot.clone());
        drop(slots);
        if let Some(evicted) = evicted {
            tokio::spawn(close_all(vec![evicted]));
        }
        slot
    }

    /// Drops `slot` from the cache if it is still the entry for `target`.
    fn forget(&self, target: &Target, slot: &Slot) {
        let mut slots = self.lock_slots();
        if slots
            .get(target)
            .is_some_and(|current| Arc::ptr_eq(current, slot))
        {
            slots.remove(target);
        }
    }

    /// A call that found the connection gone drops it from the cache, so the next
    /// request reconnects instead of failing the same way.
    fn forget_if_broken<T>(
        &self,
        target: &Target,
        result: Result<T, UpstreamError>,
    ) -> Result<T, UpstreamError> {
        if let Err(e) = &result {
            if e.kind() == FailureKind::Unavailable {
                let slot = self.lock_slots().get(target).cloned();
                if let Some(slot) = slot {
                    self.forget(target, &slot);
                }
            }
        }
        result
    }

    fn until(&self, deadline: Option<Duration>) -> Instant {
        Instant::now() + deadline.unwrap_or(self.settings.default_deadline)
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, HashMap<Target, Slot>> {
        // A panic while holding the lock cannot leave the map half-updated: recover it.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn remaining(until: Instant) -> Duration {
    until.saturating_duration_since(Instant::now())
}

fn least_recently_used(slots: &HashMap<Target, Slot>) -> Option<Target> {
    slots
        .iter()
        .filter_map(|(target, slot)| slot.get().map(|c| (target, c.idle_for())))
        .max_by_key(|(_, idle)| *idle)
        .map(|(target, _)| target.clone())
}

/// Closes the connections no request holds any more; one still in use closes when
/// its last request finishes and drops it (rmcp cancels on drop, killing the group).
async fn close_all(slots: Vec<Slot>) {
    let closing = slots
        .into_iter()
        .filter_map(|slot| Arc::into_inner(slot)?.into_inner())
        .filter_map(Arc::into_inner)
        .map(Connection::close);
    futures::future::join_all(closing).await;
}
