//! One global subscriber feeds two outputs: log lines on stderr, and OpenTelemetry
//! spans. Spans always get trace ids, so the trace context of a job travels on (and
//! its id shows in the logs) whether or not this process exports; only with an OTLP
//! endpoint are the spans sent anywhere.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{ExporterBuildError, SpanExporter};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::{SubscriberInitExt, TryInitError};
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot build the OTLP trace exporter for {endpoint}: {source}")]
    Exporter {
        endpoint: String,
        #[source]
        source: ExporterBuildError,
    },
    #[error("cannot install the log subscriber: {0}")]
    Subscriber(#[from] TryInitError),
}

/// Keeps the tracer alive; dropping it sends the spans not yet exported.
#[must_use = "dropping Telemetry stops trace export"]
pub struct Telemetry {
    tracer: SdkTracerProvider,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Err(e) = self.tracer.shutdown() {
            tracing::warn!(error = %e, "not every span could be exported before exit");
        }
    }
}

/// Installs the global subscriber and the W3C trace-context propagator; call once,
/// first thing in `main`, inside the Tokio runtime.
///
/// - `RUST_LOG` filters logs and spans alike (default `info,rmcp=warn`, which keeps
///   libraries' spans out of traces).
/// - `LOG_FORMAT=json` writes one JSON object per line, with the fields of the spans
///   around it (`job_id`, `trace_id`, …); anything else writes readable text. Logs go to
///   stderr so that stdout stays free for command output.
/// - `OTEL_EXPORTER_OTLP_ENDPOINT` (e.g. `http://jaeger:4318`) exports spans over
///   OTLP/HTTP, batched; `OTEL_SERVICE_NAME` overrides `service`.
pub fn init(service: &'static str) -> Result<Telemetry, TelemetryError> {
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // Colours only for a person at a terminal, not in files and log collectors.
    let logs = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let logs = if json {
        logs.json().boxed()
    } else {
        logs.boxed()
    };
    // One global filter for logs and spans: per-layer filters lost spans' trace context
    // in tracing-opentelemetry 0.34.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn"));
    let tracer = tracer_provider(service)?;
    let spans = tracing_opentelemetry::layer().with_tracer(tracer.tracer(service));
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(spans)
        .try_init()?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    Ok(Telemetry { tracer })
}

fn tracer_provider(service: &'static str) -> Result<SdkTracerProvider, TelemetryError> {
    let name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| service.to_owned());
    let builder = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(name).build());
    let Some(endpoint) = otlp_endpoint() else {
        return Ok(builder.build());
    };
    // The exporter reads the endpoint itself, appending `/v1/traces` to the generic one.
    let exporter = SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|source| TelemetryError::Exporter {
            endpoint: endpoint.clone(),
            source,
        })?;
    Ok(builder.with_batch_exporter(exporter).build())
}

fn otlp_endpoint() -> Option<String> {
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .into_iter()
    .filter_map(|name| std::env::var(name).ok())
    .find(|endpoint| !endpoint.trim().is_empty())
}
