//! The messaging tools of seed 002: clients check in under an id, send each other
//! messages, and may block until the other side answers. Replies may come through any
//! replica: queues and wake-ups live in Redis.

use std::time::{Duration, Instant};

use mcp_jobs_shared_state::messaging::render_messages;
use mcp_jobs_shared_state::MessagingError;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, JsonObject};
use rmcp::{tool, tool_router, ErrorData};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::{answer, parse, ServerTools};

/// The messaging tools' names, as routed.
pub(super) const TOOLS: [&str; 5] = [
    "checkin_client",
    "send_message",
    "send_message_and_wait",
    "get_messages",
    "get_my_identity",
];

const DEFAULT_WAIT_SECONDS: f64 = 60.0;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CheckinParams {
    /// Your client id: others send to it, and it is what reads your messages.
    pub client_id: String,
    /// A display name (default: the id).
    #[serde(default)]
    pub name: String,
    /// What this client can do, for others to see.
    #[serde(default)]
    pub capabilities: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SendParams {
    pub sender_id: String,
    pub recipient_id: String,
    pub message: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SendAndWaitParams {
    pub sender_id: String,
    pub recipient_id: String,
    pub message: String,
    /// Seconds to wait for the answer (default 60).
    pub timeout: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ClientParams {
    pub client_id: String,
}

#[tool_router(router = messaging_router, vis = "pub(super)")]
impl ServerTools {
    #[tool(
        description = "Announce a client: its id (which others send to), a display name and its capabilities. Checking in again updates them."
    )]
    async fn checkin_client(&self, Parameters(p): Parameters<CheckinParams>) -> CallToolResult {
        let started = Instant::now();
        let result = self
            .mailboxes
            .check_in(&p.client_id, &p.name, p.capabilities)
            .await
            .map(|info| {
                let text = format!("Checked in {} as {:?}.", info.id, info.name);
                answer(json!({ "client": info }), text)
            });
        self.answered("checkin_client", started, result.map_err(failure))
    }

    #[tool(description = "Send a message to another client's queue and return at once.")]
    async fn send_message(&self, Parameters(p): Parameters<SendParams>) -> CallToolResult {
        let started = Instant::now();
        let result = self
            .mailboxes
            .send(&p.sender_id, &p.recipient_id, &p.message)
            .await
            .map(|sent| {
                let text = format!("Sent message {} to {}.", sent.id, sent.to);
                answer(json!({ "message": sent }), text)
            });
        self.answered("send_message", started, result.map_err(failure))
    }

    #[tool(
        description = "Send a message, then block until the recipient answers (its next message to the sender) or `timeout` seconds pass (default 60)."
    )]
    async fn send_message_and_wait(
        &self,
        Parameters(p): Parameters<SendAndWaitParams>,
    ) -> CallToolResult {
        let started = Instant::now();
        let timeout = wait_of(p.timeout);
        let result = self
            .mailboxes
            .send_and_wait(&p.sender_id, &p.recipient_id, &p.message, timeout)
            .await
            .map(|(sent, reply)| {
                answer(
                    json!({ "sent": sent, "reply": reply.messages.first() }),
                    render_messages(&p.sender_id, &reply),
                )
            });
        self.answered("send_message_and_wait", started, result.map_err(failure))
    }

    #[tool(
        description = "Take the client's pending messages (they are removed), as Markdown with how long ago each was sent."
    )]
    async fn get_messages(&self, Parameters(p): Parameters<ClientParams>) -> CallToolResult {
        let started = Instant::now();
        let result = self.mailboxes.take_all(&p.client_id).await.map(|taken| {
            let text = render_messages(&p.client_id, &taken);
            answer(json!({ "messages": taken.messages }), text)
        });
        self.answered("get_messages", started, result.map_err(failure))
    }

    #[tool(
        description = "How to set up your identity (mcp_recipients.json), and which clients have checked in."
    )]
    async fn get_my_identity(&self) -> CallToolResult {
        let started = Instant::now();
        let result = self.mailboxes.clients().await.map(|clients| {
            let listed: Vec<String> = clients
                .iter()
                .map(|c| match c.capabilities.as_slice() {
                    [] => format!("- `{}`: {}", c.id, c.name),
                    caps => format!("- `{}`: {} ({})", c.id, c.name, caps.join(", ")),
                })
                .collect();
            let listed = if listed.is_empty() {
                "None yet.".to_owned()
            } else {
                listed.join("\n")
            };
            let text = format!("{IDENTITY_HELP}\n## Clients checked in\n\n{listed}\n");
            answer(json!({ "clients": clients }), text)
        });
        self.answered("get_my_identity", started, result.map_err(failure))
    }
}

impl ServerTools {
    /// Runs a messaging tool by name with JSON arguments, for the gateway.
    pub(super) async fn call_messaging_tool(
        &self,
        name: &str,
        arguments: JsonObject,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match name {
            "checkin_client" => {
                self.checkin_client(Parameters(parse(name, arguments)?))
                    .await
            }
            "send_message" => self.send_message(Parameters(parse(name, arguments)?)).await,
            "send_message_and_wait" => {
                self.send_message_and_wait(Parameters(parse(name, arguments)?))
                    .await
            }
            "get_messages" => self.get_messages(Parameters(parse(name, arguments)?)).await,
            _ => self.get_my_identity().await,
        })
    }
}

const IDENTITY_HELP: &str = r#"# Your identity

Messages are addressed by client id, and your id is also what reads your messages:
keep it to yourself. Keep it in `mcp_recipients.json` beside your MCP configuration:

```json
{
  "my_id": "your-id",
  "recipients": {
    "their-id": { "name": "Display name", "description": "What they do" }
  }
}
```

Call `checkin_client` with your id once per session; then `send_message`,
`send_message_and_wait` and `get_messages` with it.
"#;

fn failure(error: MessagingError) -> (&'static str, String) {
    (error.kind(), error.to_string())
}

/// The caller's timeout in seconds; absent, zero, negative or not a number means the
/// default.
fn wait_of(seconds: Option<f64>) -> Duration {
    let seconds = seconds
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(DEFAULT_WAIT_SECONDS);
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
}
