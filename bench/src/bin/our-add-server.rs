//! "Ours" in the server benchmark: the `add` tool behind exactly what mcp-server puts in
//! front of its own tools — its settings from the environment, its allocator, logging,
//! metrics, a span per call continuing the caller's trace, TCP_NODELAY, the API-key
//! gate, body limit and Host guard — so the difference from `bare-rmcp-add` is what
//! mcp-server adds to every request.

use axum::serve::ListenerExt;
use mcp_jobs_bench::AddServer;
use mcp_jobs_tool_server::{guarded, mcp_service, no_delay, ServerSettings};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = mcp_jobs_telemetry::init("our-add-server")?;
    let _metrics = mcp_jobs_telemetry::install_metrics()?;
    let settings = ServerSettings::from_env()?;
    let mcp = mcp_service(AddServer::new(true), &settings, CancellationToken::new());
    let app = guarded(axum::Router::new().nest_service("/mcp", mcp), &settings);
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await?
        .tap_io(no_delay);
    axum::serve(listener, app).await?;
    Ok(())
}
