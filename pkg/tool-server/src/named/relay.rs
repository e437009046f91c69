//! `/servers/{name}/mcp`: a named server's own tools, resources, resource templates,
//! prompts and completions, relayed through the pool (supervised children shared by
//! every caller, bounded). Stateless like `/mcp`, so any replica answers any request:
//! 2026-07-28 clients are answered request by request, and a legacy client's
//! `initialize` is answered here while the upstream session stays the pool's.

use std::sync::Arc;

use mcp_jobs_upstream::{Pool, Upstream, UpstreamError};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientRequest, CompleteRequest, CompleteRequestParams,
    CompleteResult, ErrorCode, GetPromptRequest, GetPromptRequestParams, GetPromptResponse,
    GetPromptResult, Implementation, InitializeResult, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequest, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    RequestOptionalParam, ResultType, ServerCapabilities, ServerResult,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::NamedServer;
use crate::caller;
use crate::tools::{failed_call, forwarded_meta, relayed};

/// The handler of one named server's endpoint, for one request: the server as the
/// servers file said when the request came.
#[derive(Clone)]
pub struct Relay {
    name: Arc<str>,
    server: Arc<NamedServer>,
    pool: Pool,
}

impl Relay {
    pub fn new(name: &str, server: Arc<NamedServer>, pool: Pool) -> Self {
        Self {
            name: name.into(),
            server,
            pool,
        }
    }

    fn upstream(&self) -> Upstream<'_> {
        self.server.upstream(&self.name)
    }

    /// Sends `request` to the upstream and reads its answer as a `T`.
    async fn forward<T: DeserializeOwned>(&self, request: ClientRequest) -> Result<T, ErrorData> {
        let answer = self
            .pool
            .request(self.upstream(), request, None)
            .await
            .map_err(relay_error)?;
        typed(answer)
    }
}

/// The upstream's answer as the type the method returns, with the `resultType` a
/// 2026-07-28 caller needs (a legacy upstream sends none; rmcp takes it out again for a
/// legacy caller). rmcp reads answers into an untagged union; going through JSON reads
/// it as what was asked for.
fn typed<T: DeserializeOwned>(answer: ServerResult) -> Result<T, ErrorData> {
    let unexpected = |e: serde_json::Error| {
        ErrorData::internal_error(
            format!("the upstream's answer is not what was asked: {e}"),
            None,
        )
    };
    let mut value = serde_json::to_value(answer).map_err(unexpected)?;
    if let Some(fields) = value.as_object_mut() {
        fields
            .entry("resultType")
            .or_insert_with(|| json!(ResultType::COMPLETE));
    }
    serde_json::from_value(value).map_err(unexpected)
}

/// A list request with the caller's cursor, if any.
fn paginated<M: Default>(
    params: Option<PaginatedRequestParams>,
) -> RequestOptionalParam<M, PaginatedRequestParams> {
    RequestOptionalParam {
        method: M::default(),
        params,
        extensions: Default::default(),
    }
}

/// An upstream's JSON-RPC error keeps its code; everything else (refused by the policy,
/// unreachable, timed out) is this gateway's own error, and says so.
fn relay_error(error: UpstreamError) -> ErrorData {
    let kind = error.kind();
    match &error {
        UpstreamError::Rejected { code, message, .. } => {
            ErrorData::new(ErrorCode(*code), message.clone(), None)
        }
        _ => ErrorData::new(
            ErrorCode::INTERNAL_ERROR,
            error.to_string(),
            Some(json!({ "kind": kind.as_str() })),
        ),
    }
}

impl ServerHandler for Relay {
    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self
            .pool
            .list_tools(self.upstream(), None)
            .await
            .map_err(relay_error)?;
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let token = context.meta.get_progress_token();
        let meta = forwarded_meta(context.meta);
        let arguments = request.arguments.unwrap_or_default();
        let call = caller::with_progress(token, context.peer, |sink| {
            let upstream = self.upstream();
            let tool = &request.name;
            async move {
                self.pool
                    .call_tool(upstream, tool, arguments, meta, sink.as_ref(), None)
                    .await
            }
        });
        let Some(called) = caller::unless_cancelled(&context.ct, call).await else {
            tracing::debug!(server = %self.name, tool = %request.name, "call cancelled by its caller");
            return Err(caller::cancelled_error());
        };
        match called {
            Ok(result) => Ok(CallToolResponse::Complete(relayed(result))),
            // The upstream's own JSON-RPC error (an unknown tool, bad arguments) as it is.
            Err(e @ UpstreamError::Rejected { .. }) => Err(relay_error(e)),
            // A call that could not be made (refused, unreachable, timed out).
            Err(e) => Ok(CallToolResponse::Complete(relayed(failed_call(
                e.kind().as_str(),
                e.to_string(),
            )))),
        }
    }

    async fn list_resources(
        &self,
        params: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.forward(ClientRequest::ListResourcesRequest(paginated(params)))
            .await
    }

    async fn list_resource_templates(
        &self,
        params: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.forward(ClientRequest::ListResourceTemplatesRequest(paginated(
            params,
        )))
        .await
    }

    async fn read_resource(
        &self,
        params: ReadResourceRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let read: ReadResourceResult = self
            .forward(ClientRequest::ReadResourceRequest(
                ReadResourceRequest::new(params),
            ))
            .await?;
        Ok(ReadResourceResponse::Complete(read))
    }

    async fn list_prompts(
        &self,
        params: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.forward(ClientRequest::ListPromptsRequest(paginated(params)))
            .await
    }

    async fn get_prompt(
        &self,
        params: GetPromptRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let prompt: GetPromptResult = self
            .forward(ClientRequest::GetPromptRequest(GetPromptRequest::new(
                params,
            )))
            .await?;
        Ok(GetPromptResponse::Complete(prompt))
    }

    async fn complete(
        &self,
        params: CompleteRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        self.forward(ClientRequest::CompleteRequest(CompleteRequest::new(params)))
            .await
    }

    fn get_info(&self) -> InitializeResult {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_prompts()
            .enable_completions()
            .build();
        InitializeResult::new(capabilities).with_server_info(Implementation::new(
            format!("mcp-jobs: {}", &*self.name),
            env!("CARGO_PKG_VERSION"),
        ))
    }
}
