//! Dead letters, read and replayed. Reads are bounded: each partition of the
//! dead-letter topic from the first record at `since` (or its last
//! [`SCAN_PER_PARTITION`] records), never the whole topic. A replay sends each dead
//! letter's original bytes to its source topic with its original key and headers,
//! plus [`HEADER_REPLAY_OF`] naming the dead letter, so its next outcome (which says
//! `replayOf`) can be told apart.

use std::time::Duration;

use chrono::{DateTime, Utc};
use mcp_jobs_worker::replay::{is_carried, HEADER_REPLAY_OF};
use mcp_jobs_worker::topic::{self, ReadError, Reader};
use mcp_jobs_worker::trace_headers;
use mcp_jobs_worker::WorkerSettings;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use serde::Serialize;

/// Records read at most from each partition for one query.
pub const SCAN_PER_PARTITION: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// Reads the slice of `topic` a query looks at: each partition from its first record
/// at `since`, or its last [`SCAN_PER_PARTITION`] records, never more than that many.
/// Returns how many records were read.
pub fn read_recent(
    consumer: &BaseConsumer<Reader>,
    topic: &str,
    since: Option<DateTime<Utc>>,
    each: impl FnMut(&BorrowedMessage<'_>),
) -> Result<usize, ReadError> {
    let starts = match since {
        Some(since) => topic::offsets_at(consumer, topic, since)?,
        None => topic::offsets_before_end(consumer, topic, SCAN_PER_PARTITION)?,
    };
    topic::read_range(consumer, topic, &starts, SCAN_PER_PARTITION, each)
}

/// Which dead letters a query or a replay takes.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `mcp-jobs-error-kind`, e.g. `tool_error`.
    pub kind: Option<String>,
    pub job_id: Option<String>,
    /// Only those written at or after this time (and the scan starts there).
    pub since: Option<DateTime<Utc>>,
}

impl Filter {
    /// How many dead letters a replay of this filter takes: a job's newest one, or
    /// every one of a kind; `None` when it names neither.
    pub fn replay_limit(&self) -> Option<usize> {
        match (&self.job_id, &self.kind) {
            (Some(_), _) => Some(1),
            (None, Some(_)) => Some(usize::MAX),
            (None, None) => None,
        }
    }

    fn matches(&self, letter: &DeadLetter) -> bool {
        self.kind.as_ref().is_none_or(|k| *k == letter.kind)
            && self
                .job_id
                .as_ref()
                .is_none_or(|id| Some(id) == letter.job_id.as_ref())
            && self
                .since
                .is_none_or(|since| letter.at.is_some_and(|at| at >= since))
    }
}

/// One dead letter, as its headers describe it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    #[serde(rename = "jobID")]
    pub job_id: Option<String>,
    pub kind: String,
    pub error: String,
    pub attempts: Option<u32>,
    pub worker: Option<String>,
    /// Where the message was consumed from.
    pub source_topic: Option<String>,
    pub source_partition: Option<i32>,
    pub source_offset: Option<i64>,
    /// Where the dead letter is: `<dlq topic>/<partition>/<offset>`.
    pub dead_letter: String,
    #[serde(skip)]
    pub position: Position,
    /// When it was written.
    pub at: Option<DateTime<Utc>>,
    /// Only the original's first bytes were kept: it cannot be replayed.
    pub truncated: bool,
    /// The original message, as it was consumed.
    #[serde(skip)]
    pub key: Option<Vec<u8>>,
    #[serde(skip)]
    pub payload: Vec<u8>,
    /// The original's own headers (trace context and the producer's).
    #[serde(skip)]
    pub headers: Vec<(String, Vec<u8>)>,
}

impl DeadLetter {
    fn from_record(topic: &str, message: &BorrowedMessage<'_>) -> Self {
        let header = |name: &str| {
            message
                .headers()?
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let own_headers = trace_headers::all_of(message.headers())
            .into_iter()
            .filter(|(name, _)| is_carried(name))
            .collect();
        Self {
            job_id: header("mcp-jobs-job-id"),
            kind: header("mcp-jobs-error-kind").unwrap_or_else(|| "unknown".into()),
            error: header("mcp-jobs-error").unwrap_or_default(),
            attempts: header("mcp-jobs-attempts").and_then(|a| a.parse().ok()),
            worker: header("mcp-jobs-worker"),
            source_topic: header("mcp-jobs-source-topic"),
            source_partition: header("mcp-jobs-source-partition").and_then(|p| p.parse().ok()),
            source_offset: header("mcp-jobs-source-offset").and_then(|o| o.parse().ok()),
            dead_letter: format!("{topic}/{}/{}", message.partition(), message.offset()),
            position: Position {
                partition: message.partition(),
                offset: message.offset(),
            },
            at: message
                .timestamp()
                .to_millis()
                .and_then(DateTime::from_timestamp_millis),
            truncated: header("mcp-jobs-truncated").as_deref() == Some("true"),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers: own_headers,
        }
    }
}

/// A dead letter's place on the dead-letter topic; written `partition:offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.partition, self.offset)
    }
}

impl std::str::FromStr for Position {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parsed = text.trim().split_once(':').and_then(|(partition, offset)| {
            Some(Position {
                partition: partition.parse().ok()?,
                offset: offset.parse().ok()?,
            })
        });
        parsed.ok_or_else(|| format!("{text:?} is not a dead letter's partition:offset"))
    }
}

