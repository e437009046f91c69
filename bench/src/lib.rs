//! What the benchmarks share: the trivial `add` tool the server benchmark serves from
//! every contender, so that they all do the same work per request; and reading a
//! process's resident memory.

use mcp_jobs_tool_server::trace::call_traced;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, InitializeResult,
    ServerCapabilities,
};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_handler, tool_router, ErrorData, RoleServer, ServerHandler};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Deserialize, JsonSchema)]
pub struct AddParams {
    pub a: i64,
    pub b: i64,
}

/// A server with one tool, `add`.
#[derive(Clone)]
pub struct AddServer {
    tool_router: std::sync::Arc<ToolRouter<Self>>,
    traced: bool,
}

impl AddServer {
    /// `traced`: each call gets the span mcp-server gives its own tool calls,
    /// continuing the caller's trace (what "ours" pays for tracing).
    pub fn new(traced: bool) -> Self {
        Self {
            tool_router: std::sync::Arc::new(Self::tool_router()),
            traced,
        }
    }
}

#[tool_router]
impl AddServer {
    #[tool(description = "Add two integers.")]
    async fn add(&self, Parameters(p): Parameters<AddParams>) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::text((p.a + p.b).to_string())])
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for AddServer {
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if self.traced {
            call_traced(&self.tool_router, self, request, context).await
        } else {
            self.tool_router
                .call(ToolCallContext::new(self, request, context))
                .await
        }
    }

    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// The `q` quantile (0 to 1) of values sorted ascending, by nearest rank; NaN for none.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// A process's resident set size in KB, from `/proc/<pid>/status`.
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
