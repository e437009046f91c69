//! Redis Streams operations (seed 004) for the stream tools, on names that follow the
//! seed's `service:purpose:stream` convention. Redis' own answers are turned into errors
//! that name the stream or group at fault: a missing stream, a group that already
//! exists, an invalid id.

use std::collections::BTreeMap;

use redis::streams::{StreamInfoGroupsReply, StreamRangeReply};
use redis::{AsyncCommands, RedisError};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::store::{Store, StoreError};

const MAX_SEGMENT_CHARS: usize = 64;
const MAX_GROUP_CHARS: usize = 128;

/// A stream name that follows `service:purpose:stream`: three non-empty segments of
/// letters, digits, `_`, `-` and `.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamName(String);

#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    #[error("invalid stream name {name:?}: {reason} (stream names follow service:purpose:stream, e.g. billing:invoices:events)")]
    InvalidName { name: String, reason: String },
    #[error("invalid group name {group:?}: {reason}")]
    InvalidGroup { group: String, reason: String },
    #[error("the message has no fields: give at least one field and value")]
    EmptyMessage,
    #[error("there is no stream {stream:?}")]
    NoSuchStream { stream: String },
    #[error("stream {stream:?} already has a consumer group {group:?}")]
    GroupExists { stream: String, group: String },
    #[error("invalid stream id: {0}")]
    InvalidId(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StreamsError {
    /// A stable name for the failure, for callers and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidName { .. }
            | Self::InvalidGroup { .. }
            | Self::EmptyMessage
            | Self::InvalidId(_) => "invalid_arguments",
            Self::NoSuchStream { .. } => "no_such_stream",
            Self::GroupExists { .. } => "group_exists",
            Self::Store(StoreError::Unavailable { .. }) => "redis_unavailable",
            Self::Store(StoreError::Command { .. }) => "redis_error",
        }
    }
}

