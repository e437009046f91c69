//! What both binaries set up around their work: logging, and the shutdown signal.
//!
//! Logging: `RUST_LOG` filters (default `info,rmcp=warn`); `LOG_FORMAT=json` gives one JSON object
//! per line for log shippers, anything else readable text. Logs go to stderr so that
//! stdout stays free for command output (`kafka-worker publish --wait`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global log subscriber; call once, first thing in `main`.
pub fn init_logging() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // Colours only for a person at a terminal, not in files and log collectors.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on SIGTERM (what Kubernetes and docker send) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
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
            if let Err(e) = tokio::signal::ctrl_c().await {
                tracing::error!(error = %e, "cannot listen for SIGINT either; stopping now");
            }
        }
    }
    tracing::info!("shutdown signal received");
}
