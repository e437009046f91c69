//! Named servers: the MCP servers of the operator's servers file, which hosts reach by
//! name and jobs may name instead of describing them (so a job carries no secret).
//!
//! - [`file`]: the file's format, `${VAR}` expansion and the errors that name a field.
//! - [`Registry`]: the servers in force, swapped whole on a reload (SIGHUP, or the file
//!   changing on disk, as a Kubernetes Secret or ConfigMap does); a bad new file is
//!   refused and the old one kept.
//! - [`relay`]: each server's MCP endpoint, `/servers/{name}/mcp`.
//! - [`routes`]: `GET /servers` and the endpoints' routing.

pub mod file;
pub mod relay;
pub mod routes;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

pub use file::{NamedServer, NamedServers, ServerOptions, ServersFileError, TaskMode};
pub use routes::Named;

/// How often the file is read again for changes.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);

/// The named servers in force.
pub struct Registry {
    path: Option<PathBuf>,
    current: RwLock<Loaded>,
}

struct Loaded {
    servers: Arc<NamedServers>,
    /// The file's text when it was last read, refused or not: a refused file is not
    /// refused again every few seconds, only once it changes again.
    text: String,
}

impl Registry {
    /// No servers file: no named servers.
    pub fn empty() -> Self {
        Self {
            path: None,
            current: RwLock::new(Loaded {
                servers: Arc::default(),
                text: String::new(),
            }),
        }
    }

    /// Reads the file at `path`; at start a bad file is an error, not an empty registry.
    pub fn load(path: PathBuf) -> Result<Self, ServersFileError> {
        let text = read(&path)?;
        let servers = parse(&path, &text)?;
        Ok(Self {
            path: Some(path),
            current: RwLock::new(Loaded {
                servers: Arc::new(servers),
                text,
            }),
        })
    }

    pub fn servers(&self) -> Arc<NamedServers> {
        match self.current.read() {
            Ok(loaded) => loaded.servers.clone(),
            Err(poisoned) => poisoned.into_inner().servers.clone(),
        }
    }

    /// Reads the file again if it changed (or `always`); keeps the servers in force if
    /// the new file is bad. Logs what happened. The file is parsed before the servers
    /// are locked, so requests reading them never wait for a parse.
    pub fn reload(&self, always: bool) {
        let Some(path) = &self.path else {
            return;
        };
        let text = match read(path) {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(error = %e, "servers file unreadable: the named servers in force are kept");
                return;
            }
        };
        let (unchanged, before) = {
            let loaded = match self.current.read() {
                Ok(loaded) => loaded,
                Err(poisoned) => poisoned.into_inner(),
            };
            (text == loaded.text, loaded.servers.clone())
        };
        if unchanged && !always {
            return;
        }
        let parsed = parse(path, &text);
        let mut loaded = match self.current.write() {
            Ok(loaded) => loaded,
            Err(poisoned) => poisoned.into_inner(),
        };
        loaded.text = text;
        match parsed {
            Ok(servers) => {
                let changes = servers.changes_from(&before);
                tracing::info!(
                    servers = servers.len(),
                    added = ?changes.added,
                    removed = ?changes.removed,
                    changed = ?changes.changed,
                    "servers file reloaded"
                );
                loaded.servers = Arc::new(servers);
            }
            Err(e) => {
                tracing::error!(error = %e, "servers file refused: the named servers in force are kept");
            }
        }
    }

    /// Reloads on SIGHUP and whenever the file changes, until `stop`.
    pub async fn watch(self: Arc<Self>, stop: CancellationToken) {
        if self.path.is_none() {
            return;
        }
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => Some(hangups),
            Err(e) => {
                tracing::warn!(error = %e, "no SIGHUP handler: the servers file is reloaded when it changes only");
                None
            }
        };
        let mut ticker = tokio::time::interval(WATCH_EVERY);
        loop {
            let hangup = async {
                match hangups.as_mut() {
                    Some(hangups) => hangups.recv().await,
                    None => std::future::pending().await,
                }
            };
            let always = tokio::select! {
                () = stop.cancelled() => return,
                _ = hangup => true,
                _ = ticker.tick() => false,
            };
            let registry = self.clone();
            // File reads and parsing are off the async workers.
            let _ = tokio::task::spawn_blocking(move || registry.reload(always)).await;
        }
    }
}

fn read(path: &Path) -> Result<String, ServersFileError> {
    std::fs::read_to_string(path).map_err(|e| ServersFileError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn parse(path: &Path, text: &str) -> Result<NamedServers, ServersFileError> {
    file::parse(&path.display().to_string(), text, env_var)
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}
