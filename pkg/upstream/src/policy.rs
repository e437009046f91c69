//! What a job may ask mcp-server to run or reach. Checked before any process is spawned
//! or any socket opened, so a refused job costs nothing and leaves nothing behind.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use mcp_jobs_contract::{RemoteTransport, ServerConfig};

use crate::error::UpstreamError;
use crate::redact::Secrets;

/// A comma-separated allowlist from the environment; `*` alone allows anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowlist {
    Any,
    Only(BTreeSet<String>),
}

impl Allowlist {
    pub fn parse(list: &str) -> Self {
        let entries: BTreeSet<String> = list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect();
        if entries.contains("*") {
            Self::Any
        } else {
            Self::Only(entries)
        }
    }

    pub fn allows(&self, entry: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Only(entries) => entries.contains(entry),
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Self::Only(entries) if entries.is_empty())
    }
}

/// The limits mcp-server puts on what jobs describe.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Exact `command` strings a stdio server may use (a bare name is looked up on PATH;
    /// `/usr/bin/x` matches only the entry `/usr/bin/x`).
    pub allowed_commands: Allowlist,
    /// The only directory `envFile` may name a file in; `None` refuses every `envFile`.
    pub env_dir: Option<PathBuf>,
    /// Hosts (`name` or `name:port`) remote servers may be on.
    pub allowed_remote_hosts: Allowlist,
    /// Variables of mcp-server's own environment that children inherit; nothing else
    /// is inherited, so mcp-server's secrets never reach a child.
    pub inherited_env: Vec<String>,
}

/// A server config resolved under the policy: the exact process or endpoint to use.
/// Equal targets share one connection; any difference (an env value, the contents of
/// the env file) gets its own.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
        cwd: Option<PathBuf>,
    },
    Remote {
        url: String,
        transport: RemoteTransport,
        headers: BTreeMap<String, String>,
    },
}

/// A target together with the values in it that must not leak.
pub struct Resolved {
    pub target: Target,
    pub secrets: Secrets,
}

impl Policy {
    /// Checks `config` against the policy and reads its env file.
    pub async fn resolve(&self, config: &ServerConfig) -> Result<Resolved, UpstreamError> {
        match config {
            ServerConfig::Stdio(stdio) => {
                if !self.allowed_commands.allows(&stdio.command) {
                    return Err(UpstreamError::CommandNotAllowed {
                        command: stdio.command.clone(),
                    });
                }
                let mut env: BTreeMap<String, String> = self
                    .inherited_env
                    .iter()
                    .filter_map(|name| std::env::var(name).ok().map(|value| (name.clone(), value)))
                    .collect();
                let from_file = match &stdio.env_file {
                    Some(path) => self.read_env_file(path).await?,
                    None => Vec::new(),
                };
                // What the job supplied is secret; what mcp-server itself passes on is not.
                let secrets = Secrets::new(
                    from_file
                        .iter()
                        .map(|(_, v)| v.as_str())
                        .chain(stdio.env.values().map(String::as_str)),
                );
                env.extend(from_file);
                env.extend(stdio.env.clone());
                Ok(Resolved {
                    target: Target::Stdio {
                        command: stdio.command.clone(),
                        args: stdio.args.clone(),
                        env,
                        cwd: stdio.cwd.as_ref().map(PathBuf::from),
                    },
                    secrets,
                })
            }
            ServerConfig::Remote(remote) => {
                let url =
                    url::Url::parse(&remote.url).map_err(|e| UpstreamError::InvalidRemote {
                        reason: format!("url is not valid: {e}"),
                    })?;
                let host = url.host_str().unwrap_or_default();
                let host_port = url
                    .port_or_known_default()
                    .map(|port| format!("{host}:{port}"))
                    .unwrap_or_else(|| host.to_owned());
                if !self.allowed_remote_hosts.allows(host)
                    && !self.allowed_remote_hosts.allows(&host_port)
                {
                    return Err(UpstreamError::HostNotAllowed { host: host_port });
                }
                // Bad headers are refused here, before a pool slot is taken for them.
                crate::connection::header_map(&remote.headers)?;
                let secrets = Secrets::new(
                    remote
                        .headers
                        .values()
                        .map(String::as_str)
                        .chain(url.password()),
                );
                Ok(Resolved {
                    target: Target::Remote {
                        url: remote.url.clone(),
                        transport: remote.transport,
                        headers: remote.headers.clone(),
                    },
                    secrets,
                })
            }
        }
    }

