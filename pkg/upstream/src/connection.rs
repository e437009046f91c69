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
    CallToolRequest, CallToolRequestParams, CallToolResponse, CancelledNotificationParam,
    ClientCapabilities, ClientConfig, ClientRequest, DiscoverRequest, DiscoverRequestParams,
    ErrorCode, Implementation, PingRequest, ProgressNotificationParam, ProtocolVersion, RequestId,
    ServerPeerInfo, ServerResult, Tool,
};
use rmcp::service::{
    ClientInitializeError, ClientLifecycleMode, ClientServiceExt, Peer, PeerRequestOptions,
    RunningService, ServiceError,
};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{IntoTransport, Transport};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::task::AbortOnDropHandle;

use mcp_jobs_contract::RemoteTransport;

use crate::cause;
use crate::error::UpstreamError;
use crate::legacy_sse::LegacySseTransport;
use crate::policy::Target;
use crate::progress::{relay_progress, Progress, ProgressSink, ProgressTap};
use crate::remaining;
use crate::revision::{Lifecycle, Revisions};
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
    /// Starts or dials `target` and opens an MCP session within `deadline`, in the
    /// revision the server speaks: remembered in `revisions`, or found out by a probe.
    pub(crate) async fn open(
        server: &str,
        target: &Target,
        secrets: &Secrets,
        http: &reqwest::Client,
        deadline: Duration,
        revisions: &Revisions,
    ) -> Result<Self, UpstreamError> {
        let dialer = Dialer {
            server,
            target,
            secrets,
            http,
        };
        let timed_out = || UpstreamError::Timeout {
            server: server.to_owned(),
            after: deadline,
        };
        let until = tokio::time::Instant::now() + deadline;
        // Legacy SSE predates 2026-07-28: it only has the handshake.
        let known = match target {
            Target::Remote {
                transport: RemoteTransport::Sse,
                ..
            } => Some(Lifecycle::Handshake),
            _ => revisions.of(target),
        };
        if let Some(lifecycle) = known {
            return match dialer.connect(lifecycle.mode(), deadline).await {
                Ok(connection) => Ok(connection),
                Err(Failure::TimedOut) => Err(timed_out()),
                Err(Failure::Refused(reason)) => {
                    revisions.forget(target);
                    Err(dialer.handshake_failed(format!(
                        "{reason} (it spoke {} before; the next connection asks again)",
                        lifecycle.revision()
                    )))
                }
                Err(Failure::Other(e)) => Err(e),
            };
        }
        // First contact: server/discover, and initialize on the same connection if the
        // server answers that it does not know discover (rmcp's Auto lifecycle). A stdio
        // server that stays silent on methods it does not know would wait for rmcp's
        // fixed 10 s, so one that has not answered within PROBE gets a second start,
        // with initialize, racing the first: a silent legacy server is reached by the
        // second, a modern one merely slow to start by the first. A second start that
        // answers first does not settle it: on a loaded machine a modern server's first
        // start can lose the race it began PROBE ahead, so it gets as long again as the
        // second took before the older revision is settled for. A second start refused
        // (a modern-only server) leaves it to the first. The loser is dropped (and its
        // child killed). Over HTTP every request gets an answer: no race.
        let mut probe = std::pin::pin!(dialer.connect(auto_mode(), deadline));
        let hedge_after = match target {
            Target::Stdio { .. } => PROBE.min(deadline),
            Target::Remote { .. } => deadline,
        };
        let opened = match tokio::time::timeout(hedge_after, probe.as_mut()).await {
            Ok(opened) => opened,
            Err(_) if hedge_after >= deadline => Err(Failure::TimedOut),
            Err(_) => {
                tracing::info!(
                    server,
                    "upstream answered no server/discover within {PROBE:?}: starting it again with initialize, in parallel"
                );
                let hedged_at = tokio::time::Instant::now();
                let mut hedge =
                    std::pin::pin!(dialer.connect(Lifecycle::Handshake.mode(), remaining(until)));
                tokio::select! {
                    opened = probe.as_mut() => match opened {
                        Ok(connection) => Ok(connection),
                        Err(_) => hedge.await,
                    },
                    opened = hedge.as_mut() => match opened {
                        Ok(legacy) => {
                            let grace = hedged_at.elapsed().min(remaining(until));
                            match tokio::time::timeout(grace, probe.as_mut()).await {
                                Ok(Ok(first)) => Ok(first),
                                _ => Ok(legacy),
                            }
                        }
                        // It refused initialize: no legacy server. The first start
                        // is the one to wait for, and should it fail too (rmcp's Auto
                        // gives discover a fixed 10 s, then tries initialize, which
                        // such a server refuses, or trips over discover's late
                        // answer), a last start asks server/discover alone.
                        Err(Failure::Refused(_)) => match probe.await {
                            Ok(modern) => Ok(modern),
                            Err(_) => {
                                dialer
                                    .connect(Lifecycle::Stateless.mode(), remaining(until))
                                    .await
                            }
                        },
                        Err(_) => probe.await,
                    },
                }
            }
        };
        match opened {
            Ok(connection) => {
                connection.remember_in(revisions, target);
                Ok(connection)
            }
            Err(Failure::TimedOut) => Err(timed_out()),
            Err(Failure::Refused(reason)) => Err(dialer.unsupported(reason)),
            Err(Failure::Other(e)) => Err(e),
        }
    }

    /// Notes the revision a server met for the first time agreed to, for its next
    /// connections.
    fn remember_in(&self, revisions: &Revisions, target: &Target) {
        let lifecycle = self.lifecycle();
        revisions.remember(target, lifecycle);
        tracing::debug!(server = %self.server, ?lifecycle, "upstream revision learned");
    }

    /// The lifecycle this session was opened with, by the revision the server agreed to.
    fn lifecycle(&self) -> Lifecycle {
        match self.service.peer_info() {
            Some(info) if !info.protocol_version.has_initialize() => Lifecycle::Stateless,
            _ => Lifecycle::Handshake,
        }
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

    /// Makes one `tools/call` round: the tool's result, or (2026-07-28) the input it asks
    /// its caller for, which only the caller can give. With a `progress` sink, asks the
    /// upstream for progress notifications and forwards them there until the call ends.
    pub(crate) async fn call_tool(
        &self,
        params: CallToolRequestParams,
        progress: Option<&ProgressSink>,
        deadline: Duration,
    ) -> Result<CallToolResponse, UpstreamError> {
        let until = tokio::time::Instant::now() + deadline;
        let first = self.call_once(params.clone(), progress, deadline).await;
        let Err(UpstreamError::HeaderMismatch { .. }) = first else {
            return first;
        };
        // rmcp mirrors a tool's `x-mcp-header` arguments into Mcp-Param-* headers from
        // the tool list this session has seen, and a call made before any tools/list
        // goes without them. The spec's recovery: list the tools, then try once more.
        self.list_tools(remaining(until)).await?;
        self.call_once(params, progress, remaining(until)).await
    }

    async fn call_once(
        &self,
        mut params: CallToolRequestParams,
        progress: Option<&ProgressSink>,
        deadline: Duration,
    ) -> Result<CallToolResponse, UpstreamError> {
        let peer = self.service.peer();
        let call = async {
            // Sent as options, the caller's `_meta` goes out as it is: rmcp stamps a
            // request's own `_meta` with this session's client capabilities, and a
            // relayed call must carry its caller's (what the upstream may ask it for).
            let mut options = PeerRequestOptions::no_options();
            options.meta = params.meta.take();
            let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
            let handle = peer.send_request_with_option(request, options).await?;
            // rmcp picks the progress token. The upstream cannot answer before the request
            // has crossed to it, so subscribing right after sending misses nothing.
            let updates = match progress {
                Some(_) => Some(self.progress.subscribe(handle.progress_token.clone()).await),
                None => None,
            };
            Ok((handle, updates))
        };
        let until = tokio::time::Instant::now() + deadline;
        let (handle, updates) = self.with_deadline(deadline, call).await?;
        // A caller that goes away drops this future: the upstream is told.
        let mut abandoned = Abandoned {
            peer: Some(peer.clone()),
            id: handle.id.clone(),
        };
        let response = self.with_deadline(remaining(until), handle.await_response());
        let response = match (progress, updates) {
            // The tap under the session delivers each update before the result is read,
            // so every update sent before the result is relayed before it.
            (Some(sink), Some(updates)) => {
                relay_progress(response, updates, |update: ProgressNotificationParam| {
                    // A caller that went away just stops listening; the call goes on.
                    let _ = sink.send(Progress {
                        progress: update.progress,
                        total: update.total,
                        message: update.message,
                    });
                    std::future::ready(())
                })
                .await?
            }
            _ => response.await?,
        };
        abandoned.peer = None;
        match response {
            ServerResult::CallToolResult(result) => Ok(CallToolResponse::Complete(result)),
            ServerResult::InputRequiredResult(asked) => Ok(CallToolResponse::InputRequired(asked)),
            ServerResult::CreateTaskResult(_) => Err(self.unasked_task()),
            other => Err(UpstreamError::Disconnected {
                server: self.server.clone(),
                reason: format!("the server answered a tool call with {other:?}"),
            }),
        }
    }

    /// mcp-server's client declares no tasks support, so a server must not answer with one.
    fn unasked_task(&self) -> UpstreamError {
        UpstreamError::Rejected {
            server: self.server.clone(),
            code: ErrorCode::INTERNAL_ERROR.0,
            message: "it answered a tool call with a task, which mcp-server did not ask for".into(),
            data: None,
        }
    }

    /// Sends `request` as it is and returns the server's answer.
    pub(crate) async fn request(
        &self,
        request: ClientRequest,
        deadline: Duration,
    ) -> Result<ServerResult, UpstreamError> {
        self.with_deadline(deadline, self.service.send_request(request))
            .await
    }

    /// Whether the server still answers within `deadline`: tells a hung child from one
    /// whose tool is merely slow. A ping, or for 2026-07-28 (which has no ping)
    /// `server/discover`, which every server of that revision answers.
    pub(crate) async fn answers_ping(&self, deadline: Duration) -> bool {
        let probe = match self.lifecycle() {
            Lifecycle::Stateless => {
                ClientRequest::DiscoverRequest(DiscoverRequest::new(DiscoverRequestParams {}))
            }
            Lifecycle::Handshake => ClientRequest::PingRequest(PingRequest::default()),
        };
        let answered = self.service.send_request(probe);
        matches!(tokio::time::timeout(deadline, answered).await, Ok(Ok(_)))
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
            Ok(Err(ServiceError::McpError(error))) if error.code == ErrorCode::HEADER_MISMATCH => {
                Err(UpstreamError::HeaderMismatch {
                    server,
                    message: error.message.into_owned(),
                })
            }
            Ok(Err(ServiceError::McpError(error))) => Err(UpstreamError::Rejected {
                server,
                code: error.code.0,
                message: error.message.into_owned(),
                data: error.data,
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

/// A request sent upstream whose answer is awaited; if the wait is dropped first (the
/// caller went away), the upstream gets `notifications/cancelled` for it.
struct Abandoned {
    /// `None` once answered.
    peer: Option<Peer<RoleClient>>,
    id: RequestId,
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        let Some(peer) = self.peer.take() else {
            return;
        };
        let cancelled = CancelledNotificationParam::new(
            Some(self.id.clone()),
            Some("the caller went away".into()),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = peer.notify_cancelled(cancelled).await;
            });
        }
    }
}

/// How long a server met for the first time gets to open a session through
/// `server/discover` (or the `initialize` that follows its refusal) before a second
/// start with `initialize` races it: what a legacy server silent on unknown methods
/// costs, once per config.
const PROBE: Duration = Duration::from_millis(500);

/// rmcp's discover-then-initialize lifecycle, for a server met for the first time.
fn auto_mode() -> ClientLifecycleMode {
    ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        legacy_version: None,
    }
}

