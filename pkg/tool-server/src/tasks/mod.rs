//! Durable tasks (the MCP Tasks extension, `io.modelcontextprotocol/tasks`): a
//! `tools/call` at a named endpoint the servers file marks for tasks, or of `/mcp`'s
//! `call_tool` meta-tool when `MCP_META_TASKS` says so, becomes a job on the jobs topic,
//! whose id is the task's, and the client polls `tasks/get` at any replica. The task is recorded on the tasks topic ([`mcp_jobs_tasks`]) before the
//! client hears of it; the worker reports there where the job's result record is, and
//! the result is read from the results topic when asked for, never kept here.
//!
//! - [`requests`]: what of the extension is answered before rmcp reads a request:
//!   `tasks/*` without `Mcp-Name`, and `subscriptions/listen` for pushed task status.

mod requests;

pub use requests::{before_rmcp, TasksLayer};

use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use mcp_jobs_contract::headers::TASK;
use mcp_jobs_contract::outcome::Outcome;
use mcp_jobs_contract::task::{JobState, OutcomeAt, TaskEndpoint, TaskRecord};
use mcp_jobs_contract::{FailureKind, ServerConfig};
use mcp_jobs_kafka::topic::{self, ReadError, Reader};
use mcp_jobs_kafka::KafkaSettings;
use mcp_jobs_tasks::{new_task_id, Registry, RegistryError, StoreError, TaskStates, TaskStore};
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset};
use rmcp::model::{
    CallToolResponse, CallToolResult, CancelTaskParams, ClientCapabilities, ContentBlock,
    CreateTaskResult, DetailedTask, ErrorCode, GetTaskParams, GetTaskResult, JsonObject,
    ResultType, Task, TaskPayload, TaskStatus, UpdateTaskParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde::Deserialize;
use serde_json::{json, Value};

/// How long a job write may wait for the broker.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// Which tool calls run as durable tasks (the Tasks extension's task support of a tool:
/// forbidden, optional or required): per named server in the servers file, and for
/// `/mcp`'s `call_tool` in `MCP_META_TASKS`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TaskMode {
    /// Every call is answered inline, as without tasks.
    #[default]
    Never,
    /// A call from a client that declared tasks support becomes a task: a job on the jobs
    /// topic, polled with `tasks/get`; other clients are answered inline, without a job.
    Optional,
    /// Every call becomes a task; a client that did not declare tasks support is
    /// refused (-32021).
    Required,
    /// `{"afterMs": N}` (`afterMs:N` in the environment): as `optional`, but a task's call
    /// that ends within N ms is answered inline (it still ran as a job, durably).
    AfterMs(u64),
}

/// How one call runs, by its mode and its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    Inline,
    /// As a task; answered inline instead if its job ends within the duration.
    Task(Option<Duration>),
}

impl TaskMode {
    /// How a call runs for a caller that did (or did not) declare tasks support.
    pub fn run(self, caller_supports_tasks: bool) -> Run {
        match self {
            Self::Required => Run::Task(None),
            Self::Optional if caller_supports_tasks => Run::Task(None),
            Self::AfterMs(ms) if caller_supports_tasks => {
                Run::Task(Some(Duration::from_millis(ms)))
            }
            _ => Run::Inline,
        }
    }
}

impl FromStr for TaskMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "never" | "" => Ok(Self::Never),
            "optional" => Ok(Self::Optional),
            "required" => Ok(Self::Required),
            other => other
                .strip_prefix("afterMs:")
                .and_then(|ms| ms.trim().parse().ok())
                .map(Self::AfterMs)
                .ok_or_else(|| {
                    format!("{other:?}: use never, optional, required or afterMs:<milliseconds>")
                }),
        }
    }
}

/// A call to run as a task: what it calls, and the endpoint it came to.
pub struct TaskCall {
    pub endpoint: TaskEndpoint,
    pub server: String,
    /// The server's config, when the call describes it (`/mcp`'s `call_tool` with a
    /// config); a named server's job names it instead, so no secret of the servers file
    /// goes on Kafka.
    pub config: Option<ServerConfig>,
    pub tool: String,
    pub arguments: JsonObject,
    /// The job's deadline, if the call gave one.
    pub timeout_ms: Option<u64>,
}

/// The endpoint a request came to: a task is found only at the endpoint that made it.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Named(&'a str),
    Mcp,
}

