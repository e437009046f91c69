//! One live MCP client session with an upstream server: a stdio child in its own
//! process group, or a remote server over Streamable HTTP or legacy SSE.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use process_wrap::tokio::{CommandWrap, KillOnDrop, ProcessGroup};
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::handler::client::progress::ProgressDispatcher;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig,
    ClientRequest, Implementation, JsonObject, PingRequest, ProgressNotificationParam,
    RequestMetaObject, ServerPeerInfo, ServerResult, Tool,
};
use rmcp::service::{PeerRequestOptions, RunningService, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{IntoTransport, Transport};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::task::AbortOnDropHandle;

use mcp_jobs_contract::RemoteTransport;

use crate::cause;
use crate::error::UpstreamError;
use crate::legacy_sse::LegacySseTransport;
use crate::policy::Target;
use crate::progress::{relay_progress, Progress, ProgressSink, ProgressTap};
use mcp_jobs_contract::Secrets;

/// Our side of an upstream session: announces mcp-jobs. Progress notifications reach
/// their calls through the [`ProgressTap`] under the session, not through a handler.
struct UpstreamClient {
    info: ClientConfig,
}

impl ClientHandler for UpstreamClient {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }
}

/// How long a child closing politely (stdin closed) gets before its group is killed.
/// Short, because a closing child still holds its slot in the pool.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

pub(crate) struct Connection {
    server: String,
    service: RunningService<RoleClient, UpstreamClient>,
    progress: ProgressDispatcher,
    /// The stdio child's process group (its pid: it leads the group); `None` for remotes.
    process_group: Option<Pid>,
}

impl Connection {
    /// Starts or dials `target` and completes the MCP initialize handshake within `deadline`.
    pub(crate) async fn open(
        server: &str,
        target: &Target,
        secrets: &Secrets,
        http: &reqwest::Client,
        deadline: Duration,
    ) -> Result<Self, UpstreamError> {
        let progress = ProgressDispatcher::new();
        let client = UpstreamClient {
            info: ClientConfig::new(
                ClientCapabilities::default(),
                Implementation::new("mcp-jobs", env!("CARGO_PKG_VERSION")),
            ),
        };
        let handshake_failed = |reason: String| UpstreamError::Handshake {
            server: server.to_owned(),
            reason: secrets.redact(&reason).into_owned(),
        };
        let mut process_group = None;
        let handshake = async {
            match target {
                Target::Stdio {
                    command,
                    args,
                    env,
                    cwd,
                } => {
                    let child = spawn_child(server, command, args, env, cwd.as_deref(), secrets)?;
                    process_group = child.id().map(|pid| Pid::from_raw(pid as i32));
                    serve_detached(client, tapped(child, &progress)).await
                }
                Target::Remote {
                    url,
                    transport: RemoteTransport::StreamableHttp,
                    headers,
                } => {
                    let config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                        .custom_headers(header_map(headers)?);
                    let transport =
                        StreamableHttpClientTransport::with_client(http.clone(), config);
                    serve_detached(client, tapped(transport, &progress)).await
                }
                Target::Remote {
                    url,
                    transport: RemoteTransport::Sse,
                    headers,
                } => {
                    let transport = LegacySseTransport::connect(
                        http.clone(),
                        url,
                        header_map(headers)?.into_iter().collect(),
                    )
                    .await
                    .map_err(|e| handshake_failed(e.to_string()))?;
                    serve_detached(client, tapped(transport, &progress)).await
                }
            }
            .map_err(handshake_failed)
        };
        let failure = match tokio::time::timeout(deadline, handshake).await {
            Ok(Ok(service)) => {
                return Ok(Self {
                    server: server.to_owned(),
                    service,
                    progress,
                    process_group,
                })
            }
            Ok(Err(e)) => e,
            Err(_) => UpstreamError::Timeout {
                server: server.to_owned(),
                after: deadline,
            },
        };
        // Whatever the child started before failing goes with it.
        kill_group(process_group);
        Err(failure)
    }

    /// The name the job gave the server this session was opened for.
    pub(crate) fn server(&self) -> &str {
        &self.server
    }

    /// What the server said about itself in the initialize handshake.
    pub(crate) fn info(&self) -> Option<ServerPeerInfo> {
        self.service.peer_info().map(|info| (*info).clone())
    }

    pub(crate) async fn list_tools(&self, deadline: Duration) -> Result<Vec<Tool>, UpstreamError> {
        self.with_deadline(deadline, self.service.list_all_tools())
            .await
    }

