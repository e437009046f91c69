//! The MCP tools workers call. Each takes a server's name and its config inline, so
//! any replica can answer any call: nothing about a job is kept between calls.
//!
//! Failures of mcp-server itself (a refused config, an upstream that will not start or
//! answer) are JSON-RPC errors whose `data.kind` says whether retrying can help; an
//! upstream tool's own `isError` result is passed through untouched.

use std::sync::Arc;
use std::time::Duration;

use mcp_jobs_contract::ServerConfig;
use mcp_jobs_upstream::{Connector, FailureKind, ServerPeerInfo, Tool, UpstreamError};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, ErrorCode, Implementation, InitializeResult, JsonObject,
    MetaObject, RequestMetaObject, ServerCapabilities,
};
use rmcp::{tool, tool_handler, tool_router, ErrorData, ServerHandler};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

/// Names a described server.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerParams {
    /// The server's name in the job's `mcpServers`.
    pub server_name: String,
    /// The server's entry from `mcpServers`: a stdio `command` or a remote `url`.
    pub config: ServerConfig,
    /// Deadline for the whole call, connecting included (default: MCP_CALL_TIMEOUT_MS).
    pub timeout_ms: Option<u64>,
}

/// Names a described server and a tool of it to call.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallToolParams {
    pub server_name: String,
    pub config: ServerConfig,
    /// The upstream tool to call.
    pub tool: String,
    /// The upstream tool's arguments.
    #[serde(default)]
    pub arguments: JsonObject,
    pub timeout_ms: Option<u64>,
}

/// The tool handler; cheap to clone, one per request.
#[derive(Clone)]
pub struct JobTools {
    connector: Arc<Connector>,
    /// Built once: building it derives every tool's JSON schema.
    tool_router: Arc<ToolRouter<Self>>,
}

#[tool_router]
impl JobTools {
    pub fn new(connector: Arc<Connector>) -> Self {
        Self {
            connector,
            tool_router: Arc::new(Self::tool_router()),
        }
    }

    #[tool(
        description = "Connect to the described MCP server, run the initialize handshake, and return its serverInfo, protocolVersion, capabilities, instructions and tools."
    )]
    async fn server_initialize(
        &self,
        Parameters(params): Parameters<ServerParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let (info, tools) = self
            .connector
            .initialize(
                &params.server_name,
                &params.config,
                deadline(params.timeout_ms),
            )
            .await
            .map_err(into_error_data)?;
        Ok(initialize_result(&params.server_name, &info, &tools))
    }

    #[tool(description = "List the tools of the described MCP server.")]
    async fn list_tools(
        &self,
        Parameters(params): Parameters<ServerParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let tools = self
            .connector
            .list_tools(
                &params.server_name,
                &params.config,
                deadline(params.timeout_ms),
            )
            .await
            .map_err(into_error_data)?;
        let mut result = CallToolResult::structured(json!({ "tools": tools }));
        result.content = vec![ContentBlock::text(tool_summary(
            &params.server_name,
            &tools,
        ))];
        Ok(result)
    }

    #[tool(
        description = "Call a tool of the described MCP server and return its result (content, structuredContent, isError) unchanged."
    )]
    async fn call_tool(
        &self,
        meta: RequestMetaObject,
        Parameters(params): Parameters<CallToolParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.connector
            .call_tool(
                &params.server_name,
                &params.config,
                &params.tool,
                params.arguments,
                forwarded_meta(meta),
                deadline(params.timeout_ms),
            )
            .await
            .map_err(into_error_data)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for JobTools {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("mcp-jobs", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Runs MCP work described inline: each tool takes a server's name and its config \
                 (stdio command or remote URL), connects to it, and speaks MCP to it.",
            )
    }
}

/// The caller's `_meta` (e.g. kafka-worker's `mcp-jobs/jobId` and `mcp-jobs/attempt`,
/// which let tools deduplicate redelivered jobs) travels on to the upstream tool;
/// keys about this hop itself (progress token, `io.modelcontextprotocol/*`) do not.
fn forwarded_meta(meta: RequestMetaObject) -> Option<RequestMetaObject> {
    let mut fields = meta.0 .0;
    fields.retain(|key, _| key != "progressToken" && !key.starts_with("io.modelcontextprotocol/"));
    (!fields.is_empty()).then_some(RequestMetaObject(MetaObject(fields)))
}

fn deadline(timeout_ms: Option<u64>) -> Option<Duration> {
    timeout_ms.filter(|ms| *ms > 0).map(Duration::from_millis)
}

fn initialize_result(server: &str, info: &ServerPeerInfo, tools: &[Tool]) -> CallToolResult {
    let mut result = CallToolResult::structured(json!({
        "serverInfo": info.server_info,
        "protocolVersion": info.protocol_version,
        "capabilities": info.capabilities,
        "instructions": info.instructions,
        "tools": tools,
    }));
    let identity = info
        .server_info
        .as_ref()
        .map(|s| format!("{} {}", s.name, s.version))
        .unwrap_or_else(|| "an unnamed server".into());
    result.content = vec![ContentBlock::text(format!(
        "Initialized {server}: {identity}, protocol {}. {}",
        info.protocol_version,
        tool_summary(server, tools)
    ))];
    result
}

fn tool_summary(server: &str, tools: &[Tool]) -> String {
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    format!("{server} has {} tools: {}", names.len(), names.join(", "))
}

/// Implementation-defined JSON-RPC server error codes, one per failure kind.
fn into_error_data(error: UpstreamError) -> ErrorData {
    let kind = error.kind();
    let code = match kind {
        FailureKind::Refused => -32001,
        FailureKind::Unavailable => -32002,
        FailureKind::Timeout => -32003,
        FailureKind::Rejected => -32004,
    };
    ErrorData::new(
        ErrorCode(code),
        error.to_string(),
        Some(json!({ "kind": kind.as_str() })),
    )
}