impl Scope<'_> {
    fn holds(self, created: &TaskRecord) -> bool {
        match (self, created) {
            (
                Scope::Named(name),
                TaskRecord::Created {
                    endpoint: TaskEndpoint::Named,
                    server,
                    ..
                },
            ) => server == name,
            (
                Scope::Mcp,
                TaskRecord::Created {
                    endpoint: TaskEndpoint::Mcp,
                    ..
                },
            ) => true,
            _ => false,
        }
    }
}

/// Tasks, when mcp-server has Kafka (`KAFKA_BROKERS`): the worker's topics and how long a
/// task is kept and polled.
#[derive(Debug, Clone)]
pub struct TaskSettings {
    pub kafka: KafkaSettings,
    /// How long after its creation a task can be asked for (`MCP_TASK_TTL_SECONDS`).
    pub ttl: Duration,
    /// How often a client is told to poll (`MCP_TASK_POLL_MS`).
    pub poll_interval: Duration,
    /// How long a `tasks/get` of a task still going waits for its end (`MCP_TASK_HOLD_MS`).
    pub hold: Duration,
    /// Which calls of `/mcp`'s `call_tool` run as tasks (`MCP_META_TASKS`).
    pub meta: TaskMode,
}

#[derive(Debug, thiserror::Error)]
pub enum TasksError {
    #[error("tasks need the tasks topic {topic} (kafka-worker create-topics makes it): {source}")]
    Store {
        topic: String,
        #[source]
        source: StoreError,
    },
    #[error("tasks need the tasks topic {topic} (kafka-worker create-topics makes it): {source}")]
    Registry {
        topic: String,
        #[source]
        source: RegistryError,
    },
    #[error("tasks need a Kafka producer: {0}")]
    Kafka(#[from] KafkaError),
}

/// [`Tasks`] once they can start: mcp-server may start before `kafka-worker
/// create-topics` has made the tasks topic (the quick start does), so it keeps trying
/// in the background, and a task call meanwhile is refused with why.
#[derive(Clone)]
pub struct TasksSlot {
    tasks: Arc<OnceLock<Tasks>>,
    topic: String,
}

/// [`Tasks::start`] off the runtime's threads (it asks the broker, and waits for it).
async fn try_start(settings: TaskSettings) -> Result<Tasks, String> {
    match tokio::task::spawn_blocking(move || Tasks::start(settings)).await {
        Ok(started) => started.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// How often a missing tasks topic is looked for again.
const START_RETRY: Duration = Duration::from_secs(5);

impl TasksSlot {
    /// Starts [`Tasks`] for `settings`: now if the tasks topic is there (so a server
    /// that starts after `create-topics` offers tasks from its first request), else in
    /// the background as soon as it is.
    pub async fn start(settings: TaskSettings) -> Self {
        let slot = Self {
            tasks: Arc::default(),
            topic: settings.kafka.tasks_topic.clone(),
        };
        match try_start(settings.clone()).await {
            Ok(started) => {
                let _ = slot.tasks.set(started);
                return slot;
            }
            Err(e) => {
                tracing::warn!(error = %e, "durable tasks are not available yet; trying again every 5 s")
            }
        }
        let tasks = slot.tasks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(START_RETRY).await;
                if let Ok(started) = try_start(settings.clone()).await {
                    tracing::info!("durable tasks ready");
                    let _ = tasks.set(started);
                    return;
                }
            }
        });
        slot
    }

    /// The tasks, or why there are none yet.
    pub fn get(&self) -> Result<&Tasks, ErrorData> {
        self.tasks.get().ok_or_else(|| {
            unavailable(format!(
                "the tasks topic {} is not readable yet (kafka-worker create-topics makes it)",
                self.topic
            ))
        })
    }
}

pub struct Tasks {
    settings: TaskSettings,
    store: TaskStore,
    registry: Registry,
    /// Read one result record each when a finished task is asked for; several, so that
    /// one slow read does not hold up every other client's.
    results: Arc<[Mutex<BaseConsumer<Reader>>]>,
}

/// How many result readers a replica keeps.
const RESULT_READERS: usize = 4;

