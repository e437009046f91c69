//! The operator's view of a deployment, read from its topics alone, in bounded slices.
//!
//! - [`dead_letters`]: find dead letters (by kind, job, time) and replay them to their
//!   source topic, marked as replays.
//! - [`jobs`]: a job's outcome records, by jobID.
//! - [`api`]: the same as JSON under `/api`, behind API keys, with a read-only mode.
//! - [`config`]: `CONSOLE_PORT`, `CONSOLE_API_KEYS`, `CONSOLE_READ_ONLY`.

pub mod api;
pub mod config;
pub mod dead_letters;
pub mod jobs;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves the console on `port` until `shutdown`.
pub async fn serve(
    console: api::Console,
    port: u16,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(("0.0.0.0", port)).await?;
    tracing::info!(address = %listener.local_addr()?, read_only = console.read_only, "console served");
    axum::serve(listener, api::router(Arc::new(console)))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
