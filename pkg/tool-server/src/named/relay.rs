//! `/servers/{name}/mcp`: a named server's own tools, resources, resource templates,
//! prompts and completions, relayed through the pool (supervised children shared by
//! every caller, bounded). Stateless like `/mcp`, so any replica answers any request:
//! 2026-07-28 clients are answered request by request, and a legacy client's
//! `initialize` is answered here while the upstream session stays the pool's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mcp_jobs_contract::task::TaskEndpoint;
use mcp_jobs_upstream::{Pool, Upstream, UpstreamError};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, ClientRequest, CompleteRequest,
    CompleteRequestParams, CompleteResult, ErrorCode, GetPromptRequest, GetPromptRequestParams,
    GetPromptResponse, GetTaskParams, GetTaskResult, Implementation, InitializeResult,
    InputRequest, InputRequests, InputResponses, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProtocolVersion,
    ReadResourceRequest, ReadResourceRequestParams, ReadResourceResponse, RequestMetaObject,
    RequestOptionalParam, ResultType, ServerCapabilities, ServerRequest, ServerResult, Tool,
    UpdateTaskParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::routes::Named;
use super::NamedServer;
use crate::caller;
use crate::tasks::{self, Run, Scope, TaskCall, TasksSlot};
use crate::tools::{failed_call, forwarded_meta, relayed};

/// The handler of one named server's endpoint, for one request: the server as the
/// servers file said when the request came.
#[derive(Clone)]
pub struct Relay {
    name: Arc<str>,
    server: Arc<NamedServer>,
    pool: Pool,
    listed: ListedTools,
    tasks: Option<TasksSlot>,
}

/// The tools each named server listed last on this replica. A 2026-07-28 call's
/// `Mcp-Param-*` headers must match its arguments where the tool's schema says
/// `x-mcp-header`, and the gateway, being the server its callers see, checks them as the
/// upstream would (rmcp does, given the schema). Kept with the server's description, so
/// a server the servers file changed is listed afresh; until a server has been listed
/// here, its calls go unchecked (the upstream gets headers mirrored from the arguments).
#[derive(Clone, Default)]
pub struct ListedTools(Arc<Mutex<HashMap<Arc<str>, Listed>>>);

/// A server's tools, with the description of the server that listed them.
type Listed = (Arc<NamedServer>, Arc<[Tool]>);

impl ListedTools {
    fn remember(&self, name: &Arc<str>, server: &Arc<NamedServer>, tools: &[Tool]) {
        let mut listed = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        listed.insert(name.clone(), (server.clone(), tools.into()));
    }

    fn find(&self, name: &str, server: &Arc<NamedServer>, tool: &str) -> Option<Tool> {
        let listed = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (described, tools) = listed.get(name)?;
        if !Arc::ptr_eq(described, server) {
            return None;
        }
        tools.iter().find(|t| t.name == tool).cloned()
    }
}

impl Relay {
    pub fn new(name: &str, server: Arc<NamedServer>, named: &Named) -> Self {
        Self {
            name: name.into(),
            server,
            pool: named.pool.clone(),
            listed: named.listed.clone(),
            tasks: named.tasks.clone(),
        }
    }

    /// Runs a call of this server's as a durable task (see [`tasks::call_as_task`]).
    async fn call_as_task(
        &self,
        request: CallToolRequestParams,
        context: &RequestContext<RoleServer>,
        inline_within: Option<Duration>,
    ) -> Result<CallToolResponse, ErrorData> {
        let call = TaskCall {
            endpoint: TaskEndpoint::Named,
            server: self.name.to_string(),
            config: None,
            tool: request.name.to_string(),
            arguments: request.arguments.unwrap_or_default(),
            timeout_ms: None,
        };
        tasks::call_as_task(self.tasks.as_ref(), call, context, inline_within).await
    }

