//! Durable tasks at named endpoints (the MCP Tasks extension, `io.modelcontextprotocol/
//! tasks`): a `tools/call` the servers file marks for tasks becomes a job on
//! the jobs topic, whose id is the task's, and the client polls `tasks/get` at any
//! replica. The task is recorded on the tasks topic ([`mcp_jobs_tasks`]) before the
//! client hears of it; the worker reports there where the job's result record is, and
//! the result is read from the results topic when asked for, never kept here.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use mcp_jobs_contract::headers::TASK;
use mcp_jobs_contract::outcome::Outcome;
use mcp_jobs_contract::task::{JobState, OutcomeAt, TaskRecord};
use mcp_jobs_contract::FailureKind;
use mcp_jobs_kafka::topic::{self, ReadError, Reader};
use mcp_jobs_kafka::KafkaSettings;
use mcp_jobs_tasks::{new_task_id, Registry, RegistryError, StoreError, TaskStates, TaskStore};
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset};
use rmcp::model::{
    CallToolResult, ContentBlock, DetailedTask, ErrorCode, JsonObject, Task, TaskPayload,
    TaskStatus,
};
use rmcp::ErrorData;
use serde_json::{json, Value};

/// How long a job write may wait for the broker.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// Tasks, when mcp-server has Kafka (`KAFKA_BROKERS`): the worker's topics and how long a
/// task is kept and polled.
#[derive(Debug, Clone)]
pub struct TaskSettings {
    pub kafka: KafkaSettings,
    /// How long after its creation a task can be asked for (`MCP_TASK_TTL_SECONDS`).
    pub ttl: Duration,
    /// How often a client is told to poll (`MCP_TASK_POLL_MS`).
    pub poll_interval: Duration,
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
    jobs: FutureProducer,
    /// Reads one result record when a finished task is asked for.
    results: Arc<Mutex<BaseConsumer<Reader>>>,
}

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
        let jobs = settings
            .kafka
            .producer_config(&[("acks", "all"), ("linger.ms", "0")])
            .create()?;
        let results = topic::record_reader(&settings.kafka, "mcp-server-task-results")?;
        tokio::spawn(forget_expired(registry.clone(), store.clone()));
        Ok(Self {
            settings,
            store,
            registry,
            jobs,
            results: Arc::new(Mutex::new(results)),
        })
    }

    /// How many live tasks are in each state, as this replica reads the topic.
    pub fn states(&self) -> TaskStates {
        self.registry.states()
    }

    /// Records a task for a call of `tool` on named server `server` and sends its job;
    /// returns once both are acknowledged, so every replica will find it.
    pub async fn create(
        &self,
        server: &str,
        tool: &str,
        arguments: JsonObject,
        owner: &str,
    ) -> Result<Task, ErrorData> {
        let id = new_task_id();
        let now = Utc::now();
        let created = TaskRecord::Created {
            owner: owner.to_owned(),
            server: server.to_owned(),
            tool: tool.to_owned(),
            created_at: now,
            ttl_ms: millis(self.settings.ttl),
            poll_interval_ms: millis(self.settings.poll_interval),
        };
        self.store
            .write(&id, &created)
            .await
            .map_err(|e| unavailable(format!("recording the task: {e}")))?;
        let job = json!({
            "jobID": id,
            "jobType": "tool-call",
            "payload": {"server": server, "tool": tool, "arguments": arguments},
        })
        .to_string();
        let headers = OwnedHeaders::new().insert(Header {
            key: TASK,
            value: Some("1"),
        });
        let record = FutureRecord::to(&self.settings.kafka.topic)
            .key(&id)
            .payload(&job)
            .headers(headers);
        self.jobs
            .send(record, Timeout::After(PUBLISH_TIMEOUT))
            .await
            .map_err(|(e, _)| unavailable(format!("sending the task's job: {e}")))?;
        crate::metrics::task_created(server);
        Ok(self.task(&id, &created, TaskStatus::Working, now, Some(QUEUED.into())))
    }

    /// Task `id` as `owner` may see it at named server `server`: unknown (-32602) for
    /// another owner, another server, or a task whose TTL passed.
    pub async fn get(
        &self,
        id: &str,
        owner: &str,
        server: &str,
    ) -> Result<DetailedTask, ErrorData> {
        let task = self.find(id, owner, server).await?;
        Ok(self.detailed(&task, server).await)
    }

    /// The result of task `id` if its job ends within `within`: for a call answered
    /// inline when it is quick, and as a task when it is not.
    pub async fn answer_within(
        &self,
        id: &str,
        server: &str,
        within: Duration,
    ) -> Option<TaskPayload> {
        let task = self.registry.ended(id, within).await?;
        Some(self.detailed(&task, server).await.payload)
    }

    async fn detailed(&self, task: &mcp_jobs_tasks::Task, server: &str) -> DetailedTask {
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
            }) => (self.finished(server, *outcome).await, None, *at),
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
    pub async fn update(&self, id: &str, owner: &str, server: &str) -> Result<(), ErrorData> {
        self.find(id, owner, server).await.map(drop)
    }

    /// Records that `owner` cancelled task `id`. A task that already finished keeps
    /// its result.
    pub async fn cancel(&self, id: &str, owner: &str, server: &str) -> Result<(), ErrorData> {
        let task = self.find(id, owner, server).await?;
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
        server: &str,
    ) -> Result<mcp_jobs_tasks::Task, ErrorData> {
        let found = self
            .registry
            .get(id, owner)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        found
            .filter(|t| matches!(&t.created, TaskRecord::Created { server: s, .. } if s == server))
            .ok_or_else(|| ErrorData::invalid_params(format!("no task {id:?}"), None))
    }

    /// What a finished task's job left: the tool's result (an `isError` one too), or the
    /// error that kept it from running.
    async fn finished(&self, server: &str, at: Option<OutcomeAt>) -> TaskPayload {
        let Some(at) = at else {
            return failed("the job finished, but its result record could not be written");
        };
        let outcome = match self.read_outcome(at).await {
            Ok(Some(outcome)) => outcome,
            Ok(None) => return failed("the job's result record is no longer on the results topic"),
            Err(e) => return failed(&format!("reading the job's result record: {e}")),
        };
        match outcome.result(server) {
            Some(Value::Object(result)) => TaskPayload::Completed {
                result: result.clone(),
            },
            // The tool answered isError on every attempt: the call completed, with that
            // answer (the outcome keeps its text).
            _ if outcome.error_kind() == Some(FailureKind::ToolError.as_str()) => {
                let message = outcome.error_message().unwrap_or_default();
                let result = CallToolResult::error(vec![ContentBlock::text(message)]);
                match serde_json::to_value(result) {
                    Ok(Value::Object(result)) => TaskPayload::Completed { result },
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
            let reader = results.lock().unwrap_or_else(PoisonError::into_inner);
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
