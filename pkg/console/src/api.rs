//! The console's JSON API, under `/api`, for scripts: the same data and actions as
//! the command line. Every request needs one of `CONSOLE_API_KEYS`; with
//! `CONSOLE_READ_ONLY=true` every action is refused (403). Actions are logged with
//! who (the key's place in `CONSOLE_API_KEYS`, never the key), what and how many.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use mcp_jobs_auth::{matching_key, presented_key};
use mcp_jobs_kafka::follow::Followed;
use mcp_jobs_kafka::topic::Reader;
use mcp_jobs_kafka::{admin, KafkaSettings};
use rdkafka::consumer::BaseConsumer;
use serde::Deserialize;
use serde_json::json;

use tokio_util::sync::CancellationToken;

use mcp_jobs_scheduler::delayed;

use crate::activity::{self, Activity};
use crate::config::ConsoleSettings;
use crate::dead_letters::{parse_since, DeadLetters, Filter, Found, Position, Replay};
use crate::jobs;
use crate::ledger::{Ledger, LedgerError};
use crate::now::{InFlight, NowPage};
use crate::readers::Readers;
use crate::web::login_limit::LoginLimits;
use mcp_jobs_contract::status::JobStatus;

/// The most dead letters one listing returns.
const MAX_LIMIT: usize = 1_000;

/// What the console serves from.
pub struct Console {
    pub settings: KafkaSettings,
    /// `CONSOLE_API_KEYS`: at least one.
    pub api_keys: Vec<String>,
    /// `CONSOLE_READ_ONLY`: refuse every action.
    pub read_only: bool,
    /// `CONSOLE_COOKIE_SECURE`: the session cookie is sent over HTTPS (and localhost) only.
    pub cookie_secure: bool,
    /// The overview's figures, followed in the background.
    pub activity: Arc<Activity>,
    /// The delayed jobs waiting for their time, followed in the background.
    pub delayed: delayed::Followed,
    /// The jobs running or retrying, followed in the background.
    pub in_flight: Followed<InFlight>,
    /// mcp-server endpoints, for their `/stats`, and the key to call them with.
    pub servers: Vec<String>,
    pub server_api_key: Option<String>,
    /// For mcp-server's `/stats`.
    pub http: reqwest::Client,
    /// Kept between requests.
    pub readers: Readers,
    /// What the console remembers: replays, logouts, submitted forms.
    pub ledger: Arc<Ledger>,
    /// Login attempts allowed, per client address and overall.
    pub logins: LoginLimits,
}

