//! The worker's own small HTTP server on `METRICS_PORT`: `/metrics` for Prometheus,
//! `/health` (the process is alive) and `/ready` (it is consuming), whose body also
//! names the schedule dispatcher's role (active, or standby behind which replica).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use mcp_jobs_runtime::Readiness;
use mcp_jobs_telemetry::PrometheusHandle;
use tokio::net::TcpListener;

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
            get(|State(ready): State<Readiness>| async move {
                let (ready, body) = ready.report();
                let status = if ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                (status, body)
            })
            .with_state(ready),
        );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics endpoint stopped");
        }
    });
    Ok(())
}
