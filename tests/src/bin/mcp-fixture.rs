//! A small stdio MCP server of our own, for what no published server can do on
//! demand: a tool that sleeps, one that fails until a given attempt, one that reports
//! the `_meta` it received, one that reads its environment, one that kills its own process. The tests and `bench/`
//! drive mcp-server and kafka-worker through it like any other upstream.

use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, InitializeResult, RequestMetaObject,
    ServerCapabilities,
};
use rmcp::{tool, tool_handler, tool_router, ServerHandler, ServiceExt};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, JsonSchema)]
struct EchoParams {
    #[serde(default)]
    text: String,
}

#[derive(Deserialize, JsonSchema)]
struct EnvParams {
    /// The environment variable to return.
    name: String,
}

#[derive(Deserialize, JsonSchema)]
struct SleepParams {
    /// How long to sleep before answering, in milliseconds.
    ms: u64,
}

#[derive(Deserialize, JsonSchema)]
struct FailParams {
    /// The first attempt (from `_meta["mcp-jobs/attempt"]`) that succeeds; absent: never.
    succeed_from_attempt: Option<u64>,
}

#[derive(Clone)]
struct Fixture {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Fixture {
    #[tool(description = "Return the text it was given.")]
    async fn echo(&self, Parameters(p): Parameters<EchoParams>) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::text(p.text)])
    }

    #[tool(description = "Sleep for `ms` milliseconds, then answer.")]
    async fn sleep(&self, Parameters(p): Parameters<SleepParams>) -> CallToolResult {
        tokio::time::sleep(Duration::from_millis(p.ms)).await;
        CallToolResult::success(vec![ContentBlock::text(format!("slept {} ms", p.ms))])
    }

    #[tool(
        description = "Answer isError until the caller's attempt reaches `succeed_from_attempt`."
    )]
    async fn fail(
        &self,
        meta: RequestMetaObject,
        Parameters(p): Parameters<FailParams>,
    ) -> CallToolResult {
        let attempt = meta.0 .0.get("mcp-jobs/attempt").and_then(|a| a.as_u64());
        match (attempt, p.succeed_from_attempt) {
            (Some(attempt), Some(from)) if attempt >= from => {
                CallToolResult::success(vec![ContentBlock::text(format!(
                    "succeeded on attempt {attempt}"
                ))])
            }
            _ => CallToolResult::error(vec![ContentBlock::text(format!(
                "failing on purpose (attempt {attempt:?})"
            ))]),
        }
    }

    #[tool(description = "Return the request's _meta as structured content.")]
    async fn meta(&self, meta: RequestMetaObject) -> CallToolResult {
        CallToolResult::structured(json!({ "meta": meta.0 .0 }))
    }

    #[tool(description = "Return the value of one of the server's environment variables.")]
    async fn env(&self, Parameters(p): Parameters<EnvParams>) -> CallToolResult {
        let value = std::env::var(&p.name).unwrap_or_default();
        CallToolResult::success(vec![ContentBlock::text(format!("{}={value}", p.name))])
    }

    #[tool(description = "Exit the server process at once, mid-call.")]
    async fn crash(&self) -> CallToolResult {
        std::process::exit(3)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Fixture {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "mcp-fixture",
                env!("CARGO_PKG_VERSION"),
            ))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fixture = Fixture {
        tool_router: Fixture::tool_router(),
    };
    let service = fixture.serve(rmcp::transport::stdio()).await?;
    service.waiting().await?;
    Ok(())
}
