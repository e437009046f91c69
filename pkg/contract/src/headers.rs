//! The Kafka headers mcp-jobs writes beside its messages: every name in one place, and a
//! dead letter's and a delayed job's metadata as types that one side writes and the
//! other reads, so the two sides cannot drift apart.

/// Every header of ours starts so; a message's own headers are the others.
pub const OWN_PREFIX: &str = "mcp-jobs-";

/// The job's id, on a dead letter.
pub const JOB_ID: &str = "mcp-jobs-job-id";
/// The failure kind (`tool_error`, `invalid_field`, …), on a dead letter.
pub const ERROR_KIND: &str = "mcp-jobs-error-kind";
/// The failure's first line, on a dead letter.
pub const ERROR: &str = "mcp-jobs-error";
/// How many attempts ran, on a dead letter.
pub const ATTEMPTS: &str = "mcp-jobs-attempts";
/// The worker that gave up, on a dead letter.
pub const WORKER: &str = "mcp-jobs-worker";
/// Where the dead-lettered message was consumed: topic, partition, offset.
pub const SOURCE_TOPIC: &str = "mcp-jobs-source-topic";
pub const SOURCE_PARTITION: &str = "mcp-jobs-source-partition";
pub const SOURCE_OFFSET: &str = "mcp-jobs-source-offset";
/// `true` on a dead letter whose message was cut to fit; with the original's size and
/// SHA-256.
pub const TRUNCATED: &str = "mcp-jobs-truncated";
pub const ORIGINAL_BYTES: &str = "mcp-jobs-original-bytes";
pub const ORIGINAL_SHA256: &str = "mcp-jobs-original-sha256";
/// Set on a replayed message: the dead letter it came from, `<dlq topic>/<partition>/<offset>`.
pub const REPLAY_OF: &str = "mcp-jobs-replay-of";
/// When a delayed job is due, in milliseconds since the Unix epoch.
pub const DUE_AT: &str = "mcp-jobs-due-at";
/// A delayed job's own record key, restored when it goes back (absent: it had none).
pub const ORIGINAL_KEY: &str = "mcp-jobs-original-key";
/// Where a delayed job was first consumed: `topic/partition/offset`.
pub const DELAYED_FROM: &str = "mcp-jobs-delayed-from";
/// Set by the dispatcher on what it publishes when due (delayed jobs, occurrences): a
/// worker whose clock runs behind never sends such a job back to wait again.
pub const RELEASED: &str = "mcp-jobs-released";
/// On a tombstone the dispatcher writes: the offset of the record it sent, so that only
/// that record is forgotten (a newer copy of the job may already wait behind it).
pub const SENT_OFFSET: &str = "mcp-jobs-sent-offset";
/// On a job that is a durable MCP task (its jobID is the task id): the worker reports
/// where the job is on the tasks topic.
pub const TASK: &str = "mcp-jobs-task";

/// Whether a message's header `name` is its own (kept on its dead letter and restored by
/// a replay), not one mcp-jobs sets.
pub fn is_carried(name: &str) -> bool {
    !name.starts_with(OWN_PREFIX)
}

/// What a dead letter's headers say: why its message failed and where it came from.
/// Every field is optional on reading, as dead letters written by hand or by an older
/// worker may lack some.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterMeta {
    pub job_id: Option<String>,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub attempts: Option<u32>,
    pub worker: Option<String>,
    pub source_topic: Option<String>,
    pub source_partition: Option<i32>,
    pub source_offset: Option<i64>,
    pub truncated: bool,
}

impl DeadLetterMeta {
    /// The headers that carry it (truncation's are written with the cut itself).
    pub fn to_headers(&self) -> Vec<(&'static str, String)> {
        let texts = [
            (JOB_ID, self.job_id.clone()),
            (ERROR_KIND, self.error_kind.clone()),
            (ERROR, self.error.clone()),
            (ATTEMPTS, self.attempts.map(|n| n.to_string())),
            (WORKER, self.worker.clone()),
            (SOURCE_TOPIC, self.source_topic.clone()),
            (
                SOURCE_PARTITION,
                self.source_partition.map(|p| p.to_string()),
            ),
            (SOURCE_OFFSET, self.source_offset.map(|o| o.to_string())),
            (TRUNCATED, self.truncated.then(|| "true".to_owned())),
        ];
        texts
            .into_iter()
            .filter_map(|(name, value)| value.map(|value| (name, value)))
            .collect()
    }

