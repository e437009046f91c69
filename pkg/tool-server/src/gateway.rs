//! The REST gateway (seed 003): the same tools as `/mcp`, for callers that speak plain
//! HTTP rather than MCP.
//!
//! - `GET  /tools`: names, descriptions and input schemas.
//! - `POST /tools/{name}` with `{"arguments": {...}}`: the tool's result as JSON.
//! - `POST /tools/{name}/stream`: Server-Sent Events `started`, `progress`…, then
//!   `result` (or `error`), then `done`.
//! - `GET  /ws/tools/{name}`: a WebSocket; each text message `{"arguments": {...},
//!   "id": ...}` runs the tool and gets the same events back, tagged with its `id`.

use std::convert::Infallible;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use mcp_jobs_upstream::{relay_progress, FailureKind, Progress};
use rmcp::model::{CallToolResult, JsonObject};
use rmcp::ErrorData;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tracing::Instrument;

use crate::tools::ServerTools;
use crate::trace;

pub fn routes() -> Router<ServerTools> {
    Router::new()
        .route("/tools", get(list_tools))
        .route("/tools/{name}", post(call_tool))
        .route("/tools/{name}/stream", post(stream_tool))
        .route("/ws/tools/{name}", get(websocket_tool))
}

/// The body of a gateway call.
#[derive(Debug, Default, Deserialize)]
pub struct ToolRequest {
    #[serde(default)]
    pub arguments: JsonObject,
    /// Echoed on every event of this call (WebSocket callers match answers by it).
    #[serde(default)]
    pub id: Option<Value>,
}

/// What a streaming call reports, in order: `started`, `progress`…, `result` or
/// `error`, `done`.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum GatewayEvent {
    Started { tool: String },
    Progress(Progress),
    Result { result: CallToolResult },
    Error(ErrorBody),
    Done { status: &'static str },
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    error: String,
    kind: String,
}

#[derive(Debug, Serialize)]
struct Tagged {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<Value>,
    #[serde(flatten)]
    event: GatewayEvent,
}

async fn list_tools(State(tools): State<ServerTools>) -> Json<Value> {
    Json(json!({ "tools": tools.catalog() }))
}

async fn call_tool(
    State(tools): State<ServerTools>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Json(request): Json<ToolRequest>,
) -> Response {
    let span = trace::tool_call_span(&name, Some(&headers), &JsonObject::new());
    match tools
        .call(&name, request.arguments, None)
        .instrument(span)
        .await
    {
        Ok(result) => Json(result).into_response(),
        Err(error) => {
            let body = ErrorBody::from(error);
            (status_of(&body.kind), Json(body)).into_response()
        }
    }
}

async fn stream_tool(
    State(tools): State<ServerTools>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Json(request): Json<ToolRequest>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = run_streaming(tools, name, request, &headers).map(|tagged| {
        let name = event_name(&tagged.event);
        Ok(Event::default()
            .event(name)
            .json_data(&tagged)
            .unwrap_or_else(|_| Event::default().event(name)))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

async fn websocket_tool(
    State(tools): State<ServerTools>,
    Path(name): Path<String>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade.on_upgrade(move |socket| serve_websocket(socket, tools, name, headers))
}

/// Runs each request on the socket in turn until the client closes it. Every request
/// continues the trace of the upgrade request, if it carried one.
async fn serve_websocket(
    mut socket: WebSocket,
    tools: ServerTools,
    name: String,
    headers: HeaderMap,
) {
    while let Some(Ok(message)) = socket.recv().await {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => break,
            _ => continue,
        };
        let mut events = match serde_json::from_str::<ToolRequest>(&text) {
            Ok(request) => run_streaming(tools.clone(), name.clone(), request, &headers).boxed(),
            Err(e) => futures::stream::iter([Tagged {
                id: None,
                event: GatewayEvent::Error(ErrorBody {
                    error: format!(
                        "the message is not a tool request ({{\"arguments\": {{...}}, \"id\": ...}}): {e}"
                    ),
                    kind: "invalid_request".into(),
                }),
            }])
            .boxed(),
        };
        while let Some(event) = events.next().await {
            let Ok(json) = serde_json::to_string(&event) else {
                continue;
            };
            if socket.send(Message::Text(json.into())).await.is_err() {
                return;
            }
        }
    }
}

/// Runs the tool in its own task and streams its events. Dropping the stream (the
/// client went away) cancels the call.
fn run_streaming(
    tools: ServerTools,
    name: String,
    request: ToolRequest,
    headers: &HeaderMap,
) -> impl Stream<Item = Tagged> + Send {
    let span = trace::tool_call_span(&name, Some(headers), &JsonObject::new());
    let (events, received) = mpsc::unbounded_channel();
    let id = request.id;
    let emit = move |event| {
        let _ = events.send(Tagged {
            id: id.clone(),
            event,
        });
    };
    let task = tokio::spawn(
        async move {
            emit(GatewayEvent::Started { tool: name.clone() });
            let (sink, updates) = mpsc::unbounded_channel();
            let call = tools.call(&name, request.arguments, Some(&sink));
            let result = relay_progress(call, UnboundedReceiverStream::new(updates), |update| {
                emit(GatewayEvent::Progress(update));
                std::future::ready(())
            })
            .await;
            let status = match result {
                Ok(result) => {
                    emit(GatewayEvent::Result { result });
                    "complete"
                }
                Err(error) => {
                    emit(GatewayEvent::Error(error.into()));
                    "failed"
                }
            };
            emit(GatewayEvent::Done { status });
        }
        .instrument(span),
    );
    let guard = AbortOnDrop(task.abort_handle());
    UnboundedReceiverStream::new(received).map(move |event| {
        let _ = &guard;
        event
    })
}

/// Aborts the call's task when the stream that owns it is dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn event_name(event: &GatewayEvent) -> &'static str {
    match event {
        GatewayEvent::Started { .. } => "started",
        GatewayEvent::Progress(_) => "progress",
        GatewayEvent::Result { .. } => "result",
        GatewayEvent::Error(_) => "error",
        GatewayEvent::Done { .. } => "done",
    }
}

impl From<ErrorData> for ErrorBody {
    fn from(error: ErrorData) -> Self {
        let kind = error
            .data
            .as_ref()
            .and_then(|d| d.get("kind"))
            .and_then(Value::as_str)
            .unwrap_or("invalid_arguments")
            .to_owned();
        Self {
            error: error.message.into_owned(),
            kind,
        }
    }
}

/// The HTTP status that says whose problem a failure is.
fn status_of(kind: &str) -> StatusCode {
    match FailureKind::parse(kind) {
        FailureKind::Refused => StatusCode::FORBIDDEN,
        FailureKind::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
        FailureKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        FailureKind::UpstreamRejected => StatusCode::UNPROCESSABLE_ENTITY,
        FailureKind::Other(kind) if kind == "unknown_tool" => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    }
}