impl Tasks {
    /// Starts following the tasks topic (and forgetting expired tasks); fails if it does
    /// not exist. Within a Tokio runtime.
    pub fn start(settings: TaskSettings) -> Result<Self, TasksError> {
        let topic = || settings.kafka.tasks_topic.clone();
        let store = TaskStore::new(&settings.kafka).map_err(|source| TasksError::Store {
            topic: topic(),
            source,
        })?;
        let registry =
            Registry::follow(&settings.kafka).map_err(|source| TasksError::Registry {
                topic: topic(),
                source,
            })?;
        let results = (0..RESULT_READERS)
            .map(|_| {
                topic::record_reader(&settings.kafka, "mcp-server-task-results").map(Mutex::new)
            })
            .collect::<Result<Arc<[_]>, _>>()?;
        tokio::spawn(forget_expired(registry.clone(), store.clone()));
        Ok(Self {
            settings,
            store,
            registry,
            results,
        })
    }

    /// How many live tasks are in each state, as this replica reads the topic.
    pub fn states(&self) -> TaskStates {
        self.registry.states()
    }

    /// Records a task for `call` and sends its job; returns once both are acknowledged,
    /// so every replica will find it.
    pub async fn create(&self, call: TaskCall, owner: &str) -> Result<Task, ErrorData> {
        let id = new_task_id();
        let now = Utc::now();
        let created = TaskRecord::Created {
            owner: owner.to_owned(),
            server: call.server.clone(),
            tool: call.tool.clone(),
            endpoint: call.endpoint,
            created_at: now,
            ttl_ms: millis(self.settings.ttl),
            poll_interval_ms: millis(self.settings.poll_interval),
        };
        let job = job_of(&id, &call).to_string();
        let headers = OwnedHeaders::new().insert(Header {
            key: TASK,
            value: Some("1"),
        });
        let record = FutureRecord::to(&self.settings.kafka.topic)
            .key(&id)
            .payload(&job)
            .headers(headers);
        // Both at once: one round trip to the broker instead of two. A worker may read
        // the job before the task record is on the topic; its reports go to the task's
        // partition all the same, and readers take a task's facts in any order. If only
        // one write fails, the client is told the task was not created, though its job
        // may run: the at-least-once of a call whose answer was lost.
        let (recorded, sent) = tokio::join!(
            self.store.write(&id, &created),
            self.store
                .producer()
                .send(record, Timeout::After(PUBLISH_TIMEOUT))
        );
        recorded.map_err(|e| unavailable(format!("recording the task: {e}")))?;
        sent.map_err(|(e, _)| unavailable(format!("sending the task's job: {e}")))?;
        crate::metrics::task_created(&call.server);
        let task = self.task(&id, &created, TaskStatus::Working, now, Some(QUEUED.into()));
        self.registry.remember(&id, created);
        Ok(task)
    }

    /// Task `id` as `owner` may see it at endpoint `scope`: unknown (-32602) for another
    /// owner, another endpoint, or a task whose TTL passed. A task still going is held
    /// for up to `MCP_TASK_HOLD_MS` and answered the moment its job ends (a long poll: a
    /// quick task's result reaches a polling client without another round).
    pub async fn get(
        &self,
        id: &str,
        owner: &str,
        scope: Scope<'_>,
    ) -> Result<DetailedTask, ErrorData> {
        let mut task = self.find(id, owner, scope).await?;
        let going =
            !matches!(&task.status, Some(TaskRecord::Status { state, .. }) if state.is_end());
        if going && task.cancelled_at.is_none() && !self.settings.hold.is_zero() {
            if let Some(ended) = self.registry.ended(id, self.settings.hold).await {
                task = ended;
            }
        }
        Ok(self.detailed(&task).await)
    }

    /// The result of task `id` if its job ends within `within`: for a call answered
    /// inline when it is quick, and as a task when it is not.
    pub async fn answer_within(&self, id: &str, within: Duration) -> Option<TaskPayload> {
        let task = self.registry.ended(id, within).await?;
        Some(self.detailed(&task).await.payload)
    }

