//! The worker's own small HTTP server on `METRICS_PORT`: `/metrics` for Prometheus,
//! `/health` (the process is alive) and `/ready` (it is consuming), whose body also
//! names the schedule dispatcher's role (active, or standby behind which replica).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use mcp_jobs_telemetry::PrometheusHandle;
use tokio::net::TcpListener;

/// Whether the worker is doing its work (consuming, or dispatching for `kafka-worker
/// scheduler`): set once it has started, cleared when it starts shutting down. And
/// what the dispatcher in this process is doing, if one runs.
#[derive(Clone, Default)]
pub struct Readiness {
    ready: Arc<AtomicBool>,
    scheduler: Arc<Mutex<Option<String>>>,
}

impl Readiness {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Describes the dispatcher's role, e.g. `active (worker-1)`.
    pub fn set_scheduler(&self, role: String) {
        *self
            .scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(role);
    }

    fn report(&self) -> (StatusCode, String) {
        let (status, mut body) = if self.ready.load(Ordering::Relaxed) {
            (StatusCode::OK, "ready".to_owned())
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "not consuming".to_owned())
        };
        if let Some(role) = &*self
            .scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            body.push_str("\nscheduler: ");
            body.push_str(role);
        }
        (status, body)
    }
}

/// Binds `port` (so a port in use fails the start, not later) and serves it in the
/// background for as long as the process runs.
pub async fn serve(port: u16, metrics: PrometheusHandle, ready: Readiness) -> std::io::Result<()> {
    let listener = TcpListener::bind(("0.0.0.0", port)).await?;
    tracing::info!(address = %listener.local_addr()?, "metrics, health and readiness served");
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(m): State<PrometheusHandle>| async move { m.render() }),
        )
        .with_state(metrics)
        .route("/health", get(|| async { "ok" }))
        .route(
            "/ready",
            get(|State(ready): State<Readiness>| async move { ready.report() }).with_state(ready),
        );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics endpoint stopped");
        }
    });
    Ok(())
}
