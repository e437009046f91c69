//! Kafka record headers: W3C trace context (`traceparent`, `tracestate`) read from
//! each job the producer traced and written by `kafka-worker publish`, and a record's
//! headers taken whole.

use mcp_jobs_telemetry::propagation::{self, Context, Extractor};
use rdkafka::message::{BorrowedHeaders, Header, Headers, OwnedHeaders};

/// The trace context a received record carries; empty when it carries none.
pub fn context_of(headers: Option<&BorrowedHeaders>) -> Context {
    headers
        .map(|headers| propagation::extract(&RecordHeaders(headers)))
        .unwrap_or_default()
}

/// Every header of a record, as names and bytes.
pub fn all_of(headers: Option<&impl Headers>) -> Vec<(String, Vec<u8>)> {
    headers
        .map(|headers| {
            headers
                .iter()
                .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default()
}

/// `span`'s context as record headers.
pub fn headers_of(span: &tracing::Span) -> OwnedHeaders {
    let mut fields = std::collections::HashMap::new();
    propagation::inject(span, &mut fields);
    fields
        .iter()
        .fold(OwnedHeaders::new(), |headers, (key, value)| {
            headers.insert(Header {
                key,
                value: Some(value),
            })
        })
}

struct RecordHeaders<'a>(&'a BorrowedHeaders);

impl Extractor for RecordHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|header| header.key.eq_ignore_ascii_case(key))
            .and_then(|header| std::str::from_utf8(header.value?).ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|header| header.key).collect()
    }
}
