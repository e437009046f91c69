//! The tools mcp-server serves, in toolsets an operator can switch off
//! (`MCP_TOOLSETS`):
//! - [`jobs`]: `server_initialize`, `list_tools`, `call_tool`, what workers call;
//! - [`messaging`]: client-to-client messages (seed 002);
//! - [`streams`]: Redis Streams (seed 004).
//!
//! Nothing is kept in a replica between calls: jobs carry their configs inline, and
//! messages and streams live in Redis, so any replica can answer any call.

mod jobs;
mod messaging;
mod streams;

use std::sync::Arc;
use std::time::Instant;

use mcp_jobs_shared_state::{Mailboxes, Streams};
use mcp_jobs_upstream::{Pool, ProgressSink, Tool};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams,
    CompleteRequestMethod, CompleteRequestParams, CompleteResult, ContentBlock, ErrorCode,
    GetTaskParams, GetTaskResult, Implementation, InitializeResult, JsonObject,
    ListPromptsRequestMethod, ListPromptsResult, ListResourceTemplatesRequestMethod,
    ListResourceTemplatesResult, ListResourcesRequestMethod, ListResourcesResult,
    PaginatedRequestParams, ServerCapabilities, UpdateTaskParams,
};
use rmcp::service::RequestContext;
use rmcp::{tool_handler, ErrorData, RoleServer, ServerHandler};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

pub(crate) use jobs::{forwarded_meta, relayed};
pub use jobs::{CallToolParams, ServerParams};

use crate::config::ServerSettings;
use crate::named::Registry;
use crate::stats::RequestStats;
use crate::tasks::{self, Run, Scope, TaskMode, TasksSlot};
use crate::{metrics, trace};

/// The tool handler; cheap to clone, one per request.
#[derive(Clone)]
pub struct ServerTools {
    pool: Pool,
    /// The operator's named servers, which a meta-tool call may name without a config.
    registry: Arc<Registry>,
    mailboxes: Mailboxes,
    streams: Streams,
    stats: Arc<RequestStats>,
    max_argument_bytes: usize,
    /// Built once, from the enabled toolsets: building it derives every tool's schema.
    tool_router: Arc<ToolRouter<Self>>,
    /// Durable tasks, when mcp-server has Kafka, and which `call_tool` calls become one.
    tasks: Option<TasksSlot>,
    meta_tasks: TaskMode,
}

impl ServerTools {
    pub fn new(
        pool: Pool,
        registry: Arc<Registry>,
        mailboxes: Mailboxes,
        streams: Streams,
        settings: &ServerSettings,
        tasks: Option<TasksSlot>,
    ) -> Self {
        let toolsets = settings.toolsets;
        let mut tool_router = ToolRouter::new();
        if toolsets.jobs {
            tool_router += Self::jobs_router();
        }
        if toolsets.messaging {
            tool_router += Self::messaging_router();
        }
        if toolsets.streams {
            tool_router += Self::streams_router();
        }
        Self {
            pool,
            registry,
            mailboxes,
            streams,
            stats: Arc::new(RequestStats::default()),
            max_argument_bytes: settings.max_argument_bytes,
            tool_router: Arc::new(tool_router),
            meta_tasks: settings
                .tasks
                .as_ref()
                .map_or(TaskMode::Never, |tasks| tasks.meta),
            tasks,
        }
    }

    /// Whether `call_tool` calls may become tasks here.
    fn offers_tasks(&self) -> bool {
        self.tasks.is_some()
            && self.meta_tasks != TaskMode::Never
            && self.tool_router.has_route("call_tool")
    }

    /// The tools, with their descriptions and input schemas.
    pub fn catalog(&self) -> Vec<Tool> {
        self.tool_router.list_all()
    }