impl StreamName {
    pub fn parse(name: &str) -> Result<Self, StreamsError> {
        let invalid = |reason: String| StreamsError::InvalidName {
            name: name.to_owned(),
            reason,
        };
        let segments: Vec<&str> = name.split(':').collect();
        if segments.len() != 3 {
            return Err(invalid(format!(
                "it has {} segment(s), not 3",
                segments.len()
            )));
        }
        for segment in segments {
            if segment.is_empty() {
                return Err(invalid("a segment is empty".into()));
            }
            if segment.chars().count() > MAX_SEGMENT_CHARS {
                return Err(invalid(format!(
                    "segment {segment:?} is longer than {MAX_SEGMENT_CHARS} characters"
                )));
            }
            if let Some(bad) = segment
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
            {
                return Err(invalid(format!(
                    "{bad:?} is not allowed (letters, digits, _ - . only)"
                )));
            }
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One stream entry; field values are the strings stored.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: String,
    pub fields: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupInfo {
    pub name: String,
    pub consumers: usize,
    pub pending: usize,
    pub last_delivered_id: String,
    /// Entries not yet delivered to the group (Redis 7+).
    pub lag: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StreamSummary {
    pub name: String,
    pub length: usize,
}

#[derive(Clone)]
pub struct Streams {
    store: Store,
}

impl Streams {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Appends an entry; string values are stored as they are, others as JSON text.
    /// Returns the entry's id.
    pub async fn add(
        &self,
        stream: &StreamName,
        fields: &Map<String, Value>,
    ) -> Result<String, StreamsError> {
        if fields.is_empty() {
            return Err(StreamsError::EmptyMessage);
        }
        let items: Vec<(&str, String)> = fields
            .iter()
            .map(|(field, value)| {
                let text = match value {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                (field.as_str(), text)
            })
            .collect();
        self.store
            .connection()
            .xadd(stream.as_str(), "*", &items)
            .await
            .map_err(|e| self.classify(e, stream, None))
    }

    /// Entries from `start` to `end` (ids, or `-` and `+`), at most `count`.
    pub async fn range(
        &self,
        stream: &StreamName,
        start: &str,
        end: &str,
        count: usize,
    ) -> Result<Vec<Entry>, StreamsError> {
        let mut connection = self.store.connection();
        // XRANGE on a missing stream answers an empty list: ask first, to say so.
        let exists: bool = connection
            .exists(stream.as_str())
            .await
            .map_err(|e| self.store.error(e))?;
        if !exists {
            return Err(self.no_such_stream(stream));
        }
        let reply: StreamRangeReply = connection
            .xrange_count(stream.as_str(), start, end, count)
            .await
            .map_err(|e| self.classify(e, stream, None))?;
        Ok(reply
            .ids
            .into_iter()
            .map(|entry| Entry {
                id: entry.id,
                fields: entry
                    .map
                    .into_iter()
                    .map(|(field, value)| {
                        let text = redis::from_redis_value::<String>(value)
                            .unwrap_or_else(|e| format!("(unreadable: {e})"));
                        (field, text)
                    })
                    .collect(),
            })
            .collect())
    }

    /// Creates consumer group `group` reading from `start` (`$`: only new entries,
    /// `0`: everything); with `create_stream`, an absent stream is created empty.
    pub async fn create_group(
        &self,
        stream: &StreamName,
        group: &str,
        start: &str,
        create_stream: bool,
    ) -> Result<(), StreamsError> {
        valid_group(group)?;
        let mut connection = self.store.connection();
        let created: Result<(), RedisError> = if create_stream {
            connection
                .xgroup_create_mkstream(stream.as_str(), group, start)
                .await
        } else {
            connection
                .xgroup_create(stream.as_str(), group, start)
                .await
        };
        created.map_err(|e| self.classify(e, stream, Some(group)))
    }

    /// The stream's consumer groups.
    pub async fn groups(&self, stream: &StreamName) -> Result<Vec<GroupInfo>, StreamsError> {
        let reply: StreamInfoGroupsReply = self
            .store
            .connection()
            .xinfo_groups(stream.as_str())
            .await
            .map_err(|e| self.classify(e, stream, None))?;
        Ok(reply
            .groups
            .into_iter()
            .map(|group| GroupInfo {
                name: group.name,
                consumers: group.consumers,
                pending: group.pending,
                last_delivered_id: group.last_delivered_id,
                lag: group.lag,
            })
            .collect())
    }

    /// Streams whose names match `pattern` (Redis glob, e.g. `billing:*`), at most
    /// `limit`, by name, with their lengths.
    pub async fn list(
        &self,
        pattern: &str,
        limit: usize,
    ) -> Result<Vec<StreamSummary>, StreamsError> {
        let mut connection = self.store.connection();
        let mut names = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(500)
                .arg("TYPE")
                .arg("stream")
                .query_async(&mut connection)
                .await
                .map_err(|e| self.store.error(e))?;
            names.extend(batch);
            cursor = next;
            if cursor == 0 || names.len() >= limit {
                break;
            }
        }
        names.sort();
        names.dedup();
        names.truncate(limit);
        let mut lengths = redis::pipe();
        for name in &names {
            lengths.xlen(name);
        }
        let lengths: Vec<usize> = lengths
            .query_async(&mut connection)
            .await
            .map_err(|e| self.store.error(e))?;
        Ok(names
            .into_iter()
            .zip(lengths)
            .map(|(name, length)| StreamSummary { name, length })
            .collect())
    }

    fn no_such_stream(&self, stream: &StreamName) -> StreamsError {
        StreamsError::NoSuchStream {
            stream: stream.as_str().to_owned(),
        }
    }

    /// Turns Redis' refusals about this stream or group into errors that name them.
    fn classify(
        &self,
        error: RedisError,
        stream: &StreamName,
        group: Option<&str>,
    ) -> StreamsError {
        let detail = error.detail().unwrap_or_default().to_ascii_lowercase();
        match (error.code(), group) {
            (Some("BUSYGROUP"), Some(group)) => StreamsError::GroupExists {
                stream: stream.as_str().to_owned(),
                group: group.to_owned(),
            },
            (Some("ERR"), _)
                if detail.contains("no such key")
                    || detail.contains("requires the key to exist") =>
            {
                self.no_such_stream(stream)
            }
            (Some("ERR"), _) if detail.contains("invalid stream id") => {
                StreamsError::InvalidId(error.detail().unwrap_or_default().to_owned())
            }
            _ => self.store.error(error).into(),
        }
    }
}

fn valid_group(group: &str) -> Result<(), StreamsError> {
    let invalid = |reason: &str| StreamsError::InvalidGroup {
        group: group.to_owned(),
        reason: reason.to_owned(),
    };
    if group.trim().is_empty() {
        return Err(invalid("it is empty"));
    }
    if group.chars().count() > MAX_GROUP_CHARS {
        return Err(invalid("it is longer than 128 characters"));
    }
    if group.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("it contains whitespace or control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_service_purpose_stream() {
        assert!(StreamName::parse("billing:invoices:events").is_ok());
        assert!(StreamName::parse("a-b:c_d:e.f").is_ok());
        for bad in [
            "",
            "billing",
            "billing:invoices",
            "a:b:c:d",
            "a::c",
            "a:b:c d",
            "a:b:ç",
        ] {
            let error = StreamName::parse(bad).expect_err(bad);
            assert!(
                error.to_string().contains("service:purpose:stream"),
                "{error}"
            );
        }
    }

    #[test]
    fn group_names_are_checked() {
        assert!(valid_group("workers").is_ok());
        assert!(valid_group(" ").is_err());
        assert!(valid_group("two words").is_err());
    }
}
