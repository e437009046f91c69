//! Why a job failed: the kinds an outcome record, a dead letter and mcp-server's errors
//! name, and which of them another attempt may cure.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A failure's kind, written as its snake_case name (`tool_error`, `invalid_field`, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The message is larger than the worker accepts.
    TooLarge,
    /// The message is not UTF-8.
    NotUtf8,
    /// The message is not JSON.
    MalformedJson,
    /// A required field of the envelope or its payload is missing.
    MissingField,
    /// A field has the wrong type or value.
    InvalidField,
    /// `jobType` names no job type.
    UnknownJobType,
    /// A job names a server its `mcpServers` does not describe.
    UnknownServer,
    /// mcp-server's policy or the config forbids it.
    Refused,
    /// The upstream could not be started, reached, or kept alive.
    UpstreamUnavailable,
    /// The upstream did not answer within the deadline.
    UpstreamTimeout,
    /// The upstream answered with a protocol error, or speaks no revision we do.
    UpstreamRejected,
    /// The tool ran and reported an error (`isError`).
    ToolError,
    /// The job's attempt ran out of its time.
    JobTimeout,
    /// A delayed job could not be moved to the delayed topic.
    DelayRefused,
    /// Delivered too often without an outcome (a message that crashes its worker).
    MaxDeliveries,
    /// A durable task its client cancelled: not run, or stopped while it ran. Not a
    /// fault, so never dead-lettered.
    Cancelled,
    /// A kind this version does not know (an mcp-server of another version may name
    /// one): kept as written, never retried.
    Other(String),
}

/// Every named kind with its wire name; [`FailureKind::Other`] aside.
const NAMES: [(FailureKind, &str); 16] = [
    (FailureKind::TooLarge, "too_large"),
    (FailureKind::NotUtf8, "not_utf8"),
    (FailureKind::MalformedJson, "malformed_json"),
    (FailureKind::MissingField, "missing_field"),
    (FailureKind::InvalidField, "invalid_field"),
    (FailureKind::UnknownJobType, "unknown_job_type"),
    (FailureKind::UnknownServer, "unknown_server"),
    (FailureKind::Refused, "refused"),
    (FailureKind::UpstreamUnavailable, "upstream_unavailable"),
    (FailureKind::UpstreamTimeout, "upstream_timeout"),
    (FailureKind::UpstreamRejected, "upstream_rejected"),
    (FailureKind::ToolError, "tool_error"),
    (FailureKind::JobTimeout, "job_timeout"),
    (FailureKind::DelayRefused, "delay_refused"),
    (FailureKind::MaxDeliveries, "max_deliveries"),
    (FailureKind::Cancelled, "cancelled"),
];

impl FailureKind {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(name) => name,
            named => named.label(),
        }
    }

    /// The name as a metric label or a statistics key: every [`FailureKind::Other`] is
    /// `other`, so the values stay few whatever an upstream names.
    pub fn label(&self) -> &'static str {
        NAMES
            .iter()
            .find(|(kind, _)| kind == self)
            .map_or("other", |(_, name)| name)
    }

    /// The kind a name stands for; an unknown name is [`FailureKind::Other`].
    pub fn parse(name: &str) -> Self {
        NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map_or_else(|| Self::Other(name.to_owned()), |(kind, _)| kind.clone())
    }

    /// The wire name of every kind but [`FailureKind::Other`].
    pub fn names() -> impl Iterator<Item = &'static str> {
        NAMES.into_iter().map(|(_, name)| name)
    }

    /// Whether another attempt may cure it: the tool's own error, an upstream that was
    /// away or slow, an attempt out of time. Everything else (an invalid job, a refused
    /// config, an upstream rejecting the request) fails the same way every time.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            Self::ToolError | Self::UpstreamUnavailable | Self::UpstreamTimeout | Self::JobTimeout
        )
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for FailureKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FailureKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for (kind, name) in &NAMES {
            assert_eq!(kind.as_str(), *name);
            assert_eq!(FailureKind::parse(name), *kind);
            let json = serde_json::to_string(kind).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<FailureKind>(&json).unwrap(), *kind);
        }
        let other = FailureKind::parse("jsonrpc_-32603");
        assert_eq!(other, FailureKind::Other("jsonrpc_-32603".into()));
        assert_eq!(other.as_str(), "jsonrpc_-32603");
        assert!(!other.is_retriable());
    }

    #[test]
    fn only_what_another_attempt_may_cure_is_retried() {
        let retried: Vec<&str> = NAMES
            .iter()
            .filter(|(kind, _)| kind.is_retriable())
            .map(|(_, name)| *name)
            .collect();
        assert_eq!(
            retried,
            [
                "upstream_unavailable",
                "upstream_timeout",
                "tool_error",
                "job_timeout"
            ]
        );
    }
}
