//! W3C trace context (`traceparent`, `tracestate`) in and out of the carriers a job
//! crosses: Kafka headers (the producer's, read by the worker), HTTP headers and MCP
//! `_meta` (written by the worker, read by mcp-server, written again by mcp-server for
//! the upstream MCP server).
//!
//! `_meta` matters because one MCP session carries many jobs' requests at once: the
//! context has to ride on each request, and MCP servers that trace look for it there.

pub use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
pub use opentelemetry::Context;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use serde_json::{Map, Value};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Reads a trace context from any carrier; empty when there is none or it is invalid.
pub fn extract(carrier: &dyn Extractor) -> Context {
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(carrier))
}

pub fn from_http(headers: &http::HeaderMap) -> Context {
    extract(&HeaderExtractor(headers))
}

pub fn from_meta(meta: &Map<String, Value>) -> Context {
    extract(&MetaReader(meta))
}

/// Whether `context` continues a trace begun elsewhere.
pub fn is_remote_parent(context: &Context) -> bool {
    context.span().span_context().is_valid()
}

/// Makes `span` a child of `parent` when `parent` holds a valid span context (else the
/// span starts a trace), then records the span's trace id in its `trace_id` field, which
/// the span must declare (`trace_id = tracing::field::Empty`), so logs carry it.
pub fn continue_trace(span: &tracing::Span, parent: Context) {
    if is_remote_parent(&parent) {
        // Fails only for a span that is disabled (filtered out): nothing to link then.
        let _ = span.set_parent(parent);
    }
    let trace_id = span.context().span().span_context().trace_id();
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// Writes `span`'s context into any carrier (e.g. a map of Kafka headers).
pub fn inject(span: &tracing::Span, carrier: &mut dyn Injector) {
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, carrier);
    });
}

/// Writes `span`'s context into `_meta`, replacing any context already there.
pub fn inject_meta(span: &tracing::Span, meta: &mut Map<String, Value>) {
    inject(span, &mut MetaWriter(meta));
}

/// Copies the trace context of a request's `_meta` into the headers of the HTTP
/// request that carries it.
pub fn meta_to_http(meta: &Map<String, Value>, headers: &mut http::HeaderMap) {
    let context = from_meta(meta);
    if is_remote_parent(&context) {
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut HeaderInjector(headers));
        });
    }
}

struct MetaReader<'a>(&'a Map<String, Value>);

impl Extractor for MetaReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

struct MetaWriter<'a>(&'a mut Map<String, Value>);

impl Injector for MetaWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), Value::String(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use serde_json::json;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn trace_context_moves_from_meta_to_http_headers() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let meta = json!({ "traceparent": TRACEPARENT, "tracestate": "vendor=1", "other": 1 });
        let Value::Object(meta) = meta else {
            unreachable!()
        };
        let mut headers = http::HeaderMap::new();
        meta_to_http(&meta, &mut headers);
        assert_eq!(headers["traceparent"], TRACEPARENT);
        assert_eq!(headers["tracestate"], "vendor=1");
        let back = from_http(&headers);
        assert_eq!(
            back.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn malformed_or_missing_context_is_no_parent() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        for meta in [
            json!({}),
            json!({ "traceparent": "00-nothex-01" }),
            json!({ "traceparent": 7 }),
        ] {
            let Value::Object(meta) = meta else {
                unreachable!()
            };
            assert!(!is_remote_parent(&from_meta(&meta)));
            let mut headers = http::HeaderMap::new();
            meta_to_http(&meta, &mut headers);
            assert!(headers.is_empty());
        }
    }
}