    fn scope(&self) -> Scope<'_> {
        Scope::Named(&self.name)
    }

    fn upstream(&self) -> Upstream<'_> {
        self.server.upstream(&self.name)
    }

    /// Sends `request` to the upstream and returns its answer.
    async fn answer(&self, request: ClientRequest) -> Result<ServerResult, ErrorData> {
        self.pool
            .request(self.upstream(), request, None)
            .await
            .map_err(relay_error)
    }

    /// Sends `request` to the upstream and reads its answer as a `T`.
    async fn forward<T: DeserializeOwned>(&self, request: ClientRequest) -> Result<T, ErrorData> {
        typed(self.answer(request).await?)
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
        UpstreamError::Rejected {
            code,
            message,
            data,
            ..
        } => ErrorData::new(ErrorCode(*code), message.clone(), data.clone()),
        _ => ErrorData::new(
            ErrorCode::INTERNAL_ERROR,
            error.to_string(),
            Some(json!({ "kind": kind.as_str() })),
        ),
    }
}

/// How many times a legacy caller is asked for input for one call before the call is
/// given up (rmcp's own client stops at the same bound).
const MAX_INPUT_ROUNDS: usize = rmcp::model::DEFAULT_MRTR_MAX_ROUNDS;

/// Whether the caller takes input-required results itself (2026-07-28 and later).
fn speaks_input_required(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28)
}

/// The `_meta` the upstream gets: the caller's own keys, and what the caller can answer
/// and wants logged (its declared capabilities and log level), so that the upstream asks
/// for nothing the caller cannot give and logs only what it asked for.
fn upstream_meta(context: &RequestContext<RoleServer>) -> Option<RequestMetaObject> {
    let mut meta = forwarded_meta(context.meta.clone()).unwrap_or_default();
    if let Some(capabilities) = context.client_capabilities() {
        meta.set_client_capabilities(capabilities);
    }
    if let Some(level) = context.meta.log_level() {
        meta.set_log_level(level);
    }
    (!meta.0 .0.is_empty()).then_some(meta)
}

