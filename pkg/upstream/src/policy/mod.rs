//! What a job may ask mcp-server to run or reach. Checked before any process is spawned
//! or any socket opened, so a refused job costs nothing and leaves nothing behind.

mod commands;
mod env;
mod jail;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use mcp_jobs_contract::{RemoteTransport, ServerConfig, StdioServer};

use crate::error::UpstreamError;
use mcp_jobs_contract::Secrets;

pub use commands::{CommandAllowlist, CommandRefusal, CommandRule};
pub use env::{EnvRefusal, EnvRules, CODE_LOADING_ENV};
use jail::{resolve_inside, Escape};

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
    /// `/usr/bin/x` matches only the entry `/usr/bin/x`), each with the leading
    /// arguments it must be given, if the entry pins any.
    pub allowed_commands: CommandAllowlist,
    /// What the variables a job sets (`env`, `envFile`) may be.
    pub allowed_env: EnvRules,
    /// The only directory `envFile` may name a file in; `None` refuses every `envFile`.
    pub env_dir: Option<PathBuf>,
    /// The only directory a job's `cwd` may be in; `None` refuses every `cwd`.
    pub work_dir: Option<PathBuf>,
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

/// Who vouches for a server config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trust {
    /// A job described it: every allowlist applies.
    #[default]
    Job,
    /// The operator's servers file marks it `trusted`: the command, remote-host and
    /// env allowlists do not apply (`envFile` and `cwd` stay inside their directories).
    Operator,
}

impl Policy {
    /// Checks `config`, as a job describes it, against the policy and reads its env file.
    pub async fn resolve(&self, config: &ServerConfig) -> Result<Resolved, UpstreamError> {
        self.resolve_as(config, Trust::Job).await
    }

    /// [`Policy::resolve`] for a config `trust` vouches for.
    pub async fn resolve_as(
        &self,
        config: &ServerConfig,
        trust: Trust,
    ) -> Result<Resolved, UpstreamError> {
        let checked = trust == Trust::Job;
        match config {
            ServerConfig::Stdio(stdio) => self.resolve_stdio(stdio, checked).await,
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
                if checked
                    && !self.allowed_remote_hosts.allows(host)
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

    /// The child a stdio config describes, if the policy allows every part of it: the
    /// command and its leading arguments and each variable it sets (when `checked`), its
    /// working directory.
    async fn resolve_stdio(
        &self,
        stdio: &StdioServer,
        checked: bool,
    ) -> Result<Resolved, UpstreamError> {
        let allowed = if checked {
            self.allowed_commands.check(&stdio.command, &stdio.args)
        } else {
            Ok(())
        };
        allowed.map_err(|refusal| match refusal {
            CommandRefusal::NotListed => UpstreamError::CommandNotAllowed {
                command: stdio.command.clone(),
            },
            CommandRefusal::ArgumentsNotPinned { allowed } => UpstreamError::ArgumentsNotPinned {
                command: stdio.command.clone(),
                allowed,
            },
        })?;
        if let Some(index) = stdio.args.iter().position(|a| a.contains('\0')) {
            return Err(UpstreamError::NulInArgument {
                command: stdio.command.clone(),
                index,
            });
        }
        let from_file = match &stdio.env_file {
            Some(path) => self.read_env_file(path).await?,
            None => Vec::new(),
        };
        let file_origin = stdio
            .env_file
            .as_ref()
            .map(|path| format!(" (from envFile {path:?})"))
            .unwrap_or_default();
        let job_env = from_file
            .iter()
            .map(|(name, value)| (name, value, file_origin.as_str()))
            .chain(stdio.env.iter().map(|(name, value)| (name, value, "")));
        for (name, value, origin) in job_env.filter(|_| checked) {
            self.allowed_env.check(name, value).map_err(|refusal| {
                UpstreamError::EnvNotAllowed {
                    name: name.clone(),
                    origin: origin.to_owned(),
                    reason: env_refusal_reason(refusal),
                }
            })?;
        }
        let cwd = match &stdio.cwd {
            Some(cwd) => Some(self.resolve_cwd(cwd).await?),
            None => None,
        };
        // What the job supplied is secret; what mcp-server itself passes on is not.
        let secrets = Secrets::new(
            from_file
                .iter()
                .map(|(_, v)| v.as_str())
                .chain(stdio.env.values().map(String::as_str)),
        );
        let mut env: BTreeMap<String, String> = self
            .inherited_env
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|value| (name.clone(), value)))
            .collect();
        env.extend(from_file);
        env.extend(stdio.env.clone());
        Ok(Resolved {
            target: Target::Stdio {
                command: stdio.command.clone(),
                args: stdio.args.clone(),
                env,
                cwd,
            },
            secrets,
        })
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
        let resolved = resolve_inside(env_dir, path)
            .await
            .map_err(|escape| match escape {
                Escape::Outside => UpstreamError::EnvFileOutsideDir {
                    path: path.to_owned(),
                },
                Escape::Unresolvable(reason) => unreadable(reason),
            })?;
        let contents = tokio::fs::read(&resolved)
            .await
            .map_err(|e| unreadable(e.to_string()))?;
        if let Some(line) = substituting_line(&contents) {
            return Err(UpstreamError::EnvFileSubstitutes {
                path: path.to_owned(),
                line,
            });
        }
        dotenvy::from_read_iter(contents.as_slice())
            .map(|item| item.map_err(|e| unreadable(format!("not a dotenv file: {e}"))))
            .collect()
    }

