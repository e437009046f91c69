//! Kafka record headers as mcp-jobs handles them: W3C trace context (`traceparent`,
//! `tracestate`) read from each job the producer traced and written by
//! `kafka-worker publish`, one header's value, a record's headers taken whole, and
//! names with values made into librdkafka's headers. What the headers mean is
//! `mcp_jobs_contract::headers`'s.

use mcp_jobs_telemetry::propagation::{self, Context, Extractor};
use rdkafka::message::{BorrowedHeaders, Header, Headers, OwnedHeaders};

/// The trace context headers, carried over when a job is sent on (delayed, released),
/// so that its run continues the job's trace.
pub const TRACE: [&str; 2] = ["traceparent", "tracestate"];

/// The value of header `name`, if the record has it.
pub fn header<'a, H: Headers>(headers: Option<&'a H>, name: &str) -> Option<&'a [u8]> {
    headers?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
}

/// Names with values as a record's headers.
pub fn owned<N: AsRef<str>, V: AsRef<[u8]>>(
    headers: impl IntoIterator<Item = (N, V)>,
) -> OwnedHeaders {
    headers
        .into_iter()
        .fold(OwnedHeaders::new(), |all, (name, value)| {
            all.insert(Header {
                key: name.as_ref(),
                value: Some(value.as_ref()),
            })
        })
}

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
    owned(fields)
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
