//! Runs one message to its [`Outcome`], independent of where the message came from.
//!
//! A message that is not a valid job fails at once: no retry can fix it. A valid job
//! calls mcp-server once per server (`server-init`, `list-tools`) or per call
//! (`tool-call`). Two kinds of trouble are told apart:
//! - the job's own failure (tool `isError`, an upstream that cannot start or answer in
//!   time, the job's timeout): the attempt fails, and the job is tried again, up to
//!   `max_attempts`, with exponential backoff;
//! - infrastructure (no proper answer from any mcp-server replica): never the job's
//!   fault, retried with capped backoff for as long as it lasts, while [`JobRunner::health`]
//!   tells the source to stop fetching.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use backon::Retryable;

use chrono::Utc;
use mcp_jobs_contract::{
    ContractError, FailureKind, JobType, ScheduledJobEnvelope, META_ATTEMPT, META_JOB_ID,
};
use mcp_jobs_telemetry::propagation::{self, Context};
use rmcp::model::{CallToolResult, JsonObject};
use rmcp::object;
use serde_json::{Map, Value};
use tokio::sync::watch;
use tracing::field::Empty;
use tracing::Span;

use crate::metrics;
use crate::retry::{exponential_backoff, infrastructure_backoff};
use crate::tool_client::{CallError, ToolClient};
use mcp_jobs_contract::outcome::{AttemptRecord, Failure, Outcome, Status};

/// Extra time the worker waits beyond a call's deadline, which mcp-server enforces
/// itself, before deciding mcp-server is not answering.
const SERVER_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// Deadline of one attempt when the job gives no `timeoutMs`.
    pub job_timeout: Duration,
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled (with jitter) for each later one.
    pub retry_backoff: Duration,
    /// Cap on every backoff, job retries and infrastructure waits alike.
    pub retry_max_backoff: Duration,
    pub max_message_bytes: usize,
    /// Names this worker in result records.
    pub worker_id: String,
}

/// Where a job's run is, for a source that reports it as it goes (a task's status).
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Attempt `n` (1 for the first) starts.
    Attempt(u32),
    /// Attempt `attempt` failed with `error` and is tried again after `retry_in`.
    Retrying {
        attempt: u32,
        error: String,
        retry_in: Duration,
    },
}

pub struct JobRunner {
    client: ToolClient,
    settings: RunnerSettings,
    /// `true` while mcp-server answers; `false` from a call that got no proper answer
    /// until one does.
    health: watch::Sender<bool>,
}

/// The span one message runs in, from receipt to durable outcome: a child of the
/// producer's trace when the message carried one, else the root of a new trace.
/// `source` says where the message came from (`topic[partition]@offset`, `stream/id`).
pub fn job_span(source: &str, parent: Context) -> Span {
    let span = tracing::info_span!(
        "job",
        otel.kind = "consumer",
        source,
        job_id = Empty,
        job_type = Empty,
        trace_id = Empty,
        otel.status_code = Empty,
    );
    propagation::continue_trace(&span, parent);
    span
}

impl JobRunner {
    pub fn new(client: ToolClient, settings: RunnerSettings) -> Self {
        Self {
            client,
            settings,
            health: watch::Sender::new(true),
        }
    }

    /// Whether mcp-server is answering; sources pause fetching while it is not.
    pub fn health(&self) -> watch::Receiver<bool> {
        self.health.subscribe()
    }

    /// Parses `message` as a job, within `MAX_MESSAGE_BYTES`.
    pub fn parse(&self, message: &[u8]) -> Result<ScheduledJobEnvelope, ContractError> {
        ScheduledJobEnvelope::from_slice_limited(message, self.settings.max_message_bytes)
    }

    /// Names this worker in the outcomes it writes.
    pub fn worker_id(&self) -> &str {
        &self.settings.worker_id
    }

    /// Runs a job [`JobRunner::parse`] made of `message`; an invalid one fails at once.
    /// Always returns an outcome; it may wait indefinitely while mcp-server is
    /// unreachable (the caller decides when to give up waiting). Run it inside a
    /// [`job_span`], whose job fields it fills in.
    pub async fn run_parsed(
        &self,
        parsed: Result<ScheduledJobEnvelope, ContractError>,
        message: &[u8],
        on_progress: &(dyn Fn(Progress) + Sync),
    ) -> Outcome {
        let started_at = Utc::now();
        let span = Span::current();
        let (job_id, job_type, scheduled_at, attempts, attempt_log, result) = match parsed {
            Err(e) => (
                ScheduledJobEnvelope::job_id_of(message),
                None,
                None,
                1,
                Vec::new(),
                Err(Failure {
                    kind: e.kind(),
                    message: e.to_string(),
                }),
            ),
            Ok(job) => {
                span.record("job_id", job.job_id.as_str());
                span.record("job_type", job.job_type.as_str());
                let (attempts, log, result) = self.run_attempts(&job, on_progress).await;
                (
                    Some(job.job_id.clone()),
                    Some(job.job_type.as_str().to_owned()),
                    job.scheduled_at.map(|at| at.with_timezone(&Utc)),
                    attempts,
                    log,
                    result,
                )
            }
        };
        let (status, results, error) = match result {
            Ok(results) => (Status::Succeeded, Some(results), None),
            Err(failure) => (Status::Failed, None, Some(failure)),
        };
        let outcome = Outcome {
            job_id,
            job_type,
            status,
            results,
            error,
            attempts,
            scheduled_at,
            started_at,
            finished_at: Utc::now(),
            worker: self.settings.worker_id.clone(),
            replay_of: None,
            attempt_log,
        };
        metrics::job_finished(&outcome);
        if outcome.status == Status::Failed {
            span.record("otel.status_code", "ERROR");
        }
        outcome
    }