    pub fn stats(&self) -> &RequestStats {
        &self.stats
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs a tool by name with JSON arguments: the REST and WebSocket gateway's way
    /// in (MCP requests go through the tool router instead).
    pub async fn call(
        &self,
        name: &str,
        arguments: JsonObject,
        progress: Option<&ProgressSink>,
    ) -> Result<CallToolResult, ErrorData> {
        if !self.tool_router.has_route(name) {
            let names: Vec<String> = self.catalog().into_iter().map(|t| t.name.into()).collect();
            return Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!(
                    "there is no tool {name:?}; the tools are {}",
                    names.join(", ")
                ),
                Some(json!({ "kind": "unknown_tool" })),
            ));
        }
        if jobs::TOOLS.contains(&name) {
            self.call_job_tool(name, arguments, progress).await
        } else if messaging::TOOLS.contains(&name) {
            self.call_messaging_tool(name, arguments).await
        } else {
            // Routed, and neither a job nor a messaging tool.
            self.call_stream_tool(name, arguments).await
        }
    }

    /// Counts a call by tool and outcome (`ok`, `tool_error`, or a failure kind).
    fn record(&self, tool: &'static str, outcome: &'static str, started: Instant) {
        self.stats.record(tool, outcome);
        metrics::tool_call(tool, outcome, started);
    }

    /// A shared-state tool's answer; its failure becomes an `isError` result whose
    /// text says what went wrong and whose structured content names the kind, so the
    /// caller (often a model) reads it instead of waiting.
    fn answered(
        &self,
        tool: &'static str,
        started: Instant,
        result: Result<CallToolResult, (&'static str, String)>,
    ) -> CallToolResult {
        match result {
            Ok(answer) => {
                self.record(tool, "ok", started);
                answer
            }
            Err((kind, message)) => {
                self.record(tool, kind, started);
                failed_call(kind, message)
            }
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for ServerTools {
    /// Every MCP tool call runs in a span that continues the caller's trace.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if request.name == "call_tool" && self.offers_tasks() {
            if let Run::Task(inline_within) = self.meta_tasks.run(tasks::supports_tasks(&context)) {
                return self
                    .call_tool_as_task(request, &context, inline_within)
                    .await;
            }
        }
        trace::call_traced(&self.tool_router, self, request, context).await
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        tasks::at(self.tasks.as_ref(), Scope::Mcp)
            .get(request, &context)
            .await
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        tasks::at(self.tasks.as_ref(), Scope::Mcp)
            .update(request, &context)
            .await
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        tasks::at(self.tasks.as_ref(), Scope::Mcp)
            .cancel(request, &context)
            .await
    }

    // What `server/discover` does not declare is not served: these answer -32601
    // rather than an empty list that says the feature exists.
    async fn list_prompts(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Err(ErrorData::method_not_found::<ListPromptsRequestMethod>())
    }

    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Err(ErrorData::method_not_found::<ListResourcesRequestMethod>())
    }

    async fn list_resource_templates(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Err(ErrorData::method_not_found::<
            ListResourceTemplatesRequestMethod,
        >())
    }

    async fn complete(
        &self,
        _: CompleteRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        Err(ErrorData::method_not_found::<CompleteRequestMethod>())
    }

    fn get_info(&self) -> InitializeResult {
        let capabilities = ServerCapabilities::builder().enable_tools();
        let capabilities = if self.offers_tasks() {
            capabilities.enable_tasks().build()
        } else {
            capabilities.build()
        };
        InitializeResult::new(capabilities)
            .with_server_info(Implementation::new("mcp-jobs", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Runs MCP work described inline: each job tool takes a server's name and its \
                 config (stdio command or remote URL), connects to it, and speaks MCP to it. \
                 Messaging and stream tools, where enabled, share their state through Redis.",
            )
    }
}

/// A failure the way a model reads it: an `isError` result whose text says what went
/// wrong and whose structured content names the kind.
pub(crate) fn failed_call(kind: &str, message: String) -> CallToolResult {
    let mut failure = CallToolResult::error(vec![ContentBlock::text(message.clone())]);
    failure.structured_content = Some(json!({ "kind": kind, "error": message }));
    failure
}

/// A tool result with structured content and a line of text for people and models.
fn answer(structured: Value, text: String) -> CallToolResult {
    let mut answer = CallToolResult::structured(structured);
    answer.content = vec![ContentBlock::text(text)];
    answer
}

/// Parses a tool's arguments given as JSON (the gateway's path; rmcp does it for MCP).
fn parse<P: DeserializeOwned>(tool: &str, arguments: JsonObject) -> Result<P, ErrorData> {
    serde_json::from_value(Value::Object(arguments)).map_err(|e| {
        ErrorData::new(
            ErrorCode::INVALID_PARAMS,
            format!("invalid arguments for tool {tool:?}: {e}"),
            Some(json!({ "kind": "invalid_arguments" })),
        )
    })
}
