//! The worker's MCP client of mcp-server (rmcp over Streamable HTTP).
//!
//! Its one judgement: was a failure mcp-server's answer about the job (the job's
//! fault), or did the call not get a proper answer at all (infrastructure: retry)?

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    JsonObject,
};
use rmcp::service::{RunningService, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use tokio::sync::Mutex;

type Session = Arc<RunningService<RoleClient, ClientConfig>>;

/// Why a call to mcp-server did not return a tool result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// No proper answer (unreachable, 5xx, 429, reset, timeout): not the job's fault.
    #[error("mcp-server unavailable: {0}")]
    Infrastructure(String),
    /// mcp-server answered with an error about this call; `kind` is its `data.kind`.
    #[error("{kind}: {message}")]
    Job { kind: String, message: String },
}

pub struct ToolClient {
    endpoint: String,
    api_key: Option<String>,
    http: reqwest::Client,
    /// One MCP client session, reused across jobs and replaced after transport failures.
    session: Mutex<Option<Session>>,
}

impl ToolClient {
    pub fn new(endpoint: String, api_key: Option<String>) -> Self {
        Self {
            endpoint,
            api_key,
            // rmcp's default client turns connection pooling off; a busy worker wants it.
            http: reqwest::Client::new(),
            session: Mutex::new(None),
        }
    }

    /// Calls `tool` on mcp-server; `timeout` bounds the wait for its answer.
    pub async fn call(
        &self,
        tool: &str,
        arguments: JsonObject,
        timeout: Duration,
    ) -> Result<CallToolResult, CallError> {
        let session = self.session().await?;
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        match tokio::time::timeout(timeout, session.call_tool(params)).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(ServiceError::McpError(error))) => Err(CallError::Job {
                kind: error
                    .data
                    .as_ref()
                    .and_then(|d| d.get("kind"))
                    .and_then(|k| k.as_str())
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("jsonrpc_{}", error.code.0)),
                message: error.message.into_owned(),
            }),
            Ok(Err(other)) => {
                self.reset(&session).await;
                Err(CallError::Infrastructure(other.to_string()))
            }
            Err(_) => {
                self.reset(&session).await;
                Err(CallError::Infrastructure(format!(
                    "no answer from mcp-server within {timeout:?}"
                )))
            }
        }
    }

    async fn session(&self) -> Result<Session, CallError> {
        let mut current = self.session.lock().await;
        if let Some(session) = current.as_ref().filter(|s| !s.peer().is_transport_closed()) {
            return Ok(session.clone());
        }
        let mut config = StreamableHttpClientTransportConfig::with_uri(self.endpoint.as_str());
        if let Some(key) = &self.api_key {
            config = config.auth_header(key.clone());
        }
        let transport = StreamableHttpClientTransport::with_client(self.http.clone(), config);
        let client = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("kafka-worker", env!("CARGO_PKG_VERSION")),
        );
        let session = Arc::new(client.serve(transport).await.map_err(|e| {
            CallError::Infrastructure(format!("connecting to {}: {e}", self.endpoint))
        })?);
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
}
