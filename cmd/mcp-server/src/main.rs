//! mcp-server: the stateless MCP tool server. Configuration comes from the environment
//! (see the README's table); SIGTERM or SIGINT stops it after in-flight requests finish.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    mcp_jobs_telemetry::init();
    let settings =
        mcp_jobs_tool_server::ServerSettings::from_env().context("mcp-server configuration")?;
    mcp_jobs_tool_server::serve(settings, shutdown_signal())
        .await
        .context("mcp-server failed")
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutdown signal received");
}