    async fn run_attempts(
        &self,
        job: &ScheduledJobEnvelope,
        on_progress: &(dyn Fn(Progress) + Sync),
    ) -> (u32, Vec<AttemptRecord>, Result<Map<String, Value>, Failure>) {
        let attempts = AtomicU32::new(0);
        let log = Mutex::new(Vec::new());
        let retries = self.settings.max_attempts.saturating_sub(1) as usize;
        let next = || {
            let attempt = attempts.fetch_add(1, Ordering::Relaxed) + 1;
            on_progress(Progress::Attempt(attempt));
            let log = &log;
            async move {
                let started_at = Utc::now();
                let result = self.attempt(job, attempt).await;
                let ended = AttemptRecord::ended(attempt, started_at, result.as_ref().err());
                log.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(ended);
                result
            }
        };
        let result = next
            .retry(
                exponential_backoff(self.settings.retry_backoff, self.settings.retry_max_backoff)
                    .with_max_times(retries),
            )
            .when(|failure: &Failure| failure.kind.is_retriable())
            .notify(|failure, delay| {
                on_progress(Progress::Retrying {
                    attempt: attempts.load(Ordering::Relaxed),
                    error: format!("{}: {}", failure.kind, failure.headline()),
                    retry_in: delay,
                });
                metrics::retried(failure.kind.as_str());
                tracing::info!(
                    job_id = %job.job_id, attempt = attempts.load(Ordering::Relaxed),
                    kind = %failure.kind, error = %failure.message,
                    retry_in = ?delay, "attempt failed; retrying"
                );
            })
            .await;
        let log = log.into_inner().unwrap_or_else(PoisonError::into_inner);
        (attempts.into_inner(), log, result)
    }

    /// One attempt: every call of the job within one deadline. Time spent waiting out
    /// infrastructure trouble does not count against it.
    async fn attempt(
        &self,
        job: &ScheduledJobEnvelope,
        attempt: u32,
    ) -> Result<Map<String, Value>, Failure> {
        let timeout = job.timeout.unwrap_or(self.settings.job_timeout);
        let mut budget = timeout;
        let meta = object!({ META_JOB_ID: job.job_id, META_ATTEMPT: attempt });
        let out_of_time = || Failure {
            kind: FailureKind::JobTimeout,
            message: format!("job {} did not finish within {timeout:?}", job.job_id),
        };
        let mut results = Map::new();
        match job.job_type {
            JobType::ServerInit | JobType::ListTools => {
                let tool = if job.job_type == JobType::ServerInit {
                    "server_initialize"
                } else {
                    "list_tools"
                };
                for (server, config) in &job.mcp_servers {
                    if budget.is_zero() {
                        return Err(out_of_time());
                    }
                    let arguments = object!({ "serverName": server, "config": config });
                    let result = self.call(tool, arguments, &meta, &mut budget).await?;
                    let output = match result.structured_content {
                        Some(structured) => structured,
                        None => to_json(&result),
                    };
                    results.insert(server.clone(), output);
                }
            }
            JobType::ToolCall => {
                for call in &job.calls {
                    if budget.is_zero() {
                        return Err(out_of_time());
                    }
                    let arguments = object!({
                        "serverName": call.server,
                        "config": job.mcp_servers.get(&call.server),
                        "tool": call.tool,
                        "arguments": call.arguments,
                    });
                    let result = self
                        .call("call_tool", arguments, &meta, &mut budget)
                        .await?;
                    if result.is_error == Some(true) {
                        return Err(Failure {
                            kind: FailureKind::ToolError,
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

    /// Calls mcp-server until it gives an answer, backing off while it cannot. The
    /// answer's time is taken from `budget`, which mcp-server enforces as `timeoutMs`.
    async fn call(
        &self,
        tool: &str,
        mut arguments: JsonObject,
        meta: &JsonObject,
        budget: &mut Duration,
    ) -> Result<CallToolResult, Failure> {
        let timeout_ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX).max(1);
        arguments.insert("timeoutMs".into(), timeout_ms.into());
        let ask = || async {
            let started = Instant::now();
            let answer = self
                .client
                .call(
                    tool,
                    arguments.clone(),
                    meta.clone(),
                    *budget + SERVER_GRACE,
                )
                .await;
            match answer {
                Ok(result) => Ok((Ok(result), started.elapsed())),
                Err(CallError::Job { kind, message }) => {
                    Ok((Err(Failure { kind, message }), started.elapsed()))
                }
                Err(CallError::Infrastructure(reason)) => Err(reason),
            }
        };
        let answered = ask
            .retry(infrastructure_backoff(self.settings.retry_max_backoff))
            .notify(|reason, delay| {
                self.health
                    .send_if_modified(|healthy| std::mem::replace(healthy, false));
                metrics::retried("mcp_server_unavailable");
                tracing::warn!(tool, %reason, retry_in = ?delay, "mcp-server unavailable, retrying");
            })
            .await;
        // The backoff never ends; were it to, the attempt fails as a retriable one.
        let (answer, took) = answered.unwrap_or_else(|reason| {
            let failure = Failure {
                kind: FailureKind::UpstreamUnavailable,
                message: format!("mcp-server unavailable: {reason}"),
            };
            (Err(failure), Duration::ZERO)
        });
        self.health
            .send_if_modified(|healthy| !std::mem::replace(healthy, true));
        *budget = budget.saturating_sub(took);
        answer
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
