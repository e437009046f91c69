//! The operator's view of a deployment, read from its topics alone, in bounded slices.
//!
//! - [`dead_letters`]: find dead letters (by kind, job, time) and replay them to their
//!   source topic, marked as replays.
//! - [`jobs`]: a job's outcome records, by jobID.
//! - [`now`]: the jobs in flight (running, retrying), followed on the status topic.
//! - [`activity`]: outcomes per minute and lag per partition over the last hour,
//!   followed in the background for the overview.
//! - [`web`]: the pages, behind a login cookie, with CSRF-checked actions.
//! - [`charts`]: the overview's line charts, as inline SVG.
//! - [`readers`]: consumers for bounded reads, kept between requests.
//! - [`session`]: the login cookie and the CSRF token, MACs made with an API key.
//! - [`ledger`]: what the console remembers (replays, logouts, submitted forms), on a
//!   compacted topic every replica follows.
//! - [`api`]: the same as JSON under `/api`, behind API keys, with a read-only mode.
//! - [`config`]: `CONSOLE_PORT`, `CONSOLE_API_KEYS`, `CONSOLE_READ_ONLY`, `CONSOLE_COOKIE_SECURE`.

pub mod activity;
pub mod api;
pub mod charts;
pub mod config;
pub mod dead_letters;
pub mod jobs;
pub mod ledger;
pub mod now;
pub mod readers;
pub mod session;
pub mod web;

use std::net::SocketAddr;
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
    let console = Arc::new(console);
    let app = api::router(console.clone())
        .merge(web::router(console))
        .layer(axum::middleware::from_fn(web::security_headers));
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}
