//! The Redis Streams tools of seed 004, on names that follow `service:purpose:stream`.
//! A Redis that is away gives a result saying so (and that mcp-server is reconnecting)
//! rather than a call that hangs.

use std::time::Instant;

use mcp_jobs_shared_state::{StreamName, StreamsError};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, JsonObject};
use rmcp::{tool, tool_router, ErrorData};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::{answer, parse, ServerTools};

/// The most entries one `get_stream_messages` returns.
const MAX_COUNT: usize = 1000;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AddParams {
    /// `service:purpose:stream`, e.g. `billing:invoices:events`.
    pub stream: String,
    /// The entry's fields; strings are stored as they are, other values as JSON text.
    pub message: JsonObject,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RangeParams {
    pub stream: String,
    /// First id to return (default `-`, the oldest).
    #[serde(default = "oldest")]
    pub start: String,
    /// Last id to return (default `+`, the newest).
    #[serde(default = "newest")]
    pub end: String,
    /// At most this many entries (default 10, at most 1000).
    #[serde(default = "default_count")]
    pub count: usize,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GroupParams {
    pub stream: String,
    pub group: String,
    /// Where the group starts: `$` for new entries only (default), `0` for all.
    #[serde(default = "newest_only")]
    pub start: String,
    /// Create the stream if it does not exist (default true).
    #[serde(default = "yes")]
    pub create_stream: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct StreamParams {
    pub stream: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListParams {
    /// A Redis glob over stream names (default `*`), e.g. `billing:*`.
    #[serde(default = "everything")]
    pub pattern: String,
    /// At most this many streams (default 100).
    #[serde(default = "default_limit")]
    pub limit: usize,
}

fn oldest() -> String {
    "-".into()
}
fn newest() -> String {
    "+".into()
}
fn newest_only() -> String {
    "$".into()
}
fn everything() -> String {
    "*".into()
}
fn default_count() -> usize {
    10
}
fn default_limit() -> usize {
    100
}
fn yes() -> bool {
    true
}

#[tool_router(router = streams_router, vis = "pub(super)")]
impl ServerTools {
    #[tool(description = "Append an entry (fields and values) to a Redis stream; returns its id.")]
    async fn add_stream_message(&self, Parameters(p): Parameters<AddParams>) -> CallToolResult {
        let started = Instant::now();
        let result = async {
            let stream = StreamName::parse(&p.stream)?;
            let id = self.streams.add(&stream, &p.message).await?;
            Ok(answer(
                json!({ "stream": p.stream, "id": id }),
                format!("Added entry {id} to {}.", p.stream),
            ))
        }
        .await;
        self.answered("add_stream_message", started, result.map_err(failure))
    }

    #[tool(
        description = "Read entries of a Redis stream between two ids (default: the 10 oldest)."
    )]
    async fn get_stream_messages(&self, Parameters(p): Parameters<RangeParams>) -> CallToolResult {
        let started = Instant::now();
        let result = async {
            let stream = StreamName::parse(&p.stream)?;
            let count = p.count.clamp(1, MAX_COUNT);
            let entries = self.streams.range(&stream, &p.start, &p.end, count).await?;
            let text = format!("{} entries of {}", entries.len(), p.stream);
            Ok(answer(
                json!({ "stream": p.stream, "entries": entries }),
                text,
            ))
        }
        .await;
        self.answered("get_stream_messages", started, result.map_err(failure))
    }

    #[tool(
        description = "Create a consumer group on a Redis stream (creating the stream unless create_stream is false)."
    )]
    async fn create_consumer_group(
        &self,
        Parameters(p): Parameters<GroupParams>,
    ) -> CallToolResult {
        let started = Instant::now();
        let result = async {
            let stream = StreamName::parse(&p.stream)?;
            self.streams
                .create_group(&stream, &p.group, &p.start, p.create_stream)
                .await?;
            Ok(answer(
                json!({ "stream": p.stream, "group": p.group, "start": p.start }),
                format!(
                    "Created group {} on {} from {}.",
                    p.group, p.stream, p.start
                ),
            ))
        }
        .await;
        self.answered("create_consumer_group", started, result.map_err(failure))
    }

    #[tool(
        description = "List a Redis stream's consumer groups: consumers, pending entries, last delivered id, lag."
    )]
    async fn list_groups(&self, Parameters(p): Parameters<StreamParams>) -> CallToolResult {
        let started = Instant::now();
        let result = async {
            let stream = StreamName::parse(&p.stream)?;
            let groups = self.streams.groups(&stream).await?;
            let text = format!("{} has {} consumer groups", p.stream, groups.len());
            Ok(answer(
                json!({ "stream": p.stream, "groups": groups }),
                text,
            ))
        }
        .await;
        self.answered("list_groups", started, result.map_err(failure))
    }

    #[tool(description = "List Redis streams whose names match a pattern, with their lengths.")]
    async fn list_streams(&self, Parameters(p): Parameters<ListParams>) -> CallToolResult {
        let started = Instant::now();
        let result = self
            .streams
            .list(&p.pattern, p.limit.max(1))
            .await
            .map(|streams| {
                let text = format!("{} streams match {}", streams.len(), p.pattern);
                answer(json!({ "streams": streams }), text)
            });
        self.answered("list_streams", started, result.map_err(failure))
    }
}

impl ServerTools {
    /// Runs a stream tool by name with JSON arguments, for the gateway.
    pub(super) async fn call_stream_tool(
        &self,
        name: &str,
        arguments: JsonObject,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match name {
            "add_stream_message" => {
                self.add_stream_message(Parameters(parse(name, arguments)?))
                    .await
            }
            "get_stream_messages" => {
                self.get_stream_messages(Parameters(parse(name, arguments)?))
                    .await
            }
            "create_consumer_group" => {
                self.create_consumer_group(Parameters(parse(name, arguments)?))
                    .await
            }
            "list_groups" => self.list_groups(Parameters(parse(name, arguments)?)).await,
            _ => self.list_streams(Parameters(parse(name, arguments)?)).await,
        })
    }
}

fn failure(error: StreamsError) -> (&'static str, String) {
    (error.kind(), error.to_string())
}
