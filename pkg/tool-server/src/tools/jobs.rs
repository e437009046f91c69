//! The job tools workers call. Each takes a server's name and its config inline, so
//! any replica can answer any call: nothing about a job is kept between calls.
//!
//! Failures of mcp-server itself (a refused config, an upstream that will not start or
//! answer) are JSON-RPC errors whose `data.kind` says whether retrying can help; an
//! upstream tool's own `isError` result is passed through untouched.

use std::time::{Duration, Instant};

use mcp_jobs_contract::task::TaskEndpoint;
use mcp_jobs_contract::ServerConfig;
use mcp_jobs_telemetry::propagation;
use mcp_jobs_upstream::{
    FailureKind, ProgressSink, ServerPeerInfo, Tool, Trust, Upstream, UpstreamError,
};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorCode, JsonObject,
    MetaObject, RequestMetaObject, ResultType,
};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_router, ErrorData, RoleServer};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tracing::Instrument;

use super::{parse, ServerTools};
use crate::tasks::{self, TaskCall};
use crate::{caller, trace};

/// Names a described server.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerParams {
    /// The server's name in the job's `mcpServers`, or in mcp-server's servers file.
    pub server_name: String,
    /// The server's entry from `mcpServers`: a stdio `command` or a remote `url`.
    /// Without it, `serverName` names a server of mcp-server's servers file.
    #[serde(default)]
    pub config: Option<ServerConfig>,
    /// Deadline for the whole call, connecting included (default: MCP_CALL_TIMEOUT_MS).
    pub timeout_ms: Option<u64>,
}

/// Names a described server and a tool of it to call.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallToolParams {
    pub server_name: String,
    /// As for `server_initialize`: absent for a server of mcp-server's servers file.
    #[serde(default)]
    pub config: Option<ServerConfig>,
    /// The upstream tool to call.
    pub tool: String,
    /// The upstream tool's arguments.
    #[serde(default)]
    pub arguments: JsonObject,
    pub timeout_ms: Option<u64>,
}

#[tool_router(router = jobs_router, vis = "pub(super)")]
impl ServerTools {
    #[tool(
        description = "Connect to the described MCP server, run the initialize handshake, and return its serverInfo, protocolVersion, capabilities, instructions and tools."
    )]
    async fn server_initialize(
        &self,
        Parameters(params): Parameters<ServerParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.run_server_initialize(params).await
    }

    #[tool(description = "List the tools of the described MCP server.")]
    async fn list_tools(
        &self,
        Parameters(params): Parameters<ServerParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.run_list_tools(params).await
    }

    #[tool(
        description = "Call a tool of the described MCP server and return its result (content, structuredContent, isError) unchanged. With a progress token, relays the upstream's progress notifications."
    )]
    async fn call_tool(
        &self,
        context: RequestContext<RoleServer>,
        Parameters(params): Parameters<CallToolParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let token = context.meta.get_progress_token();
        let meta = forwarded_meta(context.meta);
        let call = caller::with_progress(token, context.peer, |sink| async move {
            self.run_call_tool(params, meta, sink.as_ref()).await
        });
        caller::unless_cancelled(&context.ct, call)
            .await
            .unwrap_or_else(|| Err(caller::cancelled_error()))
    }
}

/// A server a meta-tool call names, with who vouches for its config.
struct Described<'a> {
    name: &'a str,
    config: ServerConfig,
    trust: Trust,
}

impl Described<'_> {
    fn upstream(&self) -> Upstream<'_> {
        Upstream {
            name: self.name,
            config: &self.config,
            trust: self.trust,
        }
    }
}

/// The job tools' names, as routed.
pub(super) const TOOLS: [&str; 3] = ["server_initialize", "list_tools", "call_tool"];

