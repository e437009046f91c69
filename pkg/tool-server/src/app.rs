//! The HTTP application: MCP Streamable HTTP at `/mcp` behind the API-key gate, and
//! `/health` for probes. Stateless: no MCP sessions, so any replica answers any request.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{middleware, Json, Router};
use mcp_jobs_upstream::{Allowlist, Connector};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::auth::require_api_key;
use crate::config::{Auth, ServerSettings};
use crate::tools::JobTools;

/// How often idle upstream connections are looked for.
const REAP_EVERY: Duration = Duration::from_secs(5);

/// Builds the application around `connector`; `stop` ends open MCP streams on shutdown.
pub fn router(
    settings: &ServerSettings,
    connector: Arc<Connector>,
    stop: CancellationToken,
) -> Router {
    let mut mcp_config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_max_request_body_bytes(settings.max_body_bytes)
        .with_cancellation_token(stop);
    mcp_config = match &settings.allowed_hosts {
        Allowlist::Any => mcp_config.disable_allowed_hosts(),
        Allowlist::Only(hosts) => mcp_config.with_allowed_hosts(hosts.iter().cloned()),
    };
    let tools = JobTools::new(connector);
    let mcp = StreamableHttpService::new(
        move || Ok(tools.clone()),
        Arc::new(NeverSessionManager::default()),
        mcp_config,
    );
    Router::new()
        .nest_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(
            settings.auth.clone(),
            require_api_key,
        ))
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({ "status": "ok" })) }),
        )
}

/// Serves until `shutdown` resolves, then finishes in-flight requests and closes every
/// upstream connection (children exit or are killed with their process group).
pub async fn serve(
    settings: ServerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if matches!(settings.auth, Auth::Disabled) {
        tracing::warn!("MCP_AUTH=none: authentication is OFF, anyone who can reach this port can run allowed commands");
    }
    if settings.policy.allowed_commands.is_empty() {
        tracing::warn!("MCP_ALLOWED_COMMANDS is empty: every stdio server will be refused");
    }
    let connector = Arc::new(Connector::new(
        settings.policy.clone(),
        settings.connector.clone(),
    ));
    let stop = CancellationToken::new();
    let app = router(&settings, connector.clone(), stop.clone());

    let listener = tokio::net::TcpListener::bind(settings.listen).await?;
    tracing::info!(address = %listener.local_addr()?, "mcp-server listening");
    let reaper = tokio::spawn({
        let connector = connector.clone();
        async move { connector.reap_idle(REAP_EVERY).await }
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            stop.cancel();
        })
        .await;
    reaper.abort();
    connector.shutdown().await;
    tracing::info!("mcp-server stopped");
    served
}
