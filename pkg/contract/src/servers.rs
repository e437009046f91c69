//! `MCPServersConfig`: the MCP servers a job describes, each either a stdio command
//! that mcp-server spawns or a remote URL it connects to — never both.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Server name → how to reach that server. Ordered so jobs run servers in a stable order.
pub type McpServersConfig = BTreeMap<String, ServerConfig>;

/// One described MCP server.
///
/// Deserializes through [`RawServerConfig`] so that "both command and url" or
/// "neither" are refused with a message, instead of serde's untagged guesswork.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged, try_from = "RawServerConfig")]
pub enum ServerConfig {
    Stdio(StdioServer),
    Remote(RemoteServer),
}

/// A server mcp-server runs as a child process and speaks MCP to over stdin/stdout.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StdioServer {
    /// The program to run; mcp-server refuses it unless it is on its command allowlist.
    pub command: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Extra environment for the child. Values are secrets: never logged.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// A dotenv file, resolved inside mcp-server's `MCP_ENV_DIR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// A server mcp-server reaches over HTTP.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RemoteServer {
    pub url: String,
    #[serde(rename = "type", default)]
    pub transport: RemoteTransport,
    /// Sent with every request (e.g. `Authorization`). Values are secrets: never logged.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RemoteTransport {
    #[default]
    StreamableHttp,
    /// The legacy HTTP+SSE transport of protocol version 2024-11-05.
    Sse,
}

/// The wire shape of a server entry before we know which kind it is.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct RawServerConfig {
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    env_file: Option<String>,
    cwd: Option<String>,
    url: Option<String>,
    /// `stdio`, `streamable-http` (alias `http`) or `sse`; other clients' configs carry it.
    #[serde(rename = "type")]
    transport: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

impl ServerConfig {
    /// The values in it that must never be shown: env values, header values and a
    /// password in the URL.
    pub fn secrets(&self) -> crate::Secrets {
        match self {
            Self::Stdio(stdio) => crate::Secrets::new(stdio.env.values().map(String::as_str)),
            Self::Remote(remote) => {
                let url = url::Url::parse(&remote.url).ok();
                let password = url.as_ref().and_then(|u| u.password());
                crate::Secrets::new(remote.headers.values().map(String::as_str).chain(password))
            }
        }
    }
}

impl TryFrom<RawServerConfig> for ServerConfig {
    type Error = String;

    fn try_from(raw: RawServerConfig) -> Result<Self, String> {
        match (raw.command, raw.url) {
            (Some(_), Some(_)) => Err(
                "has both `command` (stdio) and `url` (remote); a server is one or the other"
                    .into(),
            ),
            (None, None) => Err("needs either `command` (stdio) or `url` (remote)".into()),
            (Some(command), None) => {
                if command.trim().is_empty() {
                    return Err("`command` is empty".into());
                }
                if let Some(other) = raw.transport.filter(|t| t != "stdio") {
                    return Err(format!("`type` {other:?} is a remote transport, but the server has a stdio `command`"));
                }
                if !raw.headers.is_empty() {
                    return Err(
                        "`headers` belong to remote servers, not to a stdio `command`".into(),
                    );
                }
                Ok(Self::Stdio(StdioServer {
                    command,
                    args: raw.args,
                    env: raw.env,
                    env_file: raw.env_file,
                    cwd: raw.cwd,
                }))
            }
            (None, Some(url)) => {
                let parsed = url::Url::parse(&url)
                    .map_err(|e| format!("`url` {url:?} is not a URL: {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(format!(
                        "`url` must be http or https, not {:?}",
                        parsed.scheme()
                    ));
                }
                if !raw.args.is_empty()
                    || !raw.env.is_empty()
                    || raw.env_file.is_some()
                    || raw.cwd.is_some()
                {
                    return Err("`args`, `env`, `envFile` and `cwd` belong to stdio servers, not to a remote `url`".into());
                }
                let transport = match raw.transport.as_deref() {
                    None | Some("streamable-http") | Some("http") => RemoteTransport::StreamableHttp,
                    Some("sse") => RemoteTransport::Sse,
                    Some(other) => {
                        return Err(format!(
                            "`type` {other:?} is not a remote transport (expected streamable-http or sse)"
                        ))
                    }
                };
                Ok(Self::Remote(RemoteServer {
                    url,
                    transport,
                    headers: raw.headers,
                }))
            }
        }
    }
}

/// Env values, header values and URLs may carry credentials: Debug shows names only.
impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stdio(s) => s.fmt(f),
            Self::Remote(r) => r.fmt(f),
        }
    }
}

impl fmt::Debug for StdioServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdioServer")
            .field("command", &self.command)
            .field("args", &self.args.len())
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("env_file", &self.env_file)
            .field("cwd", &self.cwd)
            .finish()
    }
}

impl fmt::Debug for RemoteServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = url::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned));
        f.debug_struct("RemoteServer")
            .field("host", &host)
            .field("transport", &self.transport)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}
