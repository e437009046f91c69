//! mcp-server: the stateless MCP tool server. Configuration comes from the environment
//! (see the README's table); SIGTERM or SIGINT stops it after in-flight requests finish.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    mcp_jobs_runtime::init_logging();
    let settings =
        mcp_jobs_tool_server::ServerSettings::from_env().context("mcp-server configuration")?;
    mcp_jobs_tool_server::serve(settings, mcp_jobs_runtime::shutdown_signal())
        .await
        .context("mcp-server failed")
}