    async fn detailed(&self, task: &mcp_jobs_tasks::Task) -> DetailedTask {
        let (id, created) = (task.id.as_str(), &task.created);
        let (payload, message, updated) = match &task.status {
            Some(TaskRecord::Status {
                state: JobState::Cancelled,
                at,
                ..
            }) => (TaskPayload::Cancelled, None, *at),
            Some(TaskRecord::Status {
                state: JobState::Succeeded | JobState::Failed,
                outcome,
                at,
                ..
            }) => (self.finished(created, *outcome).await, None, *at),
            _ if task.cancelled_at.is_some() => (
                TaskPayload::Cancelled,
                None,
                task.cancelled_at.unwrap_or_else(Utc::now),
            ),
            Some(TaskRecord::Status {
                state: JobState::Running,
                worker,
                attempt,
                at,
                ..
            }) => (
                TaskPayload::Working,
                Some(format!("running on {worker}, attempt {attempt}")),
                *at,
            ),
            Some(TaskRecord::Status {
                state: JobState::Retrying,
                attempt,
                error,
                at,
                ..
            }) => (
                TaskPayload::Working,
                Some(format!(
                    "attempt {attempt} failed ({}); retrying",
                    error.as_deref().unwrap_or("no reason given")
                )),
                *at,
            ),
            _ => (
                TaskPayload::Working,
                Some(QUEUED.to_owned()),
                created_at(created),
            ),
        };
        let task = self.task(id, created, payload.status(), updated, message);
        DetailedTask::new(task, payload)
    }

    /// Takes `owner`'s answers to task `id`'s input requests. A task's job never asks
    /// for input here (an upstream that does fails it), so there is never one pending:
    /// the answers are acknowledged and change nothing.
    pub async fn update(&self, id: &str, owner: &str, scope: Scope<'_>) -> Result<(), ErrorData> {
        self.find(id, owner, scope).await.map(drop)
    }

    /// Records that `owner` cancelled task `id`. A task that already finished keeps
    /// its result.
    pub async fn cancel(&self, id: &str, owner: &str, scope: Scope<'_>) -> Result<(), ErrorData> {
        let task = self.find(id, owner, scope).await?;
        let finished =
            matches!(&task.status, Some(TaskRecord::Status { state, .. }) if state.is_end());
        if finished || task.cancelled_at.is_some() {
            return Ok(());
        }
        self.store
            .write(id, &TaskRecord::Cancelled { at: Utc::now() })
            .await
            .map_err(|e| unavailable(format!("recording the cancellation: {e}")))
    }

    async fn find(
        &self,
        id: &str,
        owner: &str,
        scope: Scope<'_>,
    ) -> Result<mcp_jobs_tasks::Task, ErrorData> {
        let found = self
            .registry
            .get(id, owner)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        found
            .filter(|t| scope.holds(&t.created))
            .ok_or_else(|| ErrorData::invalid_params(format!("no task {id:?}"), None))
    }

    /// What a finished task's job left: the tool's result (an `isError` one too), or the
    /// error that kept it from running.
    async fn finished(&self, created: &TaskRecord, at: Option<OutcomeAt>) -> TaskPayload {
        let server = match created {
            TaskRecord::Created { server, .. } => server.as_str(),
            _ => "",
        };
        let Some(at) = at else {
            return failed("the job finished, but its result record could not be written");
        };
        let outcome = match self.read_outcome(at).await {
            Ok(Some(outcome)) => outcome,
            Ok(None) => return failed("the job's result record is no longer on the results topic"),
            Err(e) => return failed(&format!("reading the job's result record: {e}")),
        };
        match outcome.result(server) {
            Some(Value::Object(result)) => completed(result.clone()),
            // The tool answered isError on every attempt: the call completed, with that
            // answer (the outcome keeps its text).
            _ if outcome.error_kind() == Some(FailureKind::ToolError.as_str()) => {
                let message = outcome.error_message().unwrap_or_default();
                let result = CallToolResult::error(vec![ContentBlock::text(message)]);
                match serde_json::to_value(result) {
                    Ok(Value::Object(result)) => completed(result),
                    _ => failed(message),
                }
            }
            _ => {
                let kind = outcome.error_kind().unwrap_or("unknown");
                let message = outcome.error_message().unwrap_or("the job failed");
                TaskPayload::Failed {
                    error: error_object(
                        ErrorCode::INTERNAL_ERROR,
                        message,
                        json!({ "kind": kind }),
                    ),
                }
            }
        }
    }

    async fn read_outcome(&self, at: OutcomeAt) -> Result<Option<Outcome>, ReadError> {
        let results = self.results.clone();
        let topic = self.settings.kafka.results_topic.clone();
        tokio::task::spawn_blocking(move || {
            // A free reader if there is one, else the one this record's offset picks.
            let reader = results
                .iter()
                .find_map(|reader| reader.try_lock().ok())
                .unwrap_or_else(|| {
                    let picked = at.offset.unsigned_abs() as usize % results.len();
                    results[picked]
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                });
            let mut found = None;
            topic::read_range(
                &reader,
                &topic,
                &[(at.partition, Offset::Offset(at.offset))],
                1,
                |m| {
                    if m.offset() == at.offset {
                        found = m.payload().and_then(|p| Outcome::from_record(p).ok());
                    }
                },
            )?;
            Ok(found)
        })
        .await
        .unwrap_or(Ok(None))
    }