impl ServerTools {
    /// Runs a job tool by name with JSON arguments: the gateway's way in (MCP requests
    /// go through the tool router instead).
    pub(super) async fn call_job_tool(
        &self,
        name: &str,
        arguments: JsonObject,
        progress: Option<&ProgressSink>,
    ) -> Result<CallToolResult, ErrorData> {
        match name {
            "server_initialize" => self.run_server_initialize(parse(name, arguments)?).await,
            "list_tools" => self.run_list_tools(parse(name, arguments)?).await,
            _ => {
                self.run_call_tool(parse(name, arguments)?, None, progress)
                    .await
            }
        }
    }

    async fn run_server_initialize(
        &self,
        params: ServerParams,
    ) -> Result<CallToolResult, ErrorData> {
        let started = Instant::now();
        let result = match self.described(&params.server_name, params.config) {
            Ok(named) => self
                .pool
                .initialize(named.upstream(), deadline(params.timeout_ms))
                .instrument(trace::upstream_span("initialize", &params.server_name))
                .await
                .map(|(info, tools)| initialize_result(&params.server_name, &info, &tools)),
            Err(e) => Err(e),
        };
        self.recorded("server_initialize", started, result)
    }

    async fn run_list_tools(&self, params: ServerParams) -> Result<CallToolResult, ErrorData> {
        let started = Instant::now();
        let listed = match self.described(&params.server_name, params.config) {
            Ok(named) => {
                self.pool
                    .list_tools(named.upstream(), deadline(params.timeout_ms))
                    .instrument(trace::upstream_span("tools/list", &params.server_name))
                    .await
            }
            Err(e) => Err(e),
        };
        let result = listed.map(|tools| {
            let mut result = CallToolResult::structured(json!({ "tools": tools }));
            result.content = vec![ContentBlock::text(tool_summary(
                &params.server_name,
                &tools,
            ))];
            result
        });
        self.recorded("list_tools", started, result)
    }

    async fn run_call_tool(
        &self,
        params: CallToolParams,
        meta: Option<RequestMetaObject>,
        progress: Option<&ProgressSink>,
    ) -> Result<CallToolResult, ErrorData> {
        let started = Instant::now();
        let size = json_size(&params.arguments);
        let result = match self.described(&params.server_name, params.config) {
            _ if size > self.max_argument_bytes => Err(UpstreamError::ArgumentsTooLarge {
                tool: params.tool,
                size,
                limit: self.max_argument_bytes,
            }),
            Err(e) => Err(e),
            Ok(named) => {
                let upstream = trace::upstream_span("tools/call", &params.server_name);
                // The upstream server sees this call as the parent of its work.
                let mut meta = meta.map(|meta| meta.0 .0).unwrap_or_default();
                propagation::inject_meta(&upstream, &mut meta);
                let mut call = CallToolRequestParams::new(params.tool.clone())
                    .with_arguments(params.arguments);
                call.meta = Some(RequestMetaObject(MetaObject(meta)));
                self.pool
                    .call_tool_unattended(
                        named.upstream(),
                        call,
                        progress,
                        deadline(params.timeout_ms),
                    )
                    .instrument(upstream)
                    .await
                    .map(relayed)
            }
        };
        self.recorded("call_tool", started, result)
    }

    /// Runs a `call_tool` call as a durable task (see [`tasks::call_as_task`]): its job
    /// carries the config the call gives, or names the servers file's server.
    pub(super) async fn call_tool_as_task(
        &self,
        request: CallToolRequestParams,
        context: &RequestContext<RoleServer>,
        inline_within: Option<Duration>,
    ) -> Result<CallToolResponse, ErrorData> {
        let params: CallToolParams = parse("call_tool", request.arguments.unwrap_or_default())?;
        let size = json_size(&params.arguments);
        if size > self.max_argument_bytes {
            return Err(into_error_data(UpstreamError::ArgumentsTooLarge {
                tool: params.tool,
                size,
                limit: self.max_argument_bytes,
            }));
        }
        // A job naming a server mcp-server lacks would only fail on a worker.
        self.described(&params.server_name, params.config.clone())
            .map_err(into_error_data)?;
        let call = TaskCall {
            endpoint: TaskEndpoint::Mcp,
            server: params.server_name,
            config: params.config,
            tool: params.tool,
            arguments: params.arguments,
            timeout_ms: params.timeout_ms.filter(|ms| *ms > 0),
        };
        tasks::call_as_task(self.tasks.as_ref(), call, context, inline_within).await
    }