    /// Reads it through `header`, which gives a header's value by name.
    pub fn from_headers(header: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            job_id: header(JOB_ID),
            error_kind: header(ERROR_KIND),
            error: header(ERROR),
            attempts: header(ATTEMPTS).and_then(|n| n.parse().ok()),
            worker: header(WORKER),
            source_topic: header(SOURCE_TOPIC),
            source_partition: header(SOURCE_PARTITION).and_then(|p| p.parse().ok()),
            source_offset: header(SOURCE_OFFSET).and_then(|o| o.parse().ok()),
            truncated: header(TRUNCATED).as_deref() == Some("true"),
        }
    }
}

/// The dead letter a replayed message replays, from its headers.
pub fn replay_of(headers: &[(String, Vec<u8>)]) -> Option<String> {
    headers
        .iter()
        .find(|(name, _)| name == REPLAY_OF)
        .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
}

/// What a delayed job's record says beside the job: when it is due, where it was first
/// consumed, and its own key (its record on the delayed topic is keyed by jobID).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DelayedMeta {
    /// Milliseconds since the Unix epoch; `None` on a record not written by a worker,
    /// which the dispatcher sends on at once.
    pub due_at_ms: Option<i64>,
    /// `topic/partition/offset`.
    pub delayed_from: Option<String>,
    pub original_key: Option<Vec<u8>>,
}

impl DelayedMeta {
    /// The headers that carry it.
    pub fn to_headers(&self) -> Vec<(&'static str, Vec<u8>)> {
        let values = [
            (DUE_AT, self.due_at_ms.map(|ms| ms.to_string().into_bytes())),
            (
                DELAYED_FROM,
                self.delayed_from.clone().map(String::into_bytes),
            ),
            (ORIGINAL_KEY, self.original_key.clone()),
        ];
        values
            .into_iter()
            .filter_map(|(name, value)| value.map(|value| (name, value)))
            .collect()
    }

    /// Reads it through `header`, which gives a header's value by name.
    pub fn from_headers<'a>(header: impl Fn(&str) -> Option<&'a [u8]>) -> Self {
        let text = |name| header(name).and_then(|v| std::str::from_utf8(v).ok());
        Self {
            due_at_ms: text(DUE_AT).and_then(|ms| ms.parse().ok()),
            delayed_from: text(DELAYED_FROM).map(str::to_owned),
            original_key: header(ORIGINAL_KEY).map(<[u8]>::to_vec),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_back(meta: &DeadLetterMeta) -> DeadLetterMeta {
        let headers = meta.to_headers();
        DeadLetterMeta::from_headers(|name| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn dead_letter_metadata_round_trips_through_headers() {
        let full = DeadLetterMeta {
            job_id: Some("job-1".into()),
            error_kind: Some("tool_error".into()),
            error: Some("boom".into()),
            attempts: Some(3),
            worker: Some("w-1".into()),
            source_topic: Some("jobs".into()),
            source_partition: Some(2),
            source_offset: Some(41),
            truncated: true,
        };
        assert_eq!(read_back(&full), full);
        let empty = DeadLetterMeta::default();
        assert!(empty.to_headers().is_empty());
        assert_eq!(read_back(&empty), empty);
    }

    #[test]
    fn numbers_that_do_not_parse_read_as_absent() {
        let meta = DeadLetterMeta::from_headers(|name| {
            (name == ATTEMPTS || name == SOURCE_OFFSET).then(|| "many".to_owned())
        });
        assert_eq!(meta, DeadLetterMeta::default());
    }

    #[test]
    fn delayed_metadata_round_trips_through_headers() {
        let meta = DelayedMeta {
            due_at_ms: Some(1_800_000_000_000),
            delayed_from: Some("jobs/1/42".into()),
            original_key: Some(vec![0xff, b'k']),
        };
        let headers = meta.to_headers();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_slice())
        };
        assert_eq!(DelayedMeta::from_headers(header), meta);
        assert!(DelayedMeta::default().to_headers().is_empty());
        let unreadable =
            DelayedMeta::from_headers(|name| (name == DUE_AT).then_some(b"soon".as_slice()));
        assert_eq!(unreadable, DelayedMeta::default());
    }

    #[test]
    fn a_replay_is_named_by_its_header() {
        let headers = vec![
            ("traceparent".to_owned(), b"00-ab-cd-01".to_vec()),
            (REPLAY_OF.to_owned(), b"jobs.dlq/0/7".to_vec()),
        ];
        assert_eq!(replay_of(&headers).as_deref(), Some("jobs.dlq/0/7"));
        assert_eq!(replay_of(&headers[..1]), None);
    }

    #[test]
    fn our_headers_are_not_carried_and_the_message_s_own_are() {
        assert!(is_carried("traceparent"));
        assert!(is_carried("tenant"));
        for own in [ERROR_KIND, REPLAY_OF, DUE_AT, SENT_OFFSET] {
            assert!(!is_carried(own), "{own}");
        }
    }
}
