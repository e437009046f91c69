//! Logs, metrics and traces: what both binaries set up before their work, and the
//! trace context that follows one job across Kafka, kafka-worker, mcp-server and the
//! upstream MCP server.
//!
//! - [`init`]: the log subscriber (text, or JSON with `LOG_FORMAT=json`) and the
//!   tracer behind every span, exporting over OTLP/HTTP when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//! - [`install_metrics`]: the Prometheus recorder behind `/metrics`.
//! - [`propagation`]: W3C `traceparent`/`tracestate` read from and written to Kafka
//!   headers, HTTP headers and MCP `_meta`.

mod init;
mod metrics;
pub mod propagation;

pub use init::{init, Telemetry, TelemetryError};
pub use metrics::{install_metrics, BuildError, PrometheusHandle};
