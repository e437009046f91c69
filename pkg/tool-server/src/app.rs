//! The HTTP application: MCP Streamable HTTP at `/mcp`, the REST/SSE/WebSocket gateway,
//! `/stats`, all behind the API-key gate; `/health` and `/ready` for probes. Stateless:
//! no MCP sessions, so any replica answers any request.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{middleware, Json, Router};
use mcp_jobs_shared_state::{Mailboxes, Store, Streams};
use mcp_jobs_telemetry::PrometheusHandle;
use mcp_jobs_upstream::{Allowlist, CommandAllowlist, EnvRules, Policy, Pool};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::ServerHandler;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::auth::require_api_key;
use crate::config::{Auth, ServerSettings};
use crate::gateway;
use crate::metrics;
use crate::named::{self, Named, Registry};
use crate::tasks::{self, TasksSlot};
use crate::tools::ServerTools;

/// How often idle upstream connections are looked for, at most: a short idle timeout
/// is checked more often, so children never outlive it by much.
const REAP_EVERY: Duration = Duration::from_secs(5);

/// Builds the application around the named servers (with the pool and the stop token
/// they share) and the `shared` Redis state. Once `draining` is cancelled `/ready`
/// answers 503, so load balancers stop sending; `named.stop` then ends open MCP streams.
fn router(
    settings: &ServerSettings,
    named: Named,
    shared: Store,
    metrics: PrometheusHandle,
    draining: CancellationToken,
) -> Router {
    let (pool, registry, stop) = (
        named.pool.clone(),
        named.registry.clone(),
        named.stop.clone(),
    );
    let scrape = {
        let (pool, tasks) = (pool.clone(), named.tasks.clone());
        move || async move {
            metrics::record_pool(&pool);
            if let Some(Ok(tasks)) = tasks.as_ref().map(|slot| slot.get()) {
                metrics::record_tasks(tasks.states());
            }
            metrics.render()
        }
    };
    let tools = ServerTools::new(
        pool,
        registry,
        Mailboxes::new(shared.clone(), settings.messaging.clone()),
        Streams::new(shared),
        settings,
        named.tasks.clone(),
    );
    let tasks_slot = named.tasks.clone();
    let api = Router::new()
        .nest_service("/mcp", mcp_service(tools.clone(), settings, stop.clone()))
        .merge(gateway::routes().with_state(tools.clone()))
        .merge(named::routes::routes().with_state(named))
        .route("/stats", get(stats).with_state(tools));
    let tasks_layer = tasks::TasksLayer {
        max_body_bytes: settings.max_body_bytes,
        tasks: tasks_slot,
    };
    let api = api.layer(middleware::from_fn_with_state(
        tasks_layer,
        tasks::before_rmcp,
    ));
    guarded(api, settings)
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/ready", get(ready).with_state(draining))
        .route("/metrics", get(scrape))
}

/// rmcp's Streamable HTTP service for `handler`, the way mcp-server runs it: stateless
/// ([`mcp_config`]).
pub fn mcp_service<H: ServerHandler + Clone>(
    handler: H,
    settings: &ServerSettings,
    stop: CancellationToken,
) -> StreamableHttpService<H, NeverSessionManager> {
    StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(NeverSessionManager::default()),
        mcp_config(settings, stop),
    )
}

/// How mcp-server serves MCP over Streamable HTTP: stateless, JSON answers (SSE only
/// when a tool sends progress), the body limit and Host guard from `settings`.
pub fn mcp_config(
    settings: &ServerSettings,
    stop: CancellationToken,
) -> StreamableHttpServerConfig {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_max_request_body_bytes(settings.max_body_bytes)
        .with_cancellation_token(stop);
    match &settings.allowed_hosts {
        Allowlist::Any => config.disable_allowed_hosts(),
        Allowlist::Only(hosts) => config.with_allowed_hosts(hosts.iter().cloned()),
    }
}

/// `routes` behind what guards every endpoint but the probes: the body limit and the
/// API-key gate; and counted and timed in the metrics.
pub fn guarded(routes: Router, settings: &ServerSettings) -> Router {
    routes
        .route_layer(middleware::from_fn(metrics::track_http))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            settings.auth.clone(),
            require_api_key,
        ))
}