/// Asks a legacy caller, on its session, what the upstream asked for, and returns its
/// answers keyed as the upstream keyed the requests.
async fn ask_legacy_caller(
    context: &RequestContext<RoleServer>,
    asked: Option<InputRequests>,
) -> Result<InputResponses, ErrorData> {
    let mut answers = InputResponses::new();
    for (key, request) in asked.unwrap_or_default() {
        let request = match request {
            InputRequest::CreateMessage(r) => ServerRequest::CreateMessageRequest(r),
            InputRequest::Elicitation(r) => ServerRequest::ElicitRequest(r),
            InputRequest::ListRoots(r) => ServerRequest::ListRootsRequest(r),
            other => {
                return Err(ErrorData::internal_error(
                    format!("the upstream asked for input mcp-server cannot relay: {other:?}"),
                    None,
                ))
            }
        };
        let answer = context.peer.send_request(request).await.map_err(|e| {
            ErrorData::internal_error(
                format!(
                    "the upstream asked the caller for input ({key}) and the caller did not \
                     answer: {e}"
                ),
                None,
            )
        })?;
        let answer = serde_json::to_value(answer)
            .map_err(|e| ErrorData::internal_error(format!("the caller's answer: {e}"), None))?;
        answers.insert(key, answer);
    }
    Ok(answers)
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
        self.listed.remember(&self.name, &self.server, &tools);
        Ok(ListToolsResult::with_all_items(tools))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.listed.find(&self.name, &self.server, name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if self.tasks.is_some() {
            let mode = self.server.options.task_mode(&request.name);
            if let Run::Task(inline_within) = mode.run(tasks::supports_tasks(&context)) {
                return self.call_as_task(request, &context, inline_within).await;
            }
        }
        let token = context.meta.get_progress_token();
        let mut params = request;
        params.meta = upstream_meta(&context);
        // A 2026-07-28 caller answers the upstream's input requests itself and calls
        // again (the rounds are its own); a legacy caller cannot, so they are asked
        // here, on its session, and the call is made again for it.
        for _ in 0..MAX_INPUT_ROUNDS {
            let call = caller::with_progress(token.clone(), context.peer.clone(), |sink| {
                let upstream = self.upstream();
                let params = params.clone();
                async move {
                    self.pool
                        .call_tool(upstream, params, sink.as_ref(), None)
                        .await
                }
            });
            let Some(called) = caller::unless_cancelled(&context.ct, call).await else {
                tracing::debug!(server = %self.name, tool = %params.name, "call cancelled by its caller");
                return Err(caller::cancelled_error());
            };
            match called {
                Ok(CallToolResponse::Complete(result)) => {
                    return Ok(CallToolResponse::Complete(relayed(result)))
                }
                Ok(CallToolResponse::InputRequired(asked)) if !speaks_input_required(&context) => {
                    if !self.server.options.sessions {
                        return Err(ErrorData::invalid_request(
                            format!(
                                "tool {:?} asks its caller for input (sampling, elicitation or \
                                 roots), which a legacy client can answer only on a session: \
                                 the servers file gives server {:?} none (\"mcpJobs\": \
                                 {{\"sessions\": true}}), or call it at 2026-07-28",
                                params.name, self.name
                            ),
                            None,
                        ));
                    }
                    let answers = ask_legacy_caller(&context, asked.input_requests);
                    let Some(answers) = caller::unless_cancelled(&context.ct, answers).await else {
                        return Err(caller::cancelled_error());
                    };
                    params.input_responses = Some(answers?);
                    params.request_state = asked.request_state;
                }
                Ok(answer) => return Ok(answer),
                // The upstream's own JSON-RPC error (an unknown tool, bad arguments) as it is.
                Err(e @ UpstreamError::Rejected { .. }) => return Err(relay_error(e)),
                // A call that could not be made (refused, unreachable, timed out).
                Err(e) => {
                    return Ok(CallToolResponse::Complete(relayed(failed_call(
                        e.kind().as_str(),
                        e.to_string(),
                    ))))
                }
            }
        }
        Err(ErrorData::internal_error(
            format!(
                "tool {:?} still asked for input after {MAX_INPUT_ROUNDS} rounds",
                params.name
            ),
            None,
        ))
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
        let request = ReadResourceRequest::new(params);
        match self
            .answer(ClientRequest::ReadResourceRequest(request))
            .await?
        {
            ServerResult::InputRequiredResult(asked) => {
                Ok(ReadResourceResponse::InputRequired(asked))
            }
            read => typed(read).map(ReadResourceResponse::Complete),
        }
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
        let request = GetPromptRequest::new(params);
        match self
            .answer(ClientRequest::GetPromptRequest(request))
            .await?
        {
            ServerResult::InputRequiredResult(asked) => Ok(GetPromptResponse::InputRequired(asked)),
            prompt => typed(prompt).map(GetPromptResponse::Complete),
        }
    }

    async fn complete(
        &self,
        params: CompleteRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        self.forward(ClientRequest::CompleteRequest(CompleteRequest::new(params)))
            .await
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        tasks::at(self.tasks.as_ref(), self.scope())
            .get(request, &context)
            .await
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        tasks::at(self.tasks.as_ref(), self.scope())
            .update(request, &context)
            .await
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        tasks::at(self.tasks.as_ref(), self.scope())
            .cancel(request, &context)
            .await
    }

    fn get_info(&self) -> InitializeResult {
        let builder = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_prompts()
            .enable_completions();
        let capabilities = if self.tasks.is_some() && self.server.options.offers_tasks() {
            builder.enable_tasks().build()
        } else {
            builder.build()
        };
        InitializeResult::new(capabilities).with_server_info(Implementation::new(
            format!("mcp-jobs: {}", &*self.name),
            env!("CARGO_PKG_VERSION"),
        ))
    }
}
