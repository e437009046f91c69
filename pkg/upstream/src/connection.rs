//! One live MCP client session with an upstream server: a stdio child in its own
//! process group, or a Streamable HTTP session with a remote server.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use process_wrap::tokio::{CommandWrap, KillOnDrop, ProcessGroup};
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    JsonObject, RequestMetaObject, ServerPeerInfo, Tool,
};
use rmcp::service::{RunningService, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::error::UpstreamError;
use crate::policy::Target;

pub(crate) struct Connection {
    server: String,
    service: RunningService<RoleClient, ClientConfig>,
    last_used: Mutex<Instant>,
}

impl Connection {
    /// Starts or dials `target` and completes the MCP initialize handshake within `deadline`.
    pub(crate) async fn open(
        server: &str,
        target: &Target,
        http: &reqwest::Client,
        deadline: Duration,
    ) -> Result<Self, UpstreamError> {
        let client = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("mcp-jobs", env!("CARGO_PKG_VERSION")),
        );
        let handshake = async {
            match target {
                Target::Stdio {
                    command,
                    args,
                    env,
                    cwd,
                } => {
                    client
                        .serve(spawn_child(server, command, args, env, cwd.as_deref())?)
                        .await
                }
                Target::Remote { url, headers } => {
                    let config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                        .custom_headers(header_map(headers)?);
                    client
                        .serve(StreamableHttpClientTransport::with_client(
                            http.clone(),
                            config,
                        ))
                        .await
                }
            }
            .map_err(|e| UpstreamError::Handshake {
                server: server.to_owned(),
                reason: e.to_string(),
            })
        };
        let service = tokio::time::timeout(deadline, handshake)
            .await
            .map_err(|_| UpstreamError::Timeout {
                server: server.to_owned(),
                after: deadline,
            })??;
        Ok(Self {
            server: server.to_owned(),
            service,
            last_used: Mutex::new(Instant::now()),
        })
    }

    /// What the server said about itself in the initialize handshake.
    pub(crate) fn info(&self) -> Option<ServerPeerInfo> {
        self.service.peer_info().map(|info| (*info).clone())
    }

    pub(crate) async fn list_tools(&self, deadline: Duration) -> Result<Vec<Tool>, UpstreamError> {
        self.with_deadline(deadline, self.service.list_all_tools())
            .await
    }

    pub(crate) async fn call_tool(
        &self,
        tool: &str,
        arguments: JsonObject,
        meta: Option<RequestMetaObject>,
        deadline: Duration,
    ) -> Result<CallToolResult, UpstreamError> {
        let mut params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        params.meta = meta;
        self.with_deadline(deadline, self.service.call_tool(params))
            .await
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.service.peer().is_transport_closed()
    }

    pub(crate) fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }

    /// Ends the session: closes the child's stdin, then SIGTERM, then SIGKILL to its group.
    pub(crate) async fn close(self) {
        if let Err(e) = self.service.cancel().await {
            tracing::warn!(server = %self.server, error = %e, "closing upstream connection failed");
        }
    }

    async fn with_deadline<T>(
        &self,
        deadline: Duration,
        request: impl std::future::Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, UpstreamError> {
        if let Ok(mut last_used) = self.last_used.lock() {
            *last_used = Instant::now();
        }
        let server = self.server.clone();
        match tokio::time::timeout(deadline, request).await {
            Err(_) => Err(UpstreamError::Timeout {
                server,
                after: deadline,
            }),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(ServiceError::McpError(error))) => Err(UpstreamError::Rejected {
                server,
                message: error.message.into_owned(),
            }),
            Ok(Err(ServiceError::Timeout { timeout })) => Err(UpstreamError::Timeout {
                server,
                after: timeout,
            }),
            Ok(Err(other)) => Err(UpstreamError::Disconnected {
                server,
                reason: other.to_string(),
            }),
        }
    }
}

/// Spawns a stdio server as the leader of its own process group, so that closing it
/// also ends whatever it started (`sh -c`, `npx`, `uvx` wrappers), and killed on drop.
fn spawn_child(
    server: &str,
    command: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
    cwd: Option<&Path>,
) -> Result<TokioChildProcess, UpstreamError> {
    let mut cmd = tokio::process::Command::new(command);
    cmd.args(args).env_clear().envs(env);
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    let mut wrapped = CommandWrap::from(cmd);
    wrapped.wrap(ProcessGroup::leader()).wrap(KillOnDrop);
    let (child, stderr) = TokioChildProcess::builder(wrapped)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| UpstreamError::Spawn {
            command: command.to_owned(),
            source,
        })?;
    if let Some(stderr) = stderr {
        let server = server.to_owned();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(target: "upstream_stderr", server = %server, "{line}");
            }
        });
    }
    Ok(child)
}

fn header_map(
    headers: &BTreeMap<String, String>,
) -> Result<HashMap<HeaderName, HeaderValue>, UpstreamError> {
    headers
        .iter()
        .map(|(name, value)| {
            let name =
                HeaderName::try_from(name.as_str()).map_err(|_| UpstreamError::InvalidRemote {
                    reason: format!("header name {name:?} is not valid"),
                })?;
            let value = HeaderValue::try_from(value.as_str()).map_err(|_| {
                UpstreamError::InvalidRemote {
                    reason: format!("header {name} has a value that is not valid in HTTP"),
                }
            })?;
            Ok((name, value))
        })
        .collect()
}