    fn task(
        &self,
        id: &str,
        created: &TaskRecord,
        status: TaskStatus,
        updated: DateTime<Utc>,
        message: Option<String>,
    ) -> Task {
        let mut task = Task::new(
            id,
            status,
            timestamp(created_at(created)),
            timestamp(updated),
        );
        task.status_message = message;
        task.ttl_ms = Some(millis(self.settings.ttl));
        task.poll_interval_ms = Some(millis(self.settings.poll_interval));
        task
    }
}

/// How often expired tasks are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Forgets the tasks whose TTL has passed: out of memory, and off the tasks topic (a
/// tombstone on each of their records; every replica writes them, which is harmless).
async fn forget_expired(registry: Registry, store: TaskStore) {
    let mut ticker = tokio::time::interval(SWEEP_EVERY);
    loop {
        ticker.tick().await;
        for id in registry.sweep(Utc::now()) {
            if let Err(e) = store.forget(&id).await {
                tracing::warn!(task = %id, error = %e, "could not forget an expired task");
            }
        }
    }
}

/// What a task whose job no worker has taken yet says.
const QUEUED: &str = "queued: waiting for a worker";

fn created_at(created: &TaskRecord) -> DateTime<Utc> {
    match created {
        TaskRecord::Created { created_at, .. } => *created_at,
        _ => Utc::now(),
    }
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A completed task's payload. Its result says `resultType` as every 2026-07-28 result
/// does (the TypeScript Tasks client refuses one without it); the job's own call may
/// have been made at an older revision.
fn completed(mut result: JsonObject) -> TaskPayload {
    result
        .entry("resultType")
        .or_insert_with(|| json!(ResultType::COMPLETE));
    TaskPayload::Completed { result }
}

/// The job a task runs: a tool call, whose id is the task's.
fn job_of(id: &str, call: &TaskCall) -> Value {
    let mut payload =
        json!({"server": call.server, "tool": call.tool, "arguments": call.arguments});
    if let Some(config) = &call.config {
        payload["mcpServers"] = json!({ &call.server: config });
    }
    let mut job = json!({"jobID": id, "jobType": "tool-call", "payload": payload});
    if let Some(ms) = call.timeout_ms {
        job["timeoutMs"] = json!(ms);
    }
    job
}

fn failed(message: &str) -> TaskPayload {
    TaskPayload::Failed {
        error: error_object(ErrorCode::INTERNAL_ERROR, message, Value::Null),
    }
}

fn error_object(code: ErrorCode, message: &str, data: Value) -> JsonObject {
    let mut error = JsonObject::new();
    error.insert("code".into(), json!(code.0));
    error.insert("message".into(), json!(message));
    if !data.is_null() {
        error.insert("data".into(), data);
    }
    error
}

/// A task that could not be recorded or read: the broker is unreachable or behind.
fn unavailable(reason: String) -> ErrorData {
    ErrorData::internal_error(format!("tasks are unavailable: {reason}"), None)
}

/// The tasks, if mcp-server offers them (it has Kafka) and they have started.
pub fn offered(slot: Option<&TasksSlot>) -> Result<&Tasks, ErrorData> {
    let slot = slot.ok_or_else(|| {
        ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            "tasks are not offered: mcp-server has no Kafka (KAFKA_BROKERS)",
            None,
        )
    })?;
    slot.get()
}

/// The `tasks/*` methods at one endpoint, for the caller of a request.
pub struct TaskMethods<'a> {
    slot: Option<&'a TasksSlot>,
    scope: Scope<'a>,
}

/// The `tasks/*` methods at endpoint `scope`, with its tasks if it has any.
pub fn at<'a>(slot: Option<&'a TasksSlot>, scope: Scope<'a>) -> TaskMethods<'a> {
    TaskMethods { slot, scope }
}