    /// The server a meta-tool call names: the config it gives (a job's, so every
    /// allowlist applies), or else the servers file's entry by that name.
    fn described<'a>(
        &self,
        name: &'a str,
        config: Option<ServerConfig>,
    ) -> Result<Described<'a>, UpstreamError> {
        let (config, trust) = match config {
            Some(config) => (config, Trust::Job),
            None => {
                let servers = self.registry.servers();
                let named = servers
                    .get(name)
                    .ok_or_else(|| UpstreamError::UnknownServer {
                        server: name.to_owned(),
                    })?;
                (named.config.clone(), named.trust())
            }
        };
        Ok(Described {
            name,
            config,
            trust,
        })
    }

    /// Counts the request by tool and outcome, and turns an upstream failure into the
    /// JSON-RPC error callers see.
    fn recorded(
        &self,
        tool: &'static str,
        started: Instant,
        result: Result<CallToolResult, UpstreamError>,
    ) -> Result<CallToolResult, ErrorData> {
        let failure = match &result {
            Ok(r) if r.is_error == Some(true) => Some(FailureKind::ToolError),
            Ok(_) => None,
            Err(e) => Some(e.kind()),
        };
        let outcome = failure.as_ref().map_or("ok", FailureKind::label);
        self.record(tool, outcome, started);
        result.map_err(into_error_data)
    }
}

/// A relayed result as our caller's revision wants it: 2026-07-28 requires `resultType`
/// on every result, and an upstream that speaks 2025-11-25 sends none (rmcp takes the
/// `"complete"` out again for callers of the older revision). The upstream's own
/// `io.modelcontextprotocol/*` keys (its serverInfo) describe the hop behind us: to our
/// caller, mcp-server is the server that answered.
pub(crate) fn relayed(mut result: CallToolResult) -> CallToolResult {
    result.result_type.get_or_insert(ResultType::COMPLETE);
    if let Some(meta) = result.meta.as_mut() {
        meta.0.retain(|key, _| !is_protocol_key(key));
    }
    result.meta = result.meta.filter(|meta| !meta.0.is_empty());
    result
}

/// Keys of `_meta` that belong to one hop of the protocol, not to the call it carries.
fn is_protocol_key(key: &str) -> bool {
    key.starts_with("io.modelcontextprotocol/")
}

/// The caller's `_meta` (e.g. kafka-worker's `mcp-jobs/jobId` and `mcp-jobs/attempt`,
/// which let tools deduplicate redelivered jobs) travels on to the upstream tool;
/// keys about this hop itself (progress token, `io.modelcontextprotocol/*`) do not.
pub(crate) fn forwarded_meta(meta: RequestMetaObject) -> Option<RequestMetaObject> {
    let mut fields = meta.0 .0;
    fields.retain(|key, _| key != "progressToken" && !is_protocol_key(key));
    (!fields.is_empty()).then_some(RequestMetaObject(MetaObject(fields)))
}

/// The serialized size of `value`, counted without building the string.
fn json_size(value: &JsonObject) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing into a counter cannot fail, and a JSON object always serializes.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
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
        FailureKind::UpstreamUnavailable => -32002,
        FailureKind::UpstreamTimeout => -32003,
        // An upstream's refusal, and whatever else the pool might name.
        _ => -32004,
    };
    ErrorData::new(
        ErrorCode(code),
        error.to_string(),
        Some(json!({ "kind": kind.as_str() })),
    )
}