    /// Calls `tool`; with a `progress` sink, asks the upstream for progress notifications
    /// and forwards them there until the call ends.
    pub(crate) async fn call_tool(
        &self,
        tool: &str,
        arguments: JsonObject,
        meta: Option<RequestMetaObject>,
        progress: Option<&ProgressSink>,
        deadline: Duration,
    ) -> Result<CallToolResult, UpstreamError> {
        let mut params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        let Some(sink) = progress else {
            params.meta = meta;
            return self
                .with_deadline(deadline, self.service.call_tool(params))
                .await;
        };
        let peer = self.service.peer();
        let call = async {
            let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
            let mut options = PeerRequestOptions::no_options();
            options.meta = meta;
            let handle = peer.send_request_with_option(request, options).await?;
            // rmcp picks the progress token. The upstream cannot answer before the request
            // has crossed to it, so subscribing right after sending misses nothing.
            let updates = self.progress.subscribe(handle.progress_token.clone()).await;
            Ok((handle, updates))
        };
        let until = tokio::time::Instant::now() + deadline;
        let (handle, updates) = self.with_deadline(deadline, call).await?;
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        let response = self.with_deadline(left, handle.await_response());
        // The tap under the session delivers each update before the result is read,
        // so every update sent before the result is relayed before it.
        let response = relay_progress(response, updates, |update: ProgressNotificationParam| {
            // A caller that went away just stops listening; the call goes on.
            let _ = sink.send(Progress {
                progress: update.progress,
                total: update.total,
                message: update.message,
            });
            std::future::ready(())
        })
        .await?;
        match response {
            ServerResult::CallToolResult(result) => Ok(result),
            other => Err(UpstreamError::Disconnected {
                server: self.server.clone(),
                reason: format!("the server answered a tool call with {other:?}"),
            }),
        }
    }

    /// Whether the server still answers a ping within `deadline`: tells a hung child
    /// from one whose tool is merely slow.
    pub(crate) async fn answers_ping(&self, deadline: Duration) -> bool {
        let ping = self
            .service
            .send_request(ClientRequest::PingRequest(PingRequest::default()));
        matches!(tokio::time::timeout(deadline, ping).await, Ok(Ok(_)))
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.service.peer().is_transport_closed()
    }

    /// Kills the child's whole process group at once; for children that crashed or hung.
    pub(crate) fn kill(&self) {
        kill_group(self.process_group);
    }

    /// Ends the session: closes the child's stdin and gives it [`CLOSE_GRACE`] to exit,
    /// then kills its whole process group (which also ends a wrapper's leftovers).
    pub(crate) async fn close(self) {
        let closed = tokio::time::timeout(CLOSE_GRACE, self.service.cancel()).await;
        if let Ok(Err(e)) = closed {
            tracing::warn!(server = %self.server, error = %e, "closing upstream connection failed");
        }
        kill_group(self.process_group);
    }

    async fn with_deadline<T>(
        &self,
        deadline: Duration,
        request: impl std::future::Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, UpstreamError> {
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
                reason: cause::of_request(&other),
            }),
        }
    }
}

/// SIGKILL to a process group; one that is already gone is fine.
fn kill_group(group: Option<Pid>) {
    if let Some(group) = group {
        let _ = killpg(group, Signal::SIGKILL);
    }
}

/// Spawns a stdio server as the leader of its own process group, so that closing it
/// also ends whatever it started (`sh -c`, `npx`, `uvx` wrappers), and killed on drop.
/// Its stderr goes to our log under the server's name, secrets taken out.
fn spawn_child(
    server: &str,
    command: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
    cwd: Option<&Path>,
    secrets: &Secrets,
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
        let secrets = secrets.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(target: "upstream_stderr", server = %server, "{}", secrets.redact(&line));
            }
        });
    }
    Ok(child)
}

/// `transport` with progress delivered in wire order (see [`ProgressTap`]).
fn tapped<T, E, A>(
    transport: T,
    progress: &ProgressDispatcher,
) -> ProgressTap<impl Transport<RoleClient, Error = E>>
where
    T: IntoTransport<RoleClient, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    ProgressTap::new(transport.into_transport(), progress.clone())
}

/// Runs the MCP handshake in a task of its own. The session outlives the call that
/// happens to start it, so its long-lived tasks must not hang under (and hold open)
/// that call's span. Dropping the future aborts the handshake.
async fn serve_detached<T, E, A>(
    client: UpstreamClient,
    transport: T,
) -> Result<RunningService<RoleClient, UpstreamClient>, String>
where
    T: IntoTransport<RoleClient, E, A> + Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
    A: 'static,
{
    match AbortOnDropHandle::new(tokio::spawn(client.serve(transport))).await {
        Ok(served) => served.map_err(|e| cause::of_handshake(&e)),
        Err(e) => Err(format!("the handshake task ended: {e}")),
    }
}

pub(crate) fn header_map(
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
