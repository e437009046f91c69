//! What both binaries share about running: when to stop ([`shutdown_signal`]), whether
//! the process is doing its work ([`Readiness`]), and how to say what happens often
//! without a line for each ([`Tally`]).

mod readiness;
mod tally;

pub use readiness::Readiness;
pub use tally::Tally;

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