impl Console {
    /// The console of the deployment `settings` describe: it opens its ledger (creating
    /// its topic if missing) and follows the deployment's topics for the overview
    /// until `stop`.
    pub async fn start(
        settings: KafkaSettings,
        console: &ConsoleSettings,
        stop: CancellationToken,
    ) -> Result<Self, LedgerError> {
        admin::create_console_topic(&settings).await?;
        let ledger = {
            let (settings, stop) = (settings.clone(), stop.clone());
            tokio::task::spawn_blocking(move || Ledger::open(&settings, stop))
                .await
                .map_err(|e| LedgerError::Stopped(e.to_string()))??
        };
        let pruned = ledger.clone();
        let pruning = stop.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
            while tokio::select! { _ = every.tick() => true, () = pruning.cancelled() => false } {
                pruned.prune().await;
            }
        });
        let delayed = delayed::follow(settings.clone(), "kafka-worker-console", stop.clone());
        let in_flight = Followed::start(
            settings.clone(),
            "kafka-worker-console",
            settings.status_topic.clone(),
            stop.clone(),
        );
        let activity = activity::follow(settings.clone(), stop);
        Ok(Self {
            readers: Readers::new(settings.clone()),
            settings,
            api_keys: console.api_keys.clone(),
            read_only: console.read_only,
            cookie_secure: console.cookie_secure,
            servers: console.servers.clone(),
            server_api_key: console.server_api_key.clone(),
            activity,
            delayed,
            in_flight,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(3))
                .build()
                .unwrap_or_default(),
            ledger,
            logins: LoginLimits::default(),
        })
    }

    /// The jobs in flight, the first `limit` running and retrying; an error naming the
    /// status topic while it cannot be followed.
    pub fn in_flight(&self, limit: usize) -> Result<NowPage, String> {
        match self.in_flight.problem() {
            Some(problem) => Err(problem),
            None => Ok(self.in_flight.view().page(limit, self.in_flight.loaded())),
        }
    }

    /// The first `limit` delayed jobs by due time, read back from their topic.
    pub(crate) async fn waiting(self: &Arc<Self>, limit: usize) -> Result<delayed::Page, String> {
        self.read(move |reader, console| console.delayed.page(reader, &console.settings, limit))
            .await
    }

    /// The dead-letter topic, read and replayed with the console's ledger.
    pub fn dead_letters(&self) -> DeadLetters<'_> {
        DeadLetters::new(&self.settings, &self.ledger)
    }

    /// The dead letters an action names: those at `positions`, or with none, every one
    /// `filter` matches.
    pub(crate) async fn chosen_dead_letters(
        self: &Arc<Self>,
        positions: Vec<Position>,
        filter: Filter,
    ) -> Result<Found, String> {
        self.read(move |reader, console| match positions.is_empty() {
            true => console.dead_letters().find(reader, &filter, usize::MAX),
            false => console.dead_letters().at(reader, &positions),
        })
        .await
    }

    /// Runs a bounded read with a kept reader, off the async workers; its error as text.
    pub(crate) async fn read<T: Send + 'static, E: std::fmt::Display>(
        self: &Arc<Self>,
        read: impl FnOnce(&BaseConsumer<Reader>, &Console) -> Result<T, E> + Send + 'static,
    ) -> Result<T, String> {
        let console = self.clone();
        blocking(move || {
            let reader = console.readers.take().map_err(|e| e.to_string())?;
            read(&reader, &console).map_err(|e| e.to_string())
        })
        .await
    }
}

/// Who made a request: which key, by its place in `CONSOLE_API_KEYS`.
#[derive(Clone)]
struct Caller(String);

pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/api/outcomes", get(latest_outcomes))
        .route("/api/jobs/{job_id}", get(job))
        .route("/api/dlq", get(dead_letters))
        .route("/api/dlq/replay", post(replay))
        .route("/api/dlq/resolve", post(resolve))
        .route("/api/now", get(now))
        .route("/api/delayed", get(waiting))
        .route("/api/delayed/{job_id}/cancel", post(cancel_waiting))
        .route("/api/{*rest}", get(not_found).post(not_found))
        .layer(middleware::from_fn_with_state(console.clone(), require_key))
        .with_state(console)
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such API: the API has GET /api/outcomes, GET /api/jobs/{jobID}, GET /api/dlq, POST /api/dlq/replay, GET /api/delayed and POST /api/delayed/{jobID}/cancel",
    )
}

/// `limit` as the listings take it: 1 to [`MAX_LIMIT`], 50 unless given.
fn limit_of(limit: Option<usize>) -> Result<usize, String> {
    match limit {
        None => Ok(50),
        Some(limit @ 1..=MAX_LIMIT) => Ok(limit),
        Some(other) => Err(format!("limit: {other} is not between 1 and {MAX_LIMIT}")),
    }
}

/// `since` as every filter takes it (`2h`, `1h 30m`, RFC 3339).
fn since_of(since: Option<&str>) -> Result<Option<DateTime<Utc>>, String> {
    parse_since(since.unwrap_or_default())
}

