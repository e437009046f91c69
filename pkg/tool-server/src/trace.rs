//! The spans of one tool call on mcp-server. A call continues its caller's trace —
//! from the W3C headers of the HTTP request that carried it, else from its `_meta` —
//! and its upstream MCP call is a child span, whose context travels on to the upstream
//! server in the request's `_meta`.

use mcp_jobs_contract::META_JOB_ID;
use mcp_jobs_telemetry::propagation;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{CallToolRequestParams, CallToolResponse, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use tracing::field::Empty;
use tracing::{Instrument, Span};

/// Routes an MCP `tools/call` through `router`, inside the span of [`mcp_call_span`].
pub async fn call_traced<S: Send + Sync + 'static>(
    router: &ToolRouter<S>,
    handler: &S,
    request: CallToolRequestParams,
    context: RequestContext<RoleServer>,
) -> Result<CallToolResponse, ErrorData> {
    let span = mcp_call_span(&request.name, &context);
    router
        .call(ToolCallContext::new(handler, request, context))
        .instrument(span)
        .await
}

/// The span of an MCP `tools/call` request to mcp-server.
pub fn mcp_call_span(tool: &str, context: &RequestContext<RoleServer>) -> Span {
    let headers = context
        .extensions
        .get::<http::request::Parts>()
        .map(|parts| &parts.headers);
    tool_call_span(tool, headers, &context.meta.0 .0)
}

/// The span of a tool call arriving over MCP or the REST/WebSocket gateway.
pub fn tool_call_span(tool: &str, headers: Option<&http::HeaderMap>, meta: &JsonObject) -> Span {
    let span = tracing::info_span!(
        "tool call",
        otel.name = format!("tools/call {tool}"),
        otel.kind = "server",
        tool,
        job_id = Empty,
        trace_id = Empty,
    );
    if let Some(job_id) = meta.get(META_JOB_ID).and_then(|id| id.as_str()) {
        span.record("job_id", job_id);
    }
    let from_headers = headers
        .map(propagation::from_http)
        .filter(propagation::is_remote_parent);
    let parent = from_headers.unwrap_or_else(|| propagation::from_meta(meta));
    propagation::continue_trace(&span, parent);
    span
}

/// The span of mcp-server's own call to an upstream server, inside a tool call's span.
pub fn upstream_span(method: &'static str, server: &str) -> Span {
    tracing::info_span!(
        "upstream call",
        otel.name = format!("{method} {server}"),
        otel.kind = "client",
        method,
        server,
    )
}