impl Lifecycle {
    fn mode(self) -> ClientLifecycleMode {
        match self {
            Self::Stateless => ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
            Self::Handshake => ClientLifecycleMode::Initialize,
        }
    }

    fn revision(self) -> &'static str {
        match self {
            Self::Stateless => "2026-07-28",
            Self::Handshake => "an initialize-era revision",
        }
    }
}

/// Why one attempt at opening a session failed.
enum Failure {
    /// No session within the attempt's time.
    TimedOut,
    /// The server answered, refusing the lifecycle or revision offered.
    Refused(String),
    Other(UpstreamError),
}

/// What one attempt at opening a session with an upstream needs.
struct Dialer<'a> {
    server: &'a str,
    target: &'a Target,
    secrets: &'a Secrets,
    http: &'a reqwest::Client,
}

impl Dialer<'_> {
    /// Starts or dials the target afresh and opens a session with `mode` within `limit`;
    /// on failure, whatever the child started goes with it.
    async fn connect(
        &self,
        mode: ClientLifecycleMode,
        limit: Duration,
    ) -> Result<Connection, Failure> {
        let progress = ProgressDispatcher::new();
        let client = UpstreamClient {
            // What an initialize offers; server/discover names its own revisions.
            info: ClientConfig::new(
                ClientCapabilities::default(),
                Implementation::new("mcp-jobs", env!("CARGO_PKG_VERSION")),
            )
            .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE),
        };
        let mut process_group = None;
        let session = async {
            let served = match self.target {
                Target::Stdio {
                    command,
                    args,
                    env,
                    cwd,
                } => {
                    let child = spawn_child(
                        self.server,
                        command,
                        args,
                        env,
                        cwd.as_deref(),
                        self.secrets,
                    )
                    .map_err(Failure::Other)?;
                    process_group = child.id().map(|pid| Pid::from_raw(pid as i32));
                    serve_detached(client, tapped(child, &progress), mode).await
                }
                Target::Remote {
                    url,
                    transport: RemoteTransport::StreamableHttp,
                    headers,
                } => {
                    let config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                        .custom_headers(header_map(headers).map_err(Failure::Other)?);
                    let transport =
                        StreamableHttpClientTransport::with_client(self.http.clone(), config);
                    serve_detached(client, tapped(transport, &progress), mode).await
                }
                Target::Remote {
                    url,
                    transport: RemoteTransport::Sse,
                    headers,
                } => {
                    let headers = header_map(headers).map_err(Failure::Other)?;
                    let transport = LegacySseTransport::connect(
                        self.http.clone(),
                        url,
                        headers.into_iter().collect(),
                    )
                    .await
                    .map_err(|e| Failure::Other(self.handshake_failed(e.to_string())))?;
                    serve_detached(client, tapped(transport, &progress), mode).await
                }
            };
            served.map_err(|e| self.failure_of(&e))
        };
        let failure = match tokio::time::timeout(limit, session).await {
            Ok(Ok(service)) => {
                return Ok(Connection {
                    server: self.server.to_owned(),
                    service,
                    progress,
                    process_group,
                })
            }
            Ok(Err(failure)) => failure,
            Err(_) => Failure::TimedOut,
        };
        kill_group(process_group);
        Err(failure)
    }

    /// A refusal is an answer about the lifecycle (a JSON-RPC error, no common
    /// revision); anything else (a transport error, a closed connection) is not.
    fn failure_of(&self, error: &ClientInitializeError) -> Failure {
        let refusal = |e: &ClientInitializeError| {
            matches!(
                e,
                ClientInitializeError::JsonRpcError(_)
                    | ClientInitializeError::NoCompatibleProtocolVersion { .. }
            )
        };
        match error {
            ClientInitializeError::LegacyFallbackFailed { discover, fallback }
                if refusal(fallback) =>
            {
                Failure::Refused(format!(
                    "server/discover: {}; initialize: {}",
                    cause::of_handshake(discover),
                    cause::of_handshake(fallback)
                ))
            }
            e if refusal(e) => Failure::Refused(cause::of_handshake(e)),
            e => Failure::Other(self.handshake_failed(cause::of_handshake(e))),
        }
    }

    fn handshake_failed(&self, reason: String) -> UpstreamError {
        UpstreamError::Handshake {
            server: self.server.to_owned(),
            reason: self.secrets.redact(&reason).into_owned(),
        }
    }

    fn unsupported(&self, reason: String) -> UpstreamError {
        UpstreamError::Unsupported {
            server: self.server.to_owned(),
            reason: self.secrets.redact(&reason).into_owned(),
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

/// Opens the session in a task of its own. The session outlives the call that
/// happens to start it, so its long-lived tasks must not hang under (and hold open)
/// that call's span. Dropping the future aborts the opening.
async fn serve_detached<T, E, A>(
    client: UpstreamClient,
    transport: T,
    mode: ClientLifecycleMode,
) -> Result<RunningService<RoleClient, UpstreamClient>, ClientInitializeError>
where
    T: IntoTransport<RoleClient, E, A> + Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
    A: 'static,
{
    let opening = tokio::spawn(client.serve_with_lifecycle(transport, mode));
    match AbortOnDropHandle::new(opening).await {
        Ok(served) => served,
        Err(e) => Err(ClientInitializeError::ConnectionClosed(format!(
            "the handshake task ended: {e}"
        ))),
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