async fn require_key(
    State(console): State<Arc<Console>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(presented) = presented_key(request.headers()) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
        );
    };
    match matching_key(&console.api_keys, presented) {
        Some(index) => {
            request
                .extensions_mut()
                .insert(Caller(format!("key #{}", index + 1)));
            next.run(request).await
        }
        None => error(StatusCode::UNAUTHORIZED, "invalid API key"),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    let mut response = (status, Json(json!({ "error": message }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

#[derive(Deserialize)]
struct JobQuery {
    since: Option<String>,
}

/// `GET /api/jobs/{jobID}`: every outcome record of the job.
async fn job(
    State(console): State<Arc<Console>>,
    Path(job_id): Path<String>,
    Query(query): Query<JobQuery>,
) -> Response {
    let since = match since_of(query.since.as_deref()) {
        Ok(since) => since,
        Err(problem) => return error(StatusCode::BAD_REQUEST, &problem),
    };
    let in_flight = console.in_flight.view().get(&job_id);
    let found = console
        .read(move |reader, console| jobs::outcomes(reader, &console.settings, &job_id, since))
        .await;
    match found {
        Ok(outcomes) => Json(JobStory {
            outcomes,
            in_flight,
        })
        .into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

/// A job's outcome records, and where it is now if it is in flight.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JobStory {
    #[serde(flatten)]
    outcomes: jobs::JobOutcomes,
    #[serde(skip_serializing_if = "Option::is_none")]
    in_flight: Option<JobStatus>,
}

#[derive(Deserialize)]
struct PageQuery {
    limit: Option<usize>,
    before: Option<String>,
}

/// `GET /api/outcomes?limit=&before=`: the latest outcome records, newest first, a page
/// at a time (`next` is the `before` of the following page).
async fn latest_outcomes(
    State(console): State<Arc<Console>>,
    Query(query): Query<PageQuery>,
) -> Response {
    let before = match query.before.as_deref().map(jobs::parse_cursor) {
        Some(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "before: not a cursor this API gave (partition:offset,…)",
            )
        }
        Some(Some(cursor)) => Some(cursor),
        None => None,
    };
    let limit = match limit_of(query.limit) {
        Ok(limit) => limit,
        Err(problem) => return error(StatusCode::BAD_REQUEST, &problem),
    };
    let page = console
        .read(move |reader, console| {
            jobs::latest(reader, &console.settings, limit, before.as_ref())
        })
        .await;
    match page {
        Ok(page) => Json(page).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

#[derive(Deserialize)]
struct DeadLetterQuery {
    kind: Option<String>,
    group: Option<String>,
    #[serde(rename = "jobID")]
    job_id: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
    /// Those resolved without a replay too.
    #[serde(rename = "includeResolved", default)]
    include_resolved: bool,
}

/// `GET /api/dlq?kind=&jobID=&since=&limit=&includeResolved=`: the newest matching dead
/// letters (those resolved without a replay only with `includeResolved=true`).
async fn dead_letters(
    State(console): State<Arc<Console>>,
    Query(query): Query<DeadLetterQuery>,
) -> Response {
    let (since, limit) = match (since_of(query.since.as_deref()), limit_of(query.limit)) {
        (Ok(since), Ok(limit)) => (since, limit),
        (Err(problem), _) | (_, Err(problem)) => return error(StatusCode::BAD_REQUEST, &problem),
    };
    let filter = Filter {
        kind: query.kind,
        job_id: query.job_id,
        since,
        unreplayed_only: false,
        group: query.group,
        with_resolved: query.include_resolved,
    };
    let found = console
        .read(move |reader, console| console.dead_letters().find(reader, &filter, limit))
        .await;
    match found {
        Ok(found) => Json(found).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReplayRequest {
    #[serde(rename = "jobID")]
    job_id: Option<String>,
    kind: Option<String>,
    group: Option<String>,
    since: Option<String>,
    #[serde(default)]
    dry_run: bool,
    /// Replay dead letters that were replayed before too.
    #[serde(default)]
    include_replayed: bool,
}

/// `POST /api/dlq/replay`: a job's newest dead letter not yet replayed
/// (`{"jobID": …}`), or every one of a kind (`{"kind": …, "since": …}`), with
/// `includeReplayed` those replayed before too; answers how many were replayed. A dry
/// run changes nothing, so a read-only console answers it too.
async fn replay(
    State(console): State<Arc<Console>>,
    Extension(Caller(caller)): Extension<Caller>,
    Json(request): Json<ReplayRequest>,
) -> Response {
    if console.read_only && !request.dry_run {
        return error(
            StatusCode::FORBIDDEN,
            "the console is read-only (CONSOLE_READ_ONLY=true): only a dryRun replay is answered",
        );
    }
    let since = match since_of(request.since.as_deref()) {
        Ok(since) => since,
        Err(problem) => return error(StatusCode::BAD_REQUEST, &problem),
    };
    let filter = Filter {
        kind: request.kind.clone(),
        job_id: request.job_id.clone(),
        since,
        unreplayed_only: !request.include_replayed,
        group: request.group.clone(),
        with_resolved: false,
    };
    let Some(limit) = filter.replay_limit() else {
        return error(
            StatusCode::BAD_REQUEST,
            "say which dead letters: jobID, kind, or group",
        );
    };
    let found = match console
        .read(move |reader, console| console.dead_letters().find(reader, &filter, limit))
        .await
    {
        Ok(found) => found,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let how = Replay {
        who: &caller,
        dry_run: request.dry_run,
        again: request.include_replayed,
        action: None,
    };
    let replayed = match console
        .dead_letters()
        .replay(&found.dead_letters, &how)
        .await
    {
        Ok(replayed) => replayed,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    tracing::info!(
        who = %caller, action = "dlq replay", dry_run = request.dry_run, kind = ?request.kind,
        job_id = ?request.job_id, since = ?since, replayed = replayed.replayed.len(),
        refused = replayed.refused.len(), "console action"
    );
    Json(json!({
        "replayed": replayed.replayed.len(),
        "deadLetters": replayed.replayed,
        "refused": replayed.refused,
        "dryRun": request.dry_run,
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResolveRequest {
    /// Exactly these dead letters (`partition:offset`)…
    #[serde(default)]
    positions: Vec<String>,
    /// …or every one of a job, a kind or a group (not resolved yet).
    #[serde(rename = "jobID")]
    job_id: Option<String>,
    kind: Option<String>,
    group: Option<String>,
    since: Option<String>,
}

/// `POST /api/dlq/resolve`: marks dead letters resolved without a replay (`positions`,
/// or every one of a `jobID`, `kind` or `group`): they leave the default view.
async fn resolve(
    State(console): State<Arc<Console>>,
    Extension(Caller(caller)): Extension<Caller>,
    Json(request): Json<ResolveRequest>,
) -> Response {
    if console.read_only {
        return error(
            StatusCode::FORBIDDEN,
            "the console is read-only (CONSOLE_READ_ONLY=true): actions are refused",
        );
    }
    let since = match since_of(request.since.as_deref()) {
        Ok(since) => since,
        Err(problem) => return error(StatusCode::BAD_REQUEST, &problem),
    };
    let positions: Result<Vec<Position>, String> =
        request.positions.iter().map(|p| p.parse()).collect();
    let positions = match positions {
        Ok(positions) => positions,
        Err(problem) => return error(StatusCode::BAD_REQUEST, &problem),
    };
    let filter = Filter {
        kind: request.kind,
        job_id: request.job_id,
        since,
        group: request.group,
        ..Filter::default()
    };
    if positions.is_empty() && filter.replay_limit().is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "say which dead letters: positions, jobID, kind, or group",
        );
    }
    let found = match console.chosen_dead_letters(positions, filter).await {
        Ok(found) => found,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let action = crate::session::form_token();
    let resolved = console
        .dead_letters()
        .resolve(&found.dead_letters, &caller, &action)
        .await;
    tracing::info!(who = %caller, action = "dlq resolve", resolved = ?resolved.as_ref().ok(), "console action");
    match resolved {
        Ok(count) => Json(json!({
            "resolved": count,
            "deadLetters": found.dead_letters.iter().map(|l| &l.dead_letter).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<usize>,
}

/// What is happening now: the jobs in flight and the delayed jobs due first.
#[derive(serde::Serialize)]
struct Now {
    #[serde(flatten)]
    in_flight: NowPage,
    waiting: delayed::Page,
}

/// `GET /api/now?limit=`: the jobs running (the longest running first) and retrying (the
/// next tried first), as the workers report them, and the delayed jobs due first; at
/// most `limit` of each, with how many there are.
async fn now(State(console): State<Arc<Console>>, Query(query): Query<LimitQuery>) -> Response {
    let limit = match limit_of(query.limit) {
        Ok(limit) => limit,
        Err(problem) => return error(StatusCode::BAD_REQUEST, &problem),
    };
    let in_flight = match console.in_flight(limit) {
        Ok(in_flight) => in_flight,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    match console.waiting(limit).await {
        Ok(waiting) => Json(Now { in_flight, waiting }).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

/// `GET /api/delayed?limit=`: the delayed jobs waiting for their time, earliest due
/// first, and how many wait in all.
async fn waiting(State(console): State<Arc<Console>>, Query(query): Query<LimitQuery>) -> Response {
    let limit = match limit_of(query.limit) {
        Ok(limit) => limit,
        Err(problem) => return error(StatusCode::BAD_REQUEST, &problem),
    };
    match console.waiting(limit).await {
        Ok(page) => Json(page).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

/// `POST /api/delayed/{jobID}/cancel`: the job, if it waits, never runs; its result
/// record says it was cancelled. Answers the job as it waited.
async fn cancel_waiting(
    State(console): State<Arc<Console>>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(job_id): Path<String>,
) -> Response {
    if console.read_only {
        return error(
            StatusCode::FORBIDDEN,
            "the console is read-only (CONSOLE_READ_ONLY=true): actions are refused",
        );
    }
    match console.cancel_waiting(&job_id).await {
        Ok(job) => {
            tracing::info!(who = %caller, action = "delayed cancel", job_id = %job_id, "console action");
            Json(job).into_response()
        }
        Err(CancelError::NotWaiting(why)) => error(StatusCode::NOT_FOUND, &why),
        Err(CancelError::Failed(why)) => error(StatusCode::SERVICE_UNAVAILABLE, &why),
    }
}

/// Why a waiting job was not cancelled.
pub(crate) enum CancelError {
    NotWaiting(String),
    Failed(String),
}

impl Console {
    /// Cancels job `job_id` if it waits on the delayed topic.
    pub(crate) async fn cancel_waiting(
        self: &Arc<Self>,
        job_id: &str,
    ) -> Result<delayed::WaitingJob, CancelError> {
        let id = job_id.to_owned();
        let found = self
            .read(move |reader, console| console.delayed.find(reader, &console.settings, &id))
            .await
            .map_err(CancelError::Failed)?;
        let Some((job, _)) = found else {
            let missing = delayed::DelayedError::NotWaiting {
                job_id: job_id.to_owned(),
                topic: self.settings.delayed_topic.clone(),
            };
            return Err(CancelError::NotWaiting(missing.to_string()));
        };
        delayed::cancel(&self.settings, &job)
            .await
            .map_err(|e| CancelError::Failed(e.to_string()))?;
        self.delayed.forget(&job);
        Ok(job)
    }
}

/// Runs a blocking read off the async workers; its error as text.
pub(crate) async fn blocking<T: Send + 'static, E: std::fmt::Display>(
    read: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(move || read().map_err(|e| e.to_string())).await {
        Ok(result) => result,
        Err(e) => Err(format!("the read stopped: {e}")),
    }
}
