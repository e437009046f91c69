//! What the benchmarks share: the trivial `add` tool the server benchmark serves from
//! every contender, so that they all do the same work per request.

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, InitializeResult, ServerCapabilities};
use rmcp::{tool, tool_handler, tool_router, ServerHandler};
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
}

impl Default for AddServer {
    fn default() -> Self {
        Self {
            tool_router: std::sync::Arc::new(Self::tool_router()),
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
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
    }
}
