//! The worker's MCP client of mcp-server (rmcp over Streamable HTTP), spread over
//! one or more mcp-server replicas.
//!
//! Its one judgement: was a failure mcp-server's answer about the job (the job's
//! fault), or did the call not get a proper answer at all (infrastructure)? Calls
//! rotate over the replicas; a replica that gives no proper answer sits out a short
//! cooldown while the call moves on to the next, so one replica down costs nothing
//! but a retry. Only when every replica fails is the failure reported.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::{Duration, Instant};

use mcp_jobs_contract::FailureKind;
use mcp_jobs_telemetry::propagation;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    JsonObject, MetaObject, ProtocolVersion, RequestMetaObject,
};
use rmcp::service::{RunningService, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientLifecycleMode, ClientServiceExt, RoleClient};
use tokio::sync::Mutex;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use crate::traced_http::TracedHttp;

type Session = Arc<RunningService<RoleClient, ClientConfig>>;

/// How long a replica that failed is skipped (unless every replica is failing).
const COOLDOWN: Duration = Duration::from_secs(2);

/// Why a call to mcp-server did not return a tool result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// No proper answer from any replica (unreachable, 5xx, 429, reset, timeout):
    /// not the job's fault.
    #[error("mcp-server unavailable: {0}")]
    Infrastructure(String),
    /// mcp-server answered with an error about this call; `kind` is its `data.kind`.
    #[error("{kind}: {message}")]
    Job { kind: FailureKind, message: String },
}

pub struct ToolClient {
    replicas: Vec<Replica>,
    next: AtomicUsize,
}

struct Replica {
    endpoint: String,
    api_key: Option<String>,
    concurrency: usize,
    http: TracedHttp,
    /// One MCP client session, shared by concurrent calls and replaced after
    /// transport failures.
    session: Mutex<Option<Session>>,
    failed_at: SyncMutex<Option<Instant>>,
}

impl ToolClient {
    /// `endpoints` are full Streamable HTTP URLs (…/mcp); at least one. Up to
    /// `concurrency` calls may be in flight to each (rmcp's client allows 16 by default).
    pub fn new(endpoints: &[String], api_key: Option<String>, concurrency: usize) -> Self {
        // rmcp's default client turns connection pooling off; a busy worker wants it.
        let http = TracedHttp(reqwest::Client::new());
        Self {
            replicas: endpoints
                .iter()
                .map(|endpoint| Replica {
                    endpoint: endpoint.clone(),
                    api_key: api_key.clone(),
                    concurrency,
                    http: http.clone(),
                    session: Mutex::new(None),
                    failed_at: SyncMutex::new(None),
                })
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Calls `tool` on mcp-server with `meta` as the request's `_meta`; `timeout`
    /// bounds the wait for each replica's answer. The call is a span of the current
    /// trace, and its context travels in `_meta` (and so in the HTTP headers).
    pub async fn call(
        &self,
        tool: &str,
        arguments: JsonObject,
        mut meta: JsonObject,
        timeout: Duration,
    ) -> Result<CallToolResult, CallError> {
        let span = tracing::info_span!(
            "mcp-server call",
            otel.name = format!("tools/call {tool}"),
            otel.kind = "client",
            tool,
        );
        propagation::inject_meta(&span, &mut meta);
        let mut params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        params.meta = Some(RequestMetaObject(MetaObject(meta)));
        self.call_replicas(params, timeout).instrument(span).await
    }

    async fn call_replicas(
        &self,
        params: CallToolRequestParams,
        timeout: Duration,
    ) -> Result<CallToolResult, CallError> {
        let mut last_failure = String::from("no mcp-server replica configured");
        for replica in self.rotation() {
            match replica.call(params.clone(), timeout).await {
                Err(CallError::Infrastructure(reason)) => {
                    replica.mark_failed();
                    last_failure = format!("{}: {reason}", replica.endpoint);
                }
                answered => {
                    replica.mark_healthy();
                    return answered;
                }
            }
        }
        Err(CallError::Infrastructure(last_failure))
    }

    /// Replicas in the order to try them: round-robin from the next one, those in
    /// cooldown last.
    fn rotation(&self) -> Vec<&Replica> {
        let n = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut order: Vec<&Replica> = (0..n).map(|i| &self.replicas[(start + i) % n]).collect();
        order.sort_by_key(|replica| replica.cooling_down());
        order
    }
}

impl Replica {
    async fn call(
        &self,
        params: CallToolRequestParams,
        timeout: Duration,
    ) -> Result<CallToolResult, CallError> {
        let session = self.session().await?;
        match tokio::time::timeout(timeout, session.call_tool(params)).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(ServiceError::McpError(error))) => Err(CallError::Job {
                kind: error
                    .data
                    .as_ref()
                    .and_then(|d| d.get("kind"))
                    .and_then(|k| k.as_str())
                    .map_or_else(
                        || FailureKind::Other(format!("jsonrpc_{}", error.code.0)),
                        FailureKind::parse,
                    ),
                message: error.message.into_owned(),
            }),
            Ok(Err(other)) => {
                self.reset(&session).await;
                Err(CallError::Infrastructure(other.to_string()))
            }
            Err(_) => {
                self.reset(&session).await;
                Err(CallError::Infrastructure(format!(
                    "no answer within {timeout:?}"
                )))
            }
        }
    }

    async fn session(&self) -> Result<Session, CallError> {
        let mut current = self.session.lock().await;
        if let Some(session) = current.as_ref().filter(|s| !s.peer().is_transport_closed()) {
            return Ok(session.clone());
        }
        let mut config = StreamableHttpClientTransportConfig::with_uri(self.endpoint.as_str())
            .max_concurrent_requests(self.concurrency);
        if let Some(key) = &self.api_key {
            config = config.auth_header(key.clone());
        }
        let transport = StreamableHttpClientTransport::with_client(self.http.clone(), config);
        let client = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("kafka-worker", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE);
        // 2026-07-28 (stateless: one server/discover, then self-contained calls), or
        // initialize for an mcp-server that predates it, during a rolling upgrade.
        let lifecycle = ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: None,
        };
        // Connected from a task of its own: the session serves many jobs, so its
        // long-lived tasks must not hang under (and hold open) the span of the job that
        // happened to open it. Dropping the future aborts the connect.
        let connecting = AbortOnDropHandle::new(tokio::spawn(
            client.serve_with_lifecycle(transport, lifecycle),
        ));
        let session = match connecting.await {
            Ok(served) => {
                served.map_err(|e| CallError::Infrastructure(format!("connecting: {e}")))?
            }
            Err(e) => return Err(CallError::Infrastructure(format!("connecting: {e}"))),
        };
        let session = Arc::new(session);
        *current = Some(session.clone());
        Ok(session)
    }

    /// Drops `failed` so the next call connects afresh (unless another call already did).
    async fn reset(&self, failed: &Session) {
        let mut current = self.session.lock().await;
        if current.as_ref().is_some_and(|s| Arc::ptr_eq(s, failed)) {
            *current = None;
        }
    }

    fn cooling_down(&self) -> bool {
        self.lock_failed_at()
            .is_some_and(|at| at.elapsed() < COOLDOWN)
    }

    fn mark_failed(&self) {
        *self.lock_failed_at() = Some(Instant::now());
    }

    fn mark_healthy(&self) {
        *self.lock_failed_at() = None;
    }

    fn lock_failed_at(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // The guarded value is a plain timestamp: a panic elsewhere cannot leave it torn.
        self.failed_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