    /// A `cwd` that resolves (after following symlinks) to a directory inside `work_dir`.
    async fn resolve_cwd(&self, cwd: &str) -> Result<PathBuf, UpstreamError> {
        let Some(work_dir) = &self.work_dir else {
            return Err(UpstreamError::WorkDirNotConfigured {
                cwd: cwd.to_owned(),
            });
        };
        let unusable = |reason: String| UpstreamError::CwdUnusable {
            cwd: cwd.to_owned(),
            reason,
        };
        let resolved = resolve_inside(work_dir, cwd)
            .await
            .map_err(|escape| match escape {
                Escape::Outside => UpstreamError::CwdOutsideDir {
                    cwd: cwd.to_owned(),
                },
                Escape::Unresolvable(reason) => unusable(reason),
            })?;
        match tokio::fs::metadata(&resolved).await {
            Ok(metadata) if metadata.is_dir() => Ok(resolved),
            Ok(_) => Err(unusable("not a directory".into())),
            Err(e) => Err(unusable(e.to_string())),
        }
    }
}

/// The first line (1-based) of a dotenv file with a `$` that dotenv would expand.
/// dotenvy fills `${VAR}` from mcp-server's own environment, which would hand its
/// secrets to the child; single quotes and a backslash keep a `$` literal.
fn substituting_line(contents: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(contents);
    text.lines().enumerate().find_map(|(number, line)| {
        if line.trim_start().starts_with('#') {
            return None;
        }
        let mut chars = line.chars();
        let mut single_quoted = false;
        while let Some(c) = chars.next() {
            match c {
                '\'' => single_quoted = !single_quoted,
                '\\' if !single_quoted => {
                    chars.next();
                }
                '$' if !single_quoted => return Some(number + 1),
                _ => {}
            }
        }
        None
    })
}

fn env_refusal_reason(refusal: EnvRefusal) -> String {
    match refusal {
        EnvRefusal::InvalidName => "not a portable variable name ([A-Za-z_][A-Za-z0-9_]*)".into(),
        EnvRefusal::LoadsCode(why) => {
            format!("{why}; MCP_ALLOWED_ENV lets an operator allow it")
        }
        EnvRefusal::NotListed => "not on MCP_ALLOWED_ENV".into(),
        EnvRefusal::NulInValue => "its value holds a NUL byte".into(),
    }
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
    fn env_files_may_not_expand_variables() {
        assert_eq!(
            substituting_line(b"A=1\n# cost: $5\nB='$HOME'\nC=\\$X\n"),
            None
        );
        assert_eq!(substituting_line(b"A=1\nB=${MCP_API_KEYS}\n"), Some(2));
        assert_eq!(substituting_line(b"B=\"x $HOME\"\n"), Some(1));
        assert_eq!(substituting_line(b"B='a'$HOME\n"), Some(1));
    }

    #[test]
    fn allowlist_parses_and_matches_exactly() {
        let list = Allowlist::parse(" tools.internal, mcp.example.com:443 ,,");
        assert!(list.allows("tools.internal"));
        assert!(!list.allows("tools.internal:80"));
        assert!(!list.allows("evil"));
        assert_eq!(Allowlist::parse("a,*"), Allowlist::Any);
        assert!(Allowlist::parse("").is_empty());
    }

    /// A job is held to every allowlist; the operator's trusted server to none of them,
    /// but still to the directories its `cwd` may be in.
    #[tokio::test]
    async fn operator_trust_lifts_the_allowlists_and_nothing_else() {
        let policy = Policy {
            allowed_commands: CommandAllowlist::parse("mcp-server-time"),
            allowed_env: EnvRules::parse(None),
            env_dir: None,
            work_dir: None,
            allowed_remote_hosts: Allowlist::parse(""),
            inherited_env: Vec::new(),
        };
        let config = |json: serde_json::Value| -> ServerConfig {
            serde_json::from_value(json).expect("a server config")
        };
        let shell = config(serde_json::json!({"command": "sh", "env": {"LD_PRELOAD": "/x.so"}}));
        let remote = config(serde_json::json!({"url": "https://tools.internal/mcp"}));
        let elsewhere = config(serde_json::json!({"command": "sh", "cwd": "/tmp"}));
        for refused in [&shell, &remote] {
            assert!(policy.resolve_as(refused, Trust::Job).await.is_err());
            assert!(policy.resolve_as(refused, Trust::Operator).await.is_ok());
        }
        assert!(matches!(
            policy.resolve_as(&elsewhere, Trust::Operator).await,
            Err(UpstreamError::WorkDirNotConfigured { .. })
        ));
    }
}
