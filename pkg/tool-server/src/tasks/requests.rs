//! What of the Tasks extension is answered before rmcp reads a request, at `/mcp` and at
//! each named endpoint:
//! - a `tasks/*` request without `Mcp-Name` is named by its `params.taskId`. The
//!   extension asks clients to send it, but the core transport's header table lists
//!   only `tools/call`, `resources/read` and `prompts/get`, and the Python SDK's tasks
//!   clients (FastMCP's among them) send none on `tasks/*`; a name that disagrees with
//!   the body is still refused by rmcp (-32020).
//! - `subscriptions/listen` for `taskIds` is served here, as a stream of
//!   `notifications/tasks`: rmcp's subscription filter has no `taskIds` and its sink
//!   refuses task notifications. Each notification is the task as `tasks/get` would
//!   answer then; the stream ends with the listen request's result once every task it
//!   follows has ended.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use mcp_jobs_contract::task::TaskRecord;
use rmcp::model::{ClientCapabilities, DetailedTask};
use rmcp::ErrorData;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{Scope, TasksSlot};

/// The `tasks/*` methods, whose `Mcp-Name` is the task id.
const TASK_METHODS: [&str; 3] = ["tasks/get", "tasks/update", "tasks/cancel"];

/// The most tasks one `subscriptions/listen` follows; the rest are not acknowledged.
const MAX_TASKS_PER_LISTEN: usize = 100;

/// How long a listen waits for a change before it looks again anyway (an expired task
/// changes nothing on the topic).
const LOOK_AGAIN: Duration = Duration::from_secs(15);

const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// The layer's state: the body limit, and the tasks if mcp-server has Kafka.
#[derive(Clone)]
pub struct TasksLayer {
    pub max_body_bytes: usize,
    pub tasks: Option<TasksSlot>,
}

