//! mcp-server: the stateless MCP tool server. Configuration comes from the environment
//! (see the README's table); SIGTERM or SIGINT stops it after in-flight requests finish.

use anyhow::Context;

/// Every call allocates many small short-lived buffers across threads (JSON, HTTP,
/// stdio frames); glibc's allocator spent a fifth of mcp-server's CPU on them under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Held to the end: dropping it sends the last spans.
    let _telemetry = mcp_jobs_telemetry::init("mcp-server").context("telemetry")?;
    let settings =
        mcp_jobs_tool_server::ServerSettings::from_env().context("mcp-server configuration")?;
    let metrics = mcp_jobs_telemetry::install_metrics().context("metrics recorder")?;
    mcp_jobs_tool_server::serve(settings, metrics, mcp_jobs_runtime::shutdown_signal())
        .await
        .context("mcp-server failed")
}