impl TaskMethods<'_> {
    pub async fn get(
        &self,
        request: GetTaskParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        let task = offered(self.slot)?
            .get(&request.task_id, &owner(context), self.scope)
            .await?;
        Ok(GetTaskResult::new(task))
    }

    pub async fn update(
        &self,
        request: UpdateTaskParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        offered(self.slot)?
            .update(&request.task_id, &owner(context), self.scope)
            .await
    }

    pub async fn cancel(
        &self,
        request: CancelTaskParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        offered(self.slot)?
            .cancel(&request.task_id, &owner(context), self.scope)
            .await
    }
}

/// Runs `call` as a durable task, for a client that can poll it; with `inline_within`,
/// answers with its result instead if the job ends that soon.
pub async fn call_as_task(
    slot: Option<&TasksSlot>,
    call: TaskCall,
    context: &RequestContext<RoleServer>,
    inline_within: Option<Duration>,
) -> Result<CallToolResponse, ErrorData> {
    if !supports_tasks(context) {
        return Err(ErrorData::missing_required_client_capability(
            ClientCapabilities::builder().enable_tasks().build(),
        ));
    }
    let tasks = offered(slot)?;
    let task = tasks.create(call, &owner(context)).await?;
    let Some(within) = inline_within else {
        return Ok(CallToolResponse::Task(CreateTaskResult::new(task)));
    };
    match tasks.answer_within(&task.task_id, within).await {
        None => Ok(CallToolResponse::Task(CreateTaskResult::new(task))),
        Some(TaskPayload::Completed { result }) => serde_json::from_value(result.into())
            .map(CallToolResponse::Complete)
            .map_err(|e| ErrorData::internal_error(format!("the task's result: {e}"), None)),
        Some(TaskPayload::Failed { error }) => {
            let message = error
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or("the call failed");
            Err(ErrorData::internal_error(
                message.to_owned(),
                error.get("data").cloned(),
            ))
        }
        Some(_) => Err(ErrorData::internal_error(
            "the call's task was cancelled",
            None,
        )),
    }
}

/// Whether the caller declared the Tasks extension.
pub fn supports_tasks(context: &RequestContext<RoleServer>) -> bool {
    context
        .client_capabilities()
        .is_some_and(|c| c.supports_tasks())
}

/// Whose tasks a request may see: the fingerprint of the API key it carries (with
/// authentication off, every caller is the same owner).
pub fn owner(context: &RequestContext<RoleServer>) -> String {
    match context.extensions.get::<http::request::Parts>() {
        Some(parts) => owner_of_headers(&parts.headers),
        None => mcp_jobs_tasks::owner_of(""),
    }
}

/// The owner a request with `headers` is, by the API key it presents.
fn owner_of_headers(headers: &http::HeaderMap) -> String {
    mcp_jobs_tasks::owner_of(mcp_jobs_auth::presented_key(headers).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mode_reads_from_the_environment_and_decides_each_call() {
        assert_eq!("".parse(), Ok(TaskMode::Never));
        assert_eq!("optional".parse(), Ok(TaskMode::Optional));
        assert_eq!(" afterMs:250 ".parse(), Ok(TaskMode::AfterMs(250)));
        let refused = "afterMs:soon".parse::<TaskMode>().unwrap_err();
        assert!(refused.contains("afterMs:<milliseconds>"), "{refused}");

        let within = Some(Duration::from_millis(250));
        assert_eq!(TaskMode::AfterMs(250).run(true), Run::Task(within));
        assert_eq!(TaskMode::AfterMs(250).run(false), Run::Inline);
        assert_eq!(TaskMode::Optional.run(false), Run::Inline);
        assert_eq!(TaskMode::Required.run(false), Run::Task(None));
        assert_eq!(TaskMode::Never.run(true), Run::Inline);
    }

    #[test]
    fn a_task_is_found_only_at_the_endpoint_that_made_it() {
        let created = |endpoint, server: &str| TaskRecord::Created {
            owner: "o".into(),
            server: server.into(),
            tool: "t".into(),
            endpoint,
            created_at: Utc::now(),
            ttl_ms: 1,
            poll_interval_ms: 1,
        };
        let named = created(TaskEndpoint::Named, "time");
        let meta = created(TaskEndpoint::Mcp, "time");
        assert!(Scope::Named("time").holds(&named));
        assert!(!Scope::Named("other").holds(&named));
        assert!(!Scope::Mcp.holds(&named));
        assert!(Scope::Mcp.holds(&meta));
        assert!(!Scope::Named("time").holds(&meta));
    }
}