/// What a query found.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Found {
    /// Matching dead letters, newest first, at most the limit asked for.
    pub dead_letters: Vec<DeadLetter>,
    /// How many matched in the slice read (may be more than returned).
    pub matched: usize,
    /// Records read to answer.
    pub scanned: usize,
}

/// What a replay did.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replayed {
    /// The dead letters sent back (or that would be, for a dry run).
    pub replayed: Vec<String>,
    /// Those that cannot be: dead letter and why.
    pub refused: Vec<(String, String)>,
}

/// The dead-letter topic of a deployment, read and replayed.
pub struct DeadLetters<'a> {
    settings: &'a WorkerSettings,
}

impl<'a> DeadLetters<'a> {
    pub fn new(settings: &'a WorkerSettings) -> Self {
        Self { settings }
    }

    /// The dead letters matching `filter` in the slice a query reads, newest first, at
    /// most `limit`.
    pub fn find(
        &self,
        consumer: &BaseConsumer<Reader>,
        filter: &Filter,
        limit: usize,
    ) -> Result<Found, DeadLetterError> {
        let topic = &self.settings.dlq_topic;
        let mut matching = Vec::new();
        let scanned = read_recent(consumer, topic, filter.since, |m| {
            let letter = DeadLetter::from_record(topic, m);
            if filter.matches(&letter) {
                matching.push(letter);
            }
        })?;
        matching.sort_by_key(|letter| std::cmp::Reverse(letter.at));
        let matched = matching.len();
        matching.truncate(limit);
        Ok(Found {
            dead_letters: matching,
            matched,
            scanned,
        })
    }

    /// The dead letters at `positions` (those that are not there, e.g. deleted by
    /// retention, are left out). Each partition is read from the lowest position asked
    /// for, at most [`SCAN_PER_PARTITION`] records.
    pub fn at(
        &self,
        consumer: &BaseConsumer<Reader>,
        positions: &[Position],
    ) -> Result<Found, DeadLetterError> {
        let topic = &self.settings.dlq_topic;
        let partitions = topic::partition_count(consumer, topic)?;
        // A partition the topic does not have holds nothing (and is not asked for).
        let wanted: std::collections::HashSet<Position> = positions
            .iter()
            .filter(|p| (0..partitions).contains(&p.partition) && p.offset >= 0)
            .copied()
            .collect();
        let mut starts: std::collections::BTreeMap<i32, i64> = Default::default();
        for position in &wanted {
            let start = starts.entry(position.partition).or_insert(position.offset);
            *start = (*start).min(position.offset);
        }
        let span = wanted
            .iter()
            .map(|p| p.offset - starts[&p.partition] + 1)
            .max()
            .unwrap_or(0);
        let per_partition = usize::try_from(span).unwrap_or(0).min(SCAN_PER_PARTITION);
        let starts: Vec<(i32, rdkafka::Offset)> = starts
            .into_iter()
            .map(|(partition, offset)| (partition, rdkafka::Offset::Offset(offset)))
            .collect();
        let mut found = Vec::new();
        let scanned = if per_partition == 0 {
            0
        } else {
            topic::read_range(consumer, topic, &starts, per_partition, |m| {
                let letter = DeadLetter::from_record(topic, m);
                if wanted.contains(&letter.position) {
                    found.push(letter);
                }
            })?
        };
        found.sort_by_key(|letter| std::cmp::Reverse(letter.at));
        Ok(Found {
            matched: found.len(),
            dead_letters: found,
            scanned,
        })
    }

    /// Sends `letters` back to their source topics (none, with `dry_run`). Dead letters
    /// that were cut to fit, or that do not say where they came from, are refused.
    pub async fn replay(
        &self,
        letters: &[DeadLetter],
        dry_run: bool,
    ) -> Result<Replayed, DeadLetterError> {
        let producer: FutureProducer = self
            .settings
            .kafka_config(&[
                ("acks", "all"),
                ("enable.idempotence", "true"),
                ("linger.ms", "0"),
                // The original was accepted by its topic before; let the topic decide.
                ("message.max.bytes", "16777216"),
            ])
            .create()?;
        let mut replayed = Replayed::default();
        for letter in letters {
            let target = match (&letter.source_topic, letter.truncated) {
                (_, true) => Err("only the original's first bytes were kept"),
                (None, _) => Err("it does not name its source topic"),
                (Some(topic), false) => Ok(topic),
            };
            let topic = match target {
                Ok(topic) => topic,
                Err(why) => {
                    replayed
                        .refused
                        .push((letter.dead_letter.clone(), why.to_owned()));
                    continue;
                }
            };
            if !dry_run {
                let headers = letter
                    .headers
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_slice()))
                    .chain([(HEADER_REPLAY_OF, letter.dead_letter.as_bytes())])
                    .fold(OwnedHeaders::new(), |all, (key, value)| {
                        all.insert(Header {
                            key,
                            value: Some(value),
                        })
                    });
                let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
                    .payload(letter.payload.as_slice())
                    .headers(headers);
                if let Some(key) = &letter.key {
                    record = record.key(key.as_slice());
                }
                producer
                    .send(record, Duration::from_secs(30))
                    .await
                    .map_err(|(e, _)| e)?;
            }
            replayed.replayed.push(letter.dead_letter.clone());
        }
        Ok(replayed)
    }
}
