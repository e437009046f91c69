//! Runs one message to its [`Outcome`], independent of where the message came from.
//!
//! A message that is not a valid job fails at once; a valid job calls mcp-server once
//! per server (`server-init`, `list-tools`) or per call (`tool-call`). Infrastructure
//! trouble is retried with capped exponential backoff and jitter for as long as it
//! lasts — it is never the job's fault — while an error answer fails the job.

use std::time::Duration;

use chrono::Utc;
use mcp_jobs_contract::{JobType, ScheduledJobEnvelope};
use rmcp::model::{CallToolResult, JsonObject};
use rmcp::object;
use serde_json::{Map, Value};

use crate::outcome::{Failure, Outcome, Status};
use crate::retry::infrastructure_backoff;
use crate::tool_client::{CallError, ToolClient};

/// Extra time the worker waits beyond a job's deadline, which mcp-server enforces
/// itself, before deciding mcp-server is not answering.
const SERVER_GRACE: Duration = Duration::from_secs(5);

pub struct JobRunner {
    client: ToolClient,
    job_timeout: Duration,
    max_message_bytes: usize,
    retry_max_backoff: Duration,
    worker_id: String,
}

impl JobRunner {
    pub fn new(
        client: ToolClient,
        job_timeout: Duration,
        max_message_bytes: usize,
        retry_max_backoff: Duration,
        worker_id: String,
    ) -> Self {
        Self {
            client,
            job_timeout,
            max_message_bytes,
            retry_max_backoff,
            worker_id,
        }
    }

    /// Parses and runs `message`. Always returns an outcome; it may wait indefinitely
    /// while mcp-server is unreachable (the caller decides when to give up waiting).
    pub async fn run(&self, message: &[u8]) -> Outcome {
        let started_at = Utc::now();
        let (job_id, job_type, result) =
            match ScheduledJobEnvelope::from_slice_limited(message, self.max_message_bytes) {
                Err(e) => (
                    ScheduledJobEnvelope::job_id_of(message),
                    None,
                    Err(Failure {
                        kind: e.kind().to_owned(),
                        message: e.to_string(),
                    }),
                ),
                Ok(job) => (
                    Some(job.job_id.clone()),
                    Some(job.job_type.as_str().to_owned()),
                    self.execute(&job).await,
                ),
            };
        let (status, results, error) = match result {
            Ok(results) => (Status::Succeeded, Some(results), None),
            Err(failure) => (Status::Failed, None, Some(failure)),
        };
        Outcome {
            job_id,
            job_type,
            status,
            results,
            error,
            attempts: 1,
            started_at,
            finished_at: Utc::now(),
            worker: self.worker_id.clone(),
        }
    }

    async fn execute(&self, job: &ScheduledJobEnvelope) -> Result<Map<String, Value>, Failure> {
        let timeout = job.timeout.unwrap_or(self.job_timeout);
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let mut results = Map::new();
        match job.job_type {
            JobType::ServerInit | JobType::ListTools => {
                let tool = if job.job_type == JobType::ServerInit {
                    "server_initialize"
                } else {
                    "list_tools"
                };
                for (server, config) in &job.mcp_servers {
                    let arguments = object!({ "serverName": server, "config": config, "timeoutMs": timeout_ms });
                    let result = self.call(tool, arguments, timeout).await?;
                    let output = match result.structured_content {
                        Some(structured) => structured,
                        None => to_json(&result),
                    };
                    results.insert(server.clone(), output);
                }
            }
            JobType::ToolCall => {
                for call in &job.calls {
                    let arguments = object!({
                        "serverName": call.server,
                        "config": job.mcp_servers.get(&call.server),
                        "tool": call.tool,
                        "arguments": call.arguments,
                        "timeoutMs": timeout_ms,
                    });
                    let result = self.call("call_tool", arguments, timeout).await?;
                    if result.is_error == Some(true) {
                        return Err(Failure {
                            kind: "tool_error".into(),
                            message: format!(
                                "{}.{} returned an error: {}",
                                call.server,
                                call.tool,
                                text_of(&result)
                            ),
                        });
                    }
                    results.insert(result_key(&results, &call.server), to_json(&result));
                }
            }
        }
        Ok(results)
    }

    /// Calls mcp-server until it gives an answer, backing off while it cannot.
    async fn call(
        &self,
        tool: &str,
        arguments: JsonObject,
        timeout: Duration,
    ) -> Result<CallToolResult, Failure> {
        let mut delays = infrastructure_backoff(self.retry_max_backoff);
        loop {
            match self
                .client
                .call(tool, arguments.clone(), timeout + SERVER_GRACE)
                .await
            {
                Ok(result) => return Ok(result),
                Err(CallError::Job { kind, message }) => return Err(Failure { kind, message }),
                Err(CallError::Infrastructure(reason)) => {
                    let delay = delays.next().unwrap_or(self.retry_max_backoff);
                    tracing::warn!(tool, %reason, retry_in = ?delay, "mcp-server unavailable, retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

/// Results are keyed by server; a server called again in one job gets `name#2`, `name#3`…
fn result_key(results: &Map<String, Value>, server: &str) -> String {
    if !results.contains_key(server) {
        return server.to_owned();
    }
    (2..)
        .map(|n| format!("{server}#{n}"))
        .find(|key| !results.contains_key(key))
        .unwrap_or_else(|| server.to_owned())
}

fn to_json(result: &CallToolResult) -> Value {
    serde_json::to_value(result).unwrap_or(Value::Null)
}

fn text_of(result: &CallToolResult) -> String {
    let texts: Vec<&str> = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
        .collect();
    if texts.is_empty() {
        "(no text content)".into()
    } else {
        texts.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_servers_get_numbered_keys() {
        let mut results = Map::new();
        for _ in 0..3 {
            let key = result_key(&results, "time");
            results.insert(key, Value::Null);
        }
        let keys: Vec<&String> = results.keys().collect();
        assert_eq!(keys, ["time", "time#2", "time#3"]);
    }
}