async fn stats(State(tools): State<ServerTools>) -> Json<Value> {
    Json(json!({
        "requests": tools.stats().snapshot(),
        "pool": tools.pool().stats(),
    }))
}

async fn ready(State(draining): State<CancellationToken>) -> (StatusCode, Json<Value>) {
    if draining.is_cancelled() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        )
    } else {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    }
}

/// Answers are small and each is one write: sending at once, without waiting to
/// coalesce (Nagle), is what keeps tail latency down.
pub fn no_delay(stream: &mut tokio::net::TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
}

/// Says at start what the policy lets jobs do that an operator may not have meant.
fn warn_about_policy(policy: &Policy) {
    match &policy.allowed_commands {
        CommandAllowlist::Any => {
            tracing::warn!("MCP_ALLOWED_COMMANDS=*: jobs may run any command with any arguments")
        }
        list if list.is_empty() => {
            tracing::warn!("MCP_ALLOWED_COMMANDS is empty: every stdio server will be refused")
        }
        list => {
            for command in list.unpinned_launchers() {
                tracing::warn!(
                    command,
                    "MCP_ALLOWED_COMMANDS allows {command:?} with any arguments, which allows any code: pin its arguments (e.g. \"uvx mcp-server-time\")"
                );
            }
        }
    }
    if policy.allowed_env == EnvRules::Any {
        tracing::warn!("MCP_ALLOWED_ENV=*: jobs may set any variable, including those that make a child load other code (LD_PRELOAD, PYTHONPATH, NODE_OPTIONS…)");
    }
}

/// Serves until `shutdown` resolves, then finishes in-flight requests and closes every
/// upstream connection (children exit or are killed with their process group).
pub async fn serve(
    settings: ServerSettings,
    metrics: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if matches!(settings.auth, Auth::Disabled) {
        tracing::warn!("MCP_AUTH=none: authentication is OFF, anyone who can reach this port can run allowed commands");
    }
    warn_about_policy(&settings.policy);
    let pool =
        Pool::new(settings.policy.clone(), settings.pool.clone()).map_err(std::io::Error::other)?;
    let shared = Store::open(&settings.redis_url).map_err(std::io::Error::other)?;
    let registry = Arc::new(match &settings.servers_file {
        Some(path) => Registry::load(path.clone()).map_err(std::io::Error::other)?,
        None => Registry::empty(),
    });
    tracing::info!(
        named_servers = registry.servers().len(),
        "named servers loaded"
    );
    let tasks = match settings.tasks.clone() {
        Some(tasks) => Some(TasksSlot::start(tasks).await),
        None => None,
    };
    let draining = CancellationToken::new();
    let stop = CancellationToken::new();
    tokio::spawn(registry.clone().watch(stop.clone()));
    let named = Named {
        registry,
        pool: pool.clone(),
        settings: Arc::new(settings.clone()),
        listed: Default::default(),
        sessions: Default::default(),
        tasks,
        stop: stop.clone(),
    };
    let app = router(&settings, named, shared, metrics, draining.clone());

    let listener = tokio::net::TcpListener::bind(settings.listen).await?;
    tracing::info!(address = %listener.local_addr()?, "mcp-server listening");
    let listener = listener.tap_io(no_delay);
    let drain = settings.drain;
    let reaper = tokio::spawn({
        let pool = pool.clone();
        let every = (settings.pool.idle_timeout / 2).clamp(Duration::from_millis(100), REAP_EVERY);
        async move { pool.reap_idle(every).await }
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Not ready first, still serving: the load balancer has MCP_DRAIN_SECONDS
            // to notice before the listener closes.
            draining.cancel();
            tracing::info!(seconds = drain.as_secs(), "draining");
            tokio::time::sleep(drain).await;
            stop.cancel();
        })
        .await;
    reaper.abort();
    pool.shutdown().await;
    tracing::info!("mcp-server stopped");
    served
}