/// The middleware: see the module's comment. Every other request passes untouched, its
/// body unread.
pub async fn before_rmcp(
    State(layer): State<TasksLayer>,
    request: Request,
    next: Next,
) -> Response {
    let method = request
        .headers()
        .get("mcp-method")
        .and_then(|m| m.to_str().ok());
    let unnamed_task_request = method.is_some_and(|m| TASK_METHODS.contains(&m))
        && !request.headers().contains_key("mcp-name");
    let listen = method == Some("subscriptions/listen") && layer.tasks.is_some();
    if !unnamed_task_request && !listen {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, layer.max_body_bytes).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let message: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if unnamed_task_request {
        let task_id = message["params"]["taskId"].as_str();
        if let Some(task_id) = task_id.and_then(|id| HeaderValue::from_str(id).ok()) {
            parts.headers.insert("mcp-name", task_id);
        }
    }
    match (listen, &layer.tasks) {
        (true, Some(tasks)) if message["params"]["notifications"]["taskIds"].is_array() => {
            listen_to_tasks(tasks, &parts, &message).await
        }
        _ => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}

/// Answers a `subscriptions/listen` for task ids: the acknowledgement naming the tasks
/// this caller may follow at this endpoint, then their status as it changes.
async fn listen_to_tasks(slot: &TasksSlot, parts: &Parts, message: &Value) -> Response {
    let id = message["id"].clone();
    let params = &message["params"];
    let declared = params["_meta"]["io.modelcontextprotocol/clientCapabilities"]["extensions"]
        ["io.modelcontextprotocol/tasks"]
        .is_object();
    if !declared {
        let refused = ErrorData::missing_required_client_capability(
            ClientCapabilities::builder().enable_tasks().build(),
        );
        return error_response(id, refused);
    }
    let path = parts.uri.path().to_owned();
    let Some(scope) = scope_of(&path) else {
        return error_response(id, ErrorData::invalid_request("not an MCP endpoint", None));
    };
    let tasks = match slot.get() {
        Ok(tasks) => tasks,
        Err(e) => return error_response(id, e),
    };
    let owner = super::owner_of_headers(&parts.headers);
    let mut followed = Vec::new();
    let asked = params["notifications"]["taskIds"].as_array().into_iter();
    for task_id in asked.flatten().filter_map(Value::as_str) {
        if followed.len() < MAX_TASKS_PER_LISTEN && tasks.find(task_id, &owner, scope).await.is_ok()
        {
            followed.push(task_id.to_owned());
        }
    }
    let (events, stream) = mpsc::channel(16);
    let acknowledged = json!({
        "jsonrpc": "2.0",
        "method": "notifications/subscriptions/acknowledged",
        "params": {"_meta": {SUBSCRIPTION_ID: id}, "notifications": {"taskIds": followed}},
    });
    // A fresh channel has room for the first event.
    let _ = events.try_send(event(&acknowledged));
    let listen = Listen {
        slot: slot.clone(),
        path,
        owner,
        id,
        followed,
        events,
    };
    tokio::spawn(listen.push());
    Sse::new(ReceiverStream::new(stream))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// One listen's pushing: until its tasks have ended, or its caller goes away.
struct Listen {
    slot: TasksSlot,
    path: String,
    owner: String,
    /// The listen request's id, which names the subscription.
    id: Value,
    followed: Vec<String>,
    events: mpsc::Sender<Result<Event, Infallible>>,
}

/// What a notification was last sent for: the task's job status and its cancellation.
type Seen = (Option<TaskRecord>, Option<DateTime<Utc>>);

impl Listen {
    async fn push(self) {
        let (Ok(tasks), Some(scope)) = (self.slot.get(), scope_of(&self.path)) else {
            return;
        };
        let mut seen: Vec<Option<Seen>> = vec![None; self.followed.len()];
        let mut ended = vec![false; self.followed.len()];
        loop {
            let changed = tasks.registry.changed();
            for (i, task_id) in self.followed.iter().enumerate() {
                if ended[i] {
                    continue;
                }
                // A task whose TTL passed is no longer followed.
                let Some(task) = tasks.registry.peek(task_id, &self.owner) else {
                    ended[i] = true;
                    continue;
                };
                if !scope.holds(&task.created) {
                    ended[i] = true;
                    continue;
                }
                let now = Some((task.status.clone(), task.cancelled_at));
                if seen[i] == now {
                    continue;
                }
                seen[i] = now;
                let detailed = tasks.detailed(&task).await;
                ended[i] = detailed.payload.status().is_terminal();
                if !self.send(notification(&self.id, &detailed)).await {
                    return;
                }
            }
            if ended.iter().all(|e| *e) {
                let result = json!({
                    "jsonrpc": "2.0",
                    "id": self.id,
                    "result": {"resultType": "complete", "_meta": {SUBSCRIPTION_ID: self.id}},
                });
                self.send(result).await;
                return;
            }
            tokio::select! {
                _ = changed => {}
                _ = self.events.closed() => return,
                _ = tokio::time::sleep(LOOK_AGAIN) => {}
            }
        }
    }

    /// Sends `message` on the stream; false once the caller has gone.
    async fn send(&self, message: Value) -> bool {
        self.events.send(event(&message)).await.is_ok()
    }
}

/// A `notifications/tasks` carrying the task as `tasks/get` answers it now.
fn notification(id: &Value, detailed: &DetailedTask) -> Value {
    let mut params = serde_json::to_value(detailed).unwrap_or_default();
    params["_meta"] = json!({ SUBSCRIPTION_ID: id });
    json!({"jsonrpc": "2.0", "method": "notifications/tasks", "params": params})
}

fn event(message: &Value) -> Result<Event, Infallible> {
    Ok(Event::default().event("message").data(message.to_string()))
}

fn error_response(id: Value, error: ErrorData) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": id, "error": error});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// The endpoint of a request path: `/mcp`, or `/servers/{name}/mcp`.
fn scope_of(path: &str) -> Option<Scope<'_>> {
    if path == "/mcp" {
        return Some(Scope::Mcp);
    }
    let name = path.strip_prefix("/servers/")?.strip_suffix("/mcp")?;
    (!name.is_empty() && !name.contains('/')).then_some(Scope::Named(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_path_names_its_endpoint() {
        assert!(matches!(scope_of("/mcp"), Some(Scope::Mcp)));
        assert!(matches!(
            scope_of("/servers/time/mcp"),
            Some(Scope::Named("time"))
        ));
        for other in ["/servers//mcp", "/servers/a/b/mcp", "/stats", "/mcp/x"] {
            assert!(scope_of(other).is_none(), "{other}");
        }
    }
}