    /// Reads a dotenv file that must resolve (after following symlinks) inside `env_dir`.
    async fn read_env_file(&self, path: &str) -> Result<Vec<(String, String)>, UpstreamError> {
        let Some(env_dir) = &self.env_dir else {
            return Err(UpstreamError::EnvDirNotConfigured {
                path: path.to_owned(),
            });
        };
        let unreadable = |reason: String| UpstreamError::EnvFileUnreadable {
            path: path.to_owned(),
            reason,
        };
        let dir = tokio::fs::canonicalize(env_dir)
            .await
            .map_err(|e| unreadable(format!("MCP_ENV_DIR {}: {e}", env_dir.display())))?;
        let resolved = match tokio::fs::canonicalize(dir.join(path)).await {
            Ok(resolved) => resolved,
            // A path that does not exist inside the directory is "unreadable"; one that
            // points outside it is refused as such, without saying whether it exists.
            Err(_) if !lexically_inside(Path::new(path)) => {
                return Err(UpstreamError::EnvFileOutsideDir {
                    path: path.to_owned(),
                })
            }
            Err(e) => return Err(unreadable(e.to_string())),
        };
        if !resolved.starts_with(&dir) {
            return Err(UpstreamError::EnvFileOutsideDir {
                path: path.to_owned(),
            });
        }
        let contents = tokio::fs::read(&resolved)
            .await
            .map_err(|e| unreadable(e.to_string()))?;
        dotenvy::from_read_iter(contents.as_slice())
            .map(|item| item.map_err(|e| unreadable(format!("not a dotenv file: {e}"))))
            .collect()
    }
}

/// Whether `relative` stays inside the directory it is joined to, judged from the
/// path alone (no `..` climbing above it, not absolute).
fn lexically_inside(relative: &Path) -> bool {
    use std::path::Component;
    let mut depth = 0usize;
    for component in relative.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => depth -= 1,
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

impl Target {
    /// What the target is, safe to show: the command (its args may hold secrets), or
    /// the remote's origin and transport.
    pub fn label(&self) -> String {
        match self {
            Self::Stdio { command, .. } => command.clone(),
            Self::Remote { url, transport, .. } => {
                let origin = url::Url::parse(url)
                    .map(|u| u.origin().ascii_serialization())
                    .unwrap_or_default();
                let transport = match transport {
                    RemoteTransport::StreamableHttp => "streamable-http",
                    RemoteTransport::Sse => "sse",
                };
                format!("{origin} ({transport})")
            }
        }
    }
}

/// Env values and headers are secrets: Debug shows names only.
impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stdio {
                command,
                args,
                env,
                cwd,
            } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", &args.len())
                .field("env", &env.keys().collect::<Vec<_>>())
                .field("cwd", cwd)
                .finish(),
            Self::Remote {
                url,
                transport,
                headers,
            } => f
                .debug_struct("Remote")
                .field(
                    "host",
                    &url::Url::parse(url)
                        .ok()
                        .and_then(|u| u.host_str().map(str::to_owned)),
                )
                .field("transport", transport)
                .field("headers", &headers.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_parses_and_matches_exactly() {
        let list = Allowlist::parse(" uvx, mcp-server-time ,,");
        assert!(list.allows("uvx"));
        assert!(!list.allows("/tmp/uvx"));
        assert!(!list.allows("sh"));
        assert_eq!(Allowlist::parse("a,*"), Allowlist::Any);
        assert!(Allowlist::parse("").is_empty());
    }

    #[test]
    fn lexical_containment() {
        assert!(lexically_inside(Path::new("a.env")));
        assert!(lexically_inside(Path::new("sub/../a.env")));
        assert!(!lexically_inside(Path::new("../a.env")));
        assert!(!lexically_inside(Path::new("sub/../../a.env")));
        assert!(!lexically_inside(Path::new("/etc/passwd")));
    }
}
