//! Dead letters, read and replayed. Reads are bounded: each partition of the
//! dead-letter topic from the first record at `since` (or its last
//! [`SCAN_PER_PARTITION`] records), never the whole topic. A replay sends each dead
//! letter's original bytes to its source topic with its original key and headers,
//! plus [`headers::REPLAY_OF`] naming the dead letter, so its next outcome (which says
//! `replayOf`) can be told apart, and marks the dead letter replayed in the console's
//! [`Ledger`]: a replay of a kind leaves marked ones out unless asked.
//!
//! What people see of a dead letter (its message, its headers, its error) is redacted
//! here, once, with [`mcp_jobs_contract::redact_record`]: the pages, the API and the
//! CLI all show [`DeadLetter`]'s redacted fields; only a replay uses the raw bytes.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mcp_jobs_contract::headers::{self, is_carried, DeadLetterMeta};
use mcp_jobs_contract::redact_record;
use mcp_jobs_kafka::headers::{all_of, owned};
use mcp_jobs_kafka::topic::{self, ReadError, Reader};
use mcp_jobs_kafka::KafkaSettings;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::BorrowedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ledger::{Ledger, ReplayMark, ResolvedMark};

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

/// A `since` as every filter takes it (the pages, the API, the CLI): an RFC 3339
/// time, or a duration back from now (`30m`, `2h`, `7d`, `1h 30m`); empty for none.
pub fn parse_since(text: &str) -> Result<Option<DateTime<Utc>>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    humantime::parse_duration(text)
        .ok()
        .and_then(|ago| chrono::Duration::from_std(ago).ok())
        .and_then(|ago| Utc::now().checked_sub_signed(ago))
        .map(Some)
        .ok_or_else(|| {
            format!("since: {text:?} is neither a duration (30m, 2h, 7d) nor an RFC 3339 time")
        })
}

/// Which dead letters a query or a replay takes.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Its [`headers::ERROR_KIND`], e.g. `tool_error`.
    pub kind: Option<String>,
    pub job_id: Option<String>,
    /// Only those written at or after this time (and the scan starts there).
    pub since: Option<DateTime<Utc>>,
    /// Leave out dead letters already replayed (what a replay of a kind does unless
    /// asked to include them).
    pub unreplayed_only: bool,
    /// Only those of this group ([`Group::id`]: the same kind and error signature).
    pub group: Option<String>,
    /// Take dead letters resolved without a replay too (the default view leaves them
    /// out).
    pub with_resolved: bool,
}

impl Filter {
    /// How many dead letters a replay of this filter takes: a job's newest one, or
    /// every one of a kind or a group; `None` when it names none of them.
    pub fn replay_limit(&self) -> Option<usize> {
        match (&self.job_id, &self.kind, &self.group) {
            (Some(_), _, _) => Some(1),
            (None, Some(_), _) | (None, None, Some(_)) => Some(usize::MAX),
            (None, None, None) => None,
        }
    }

    fn matches(&self, record: &Record, replayed: Option<&ReplayMark>, resolved: bool) -> bool {
        let header = |name: &str| record.header(name);
        self.kind
            .as_ref()
            .is_none_or(|k| header(headers::ERROR_KIND).as_deref().unwrap_or("unknown") == k)
            && self
                .job_id
                .as_ref()
                .is_none_or(|id| header(headers::JOB_ID).as_ref() == Some(id))
            && self
                .since
                .is_none_or(|since| record.at().is_some_and(|at| at >= since))
            && !(self.unreplayed_only && replayed.is_some())
            && (self.with_resolved || !resolved)
    }

    /// Whether a dead letter of `group` is among those wanted (the rest of the filter
    /// is [`Filter::matches`]).
    fn holds(&self, group: &str) -> bool {
        self.group.as_deref().is_none_or(|id| id == group)
    }
}

/// The group of a dead letter: its kind and the signature of its error, that is the
/// error with what varies from one failure to the next (numbers, quoted values, ids)
/// taken out, so 1,262 timeouts of one server are one group. Named by 16 hex digits
/// of their SHA-256 (the error itself may hold what only the page may show redacted).
pub(crate) fn group_of(record: &Record) -> String {
    let kind = record.header(headers::ERROR_KIND).unwrap_or_default();
    let error = record.header(headers::ERROR).unwrap_or_default();
    let digest = Sha256::digest(format!("{kind}\n{}", signature(&error)).as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// `error` with its varying parts replaced: quoted text by `"…"`, runs of digits by
/// `N`, and words that are mostly hex digits (ids) by `…`.
fn signature(error: &str) -> String {
    let mut out = String::with_capacity(error.len());
    let mut quoted: Option<char> = None;
    let mut previous = ' ';
    for word in error.split_inclusive(char::is_whitespace) {
        let mut plain = String::new();
        for c in word.chars() {
            // A single quote opens a quotation only where a word starts (not in "can't").
            let opens =
                c == '"' || (c == '\'' && (previous.is_whitespace() || "([{:=".contains(previous)));
            previous = c;
            match quoted {
                Some(q) if c == q => {
                    quoted = None;
                    plain.push_str("…\"");
                }
                Some(_) => {}
                None if opens => {
                    quoted = Some(c);
                    plain.push('"');
                }
                None if c.is_ascii_digit() => {
                    if !plain.ends_with('N') {
                        plain.push('N');
                    }
                }
                None => plain.push(c),
            }
        }
        let hex = word.chars().filter(char::is_ascii_hexdigit).count();
        if quoted.is_none() && word.trim().len() >= 12 && hex * 10 >= word.trim().len() * 8 {
            out.push('…');
            out.extend(word.chars().filter(|c| c.is_whitespace()));
        } else {
            out.push_str(&plain);
        }
    }
    out
}

/// Dead letters of one kind and error signature, among those a query read.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// What `group=` filters by.
    pub id: String,
    pub kind: String,
    /// The newest one's error, redacted.
    pub error: String,
    pub count: usize,
    /// How many were not replayed yet.
    pub unreplayed: usize,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
}

/// [`Group`]s as a scan finds them, each with the place of its newest dead letter
/// among those the scan kept (for its error, redacted once per group at the end).
#[derive(Default)]
pub(crate) struct Grouping(HashMap<String, (Group, usize)>);

impl Grouping {
    /// Counts `record` of `group` ([`group_of`]), kept by the scan at `index`.
    pub(crate) fn add(&mut self, group: String, record: &Record, replayed: bool, index: usize) {
        let at = record.at();
        let (group, newest) = self.0.entry(group).or_insert_with_key(|id| {
            let group = Group {
                id: id.clone(),
                kind: record
                    .header(headers::ERROR_KIND)
                    .unwrap_or_else(|| "unknown".into()),
                error: String::new(),
                count: 0,
                unreplayed: 0,
                first_seen: at,
                last_seen: at,
            };
            (group, index)
        });
        group.count += 1;
        group.unreplayed += usize::from(!replayed);
        if let Some(at) = at {
            group.first_seen = Some(group.first_seen.map_or(at, |first| first.min(at)));
        }
        if at > group.last_seen {
            group.last_seen = at;
            *newest = index;
        }
    }

    /// The groups, largest first, each with its newest error as people may see it;
    /// `kept` is what the scan kept, in the order it was added.
    pub(crate) fn groups(self, kept: &[(Record, Option<ReplayMark>)]) -> Vec<Group> {
        let mut groups: Vec<Group> = self
            .0
            .into_values()
            .map(|(mut group, newest)| {
                if let Some((record, _)) = kept.get(newest) {
                    group.error = DeadLetter::new(record.clone(), None).error;
                }
                group
            })
            .collect();
        groups.sort_by(|a, b| b.count.cmp(&a.count).then(b.last_seen.cmp(&a.last_seen)));
        groups
    }
}

/// One dead letter, as its headers describe it; what people see of it is redacted.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    #[serde(rename = "jobID")]
    pub job_id: Option<String>,
    pub kind: String,
    /// Why it failed, with the message's secrets redacted.
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
    /// When, by whom and to where it was replayed, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed: Option<ReplayMark>,
    /// When and by whom it was resolved without a replay, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<ResolvedMark>,
    /// The original message with its secrets redacted, or why it is not shown (it is
    /// not JSON, so where its secrets are cannot be told).
    #[serde(skip)]
    pub shown_message: Result<Value, String>,
    /// The original's own headers, those naming credentials and every secret of the
    /// message redacted.
    #[serde(skip)]
    pub shown_headers: Vec<(String, String)>,
    /// The original's key, as text.
    #[serde(skip)]
    pub shown_key: Option<String>,
    /// The original, as it was consumed: only a replay uses it.
    #[serde(skip)]
    original: Original,
}

/// A dead letter's original record, byte for byte.
#[derive(Debug, Clone, Default)]
struct Original {
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
}

/// A dead-letter record, as read from its topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Record {
    fn read(topic: &str, message: &BorrowedMessage<'_>) -> Self {
        Self {
            topic: topic.to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers: all_of(message.headers()),
        }
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    fn position(&self) -> Position {
        Position {
            partition: self.partition,
            offset: self.offset,
        }
    }

    fn at(&self) -> Option<DateTime<Utc>> {
        self.timestamp_ms.and_then(DateTime::from_timestamp_millis)
    }
}

impl DeadLetter {
    /// The dead letter a record holds, with what people may see of it redacted.
    pub fn new(record: Record, replayed: Option<ReplayMark>) -> Self {
        let own_headers: Vec<(String, Vec<u8>)> = record
            .headers
            .iter()
            .filter(|(name, _)| is_carried(name))
            .cloned()
            .collect();
        let mut shown_headers: Vec<(String, String)> = own_headers
            .iter()
            .map(|(name, value)| (name.clone(), String::from_utf8_lossy(value).into_owned()))
            .collect();
        let (shown_message, secrets) = match serde_json::from_slice::<Value>(&record.payload) {
            Ok(mut message) => {
                let secrets = redact_record(&mut message, &mut shown_headers);
                (Ok(message), secrets)
            }
            Err(e) => {
                let secrets = redact_record(&mut Value::Null, &mut shown_headers);
                let why = format!("{} bytes that are not JSON ({e})", record.payload.len());
                (Err(why), secrets)
            }
        };
        let shown = |text: Option<String>| text.map(|t| secrets.redact(&t).into_owned());
        let meta = DeadLetterMeta::from_headers(|name| record.header(name));
        Self {
            job_id: shown(meta.job_id),
            kind: meta.error_kind.unwrap_or_else(|| "unknown".into()),
            error: shown(meta.error).unwrap_or_default(),
            attempts: meta.attempts,
            worker: meta.worker,
            source_topic: meta.source_topic,
            source_partition: meta.source_partition,
            source_offset: meta.source_offset,
            dead_letter: format!("{}/{}/{}", record.topic, record.partition, record.offset),
            position: record.position(),
            at: record.at(),
            truncated: meta.truncated,
            replayed,
            resolved: None,
            shown_message,
            shown_headers,
            shown_key: shown(
                record
                    .key
                    .as_deref()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
            ),
            original: Original {
                key: record.key,
                payload: record.payload,
                headers: own_headers,
            },
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
    /// All that matched, by kind and error signature, largest group first.
    pub groups: Vec<Group>,
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
    settings: &'a KafkaSettings,
    ledger: &'a Ledger,
}

impl<'a> DeadLetters<'a> {
    pub fn new(settings: &'a KafkaSettings, ledger: &'a Ledger) -> Self {
        Self { settings, ledger }
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
        let mut grouping = Grouping::default();
        let scanned = read_recent(consumer, topic, filter.since, |m| {
            let record = Record::read(topic, m);
            let replayed = self.ledger.replayed(&record.position());
            let resolved = self.ledger.is_resolved(&record.position());
            if filter.matches(&record, replayed.as_ref(), resolved) {
                let group = group_of(&record);
                if filter.holds(&group) {
                    grouping.add(group, &record, replayed.is_some(), matching.len());
                    matching.push((record, replayed));
                }
            }
        })?;
        let groups = grouping.groups(&matching);
        matching.sort_by_key(|(record, _)| std::cmp::Reverse(record.at()));
        let matched = matching.len();
        matching.truncate(limit);
        Ok(Found {
            dead_letters: self.shown(matching),
            matched,
            groups,
            scanned,
        })
    }

    /// Records as people may see them (redaction is the costly part: only for those
    /// returned).
    fn shown(&self, records: Vec<(Record, Option<ReplayMark>)>) -> Vec<DeadLetter> {
        records
            .into_iter()
            .map(|(record, replayed)| {
                let mut letter = DeadLetter::new(record, replayed);
                letter.resolved = self.ledger.resolved(&letter.position);
                letter
            })
            .collect()
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
                let record = Record::read(topic, m);
                if wanted.contains(&record.position()) {
                    let replayed = self.ledger.replayed(&record.position());
                    found.push((record, replayed));
                }
            })?
        };
        found.sort_by_key(|(record, _)| std::cmp::Reverse(record.at()));
        Ok(Found {
            matched: found.len(),
            dead_letters: self.shown(found),
            groups: Vec::new(),
            scanned,
        })
    }

    /// Marks `letters` resolved without a replay, by `who` and for `action`: they leave
    /// the default view. Returns how many; an error stops it (those marked stay so).
    pub async fn resolve(
        &self,
        letters: &[DeadLetter],
        who: &str,
        action: &str,
    ) -> Result<usize, DeadLetterError> {
        for (done, letter) in letters.iter().enumerate() {
            let mark = ResolvedMark {
                at: Utc::now(),
                by: who.to_owned(),
                action: Some(action.to_owned()),
            };
            if let Err(e) = self.ledger.mark_resolved(letter.position, mark).await {
                tracing::error!(resolved = done, error = %e, "console: resolving dead letters stopped");
                return Err(e.into());
            }
        }
        Ok(letters.len())
    }

    /// Sends `letters` back to their source topics (none, with `dry_run`) and marks
    /// each replayed, by `who` and for `action` (a form's token) if one. Dead letters
    /// that were cut to fit, that do not say where they came from, or that were
    /// replayed already (unless `again`) are refused.
    pub async fn replay(
        &self,
        letters: &[DeadLetter],
        replay: &Replay<'_>,
    ) -> Result<Replayed, DeadLetterError> {
        let producer: FutureProducer = self
            .settings
            .producer_config(&[
                ("acks", "all"),
                ("enable.idempotence", "true"),
                ("linger.ms", "0"),
                // The original was accepted by its topic before; let the topic decide.
                ("message.max.bytes", "16777216"),
            ])
            .create()?;
        let mut replayed = Replayed::default();
        for letter in letters {
            let earlier = self.ledger.replayed(&letter.position);
            let target = match (&letter.source_topic, letter.truncated, earlier) {
                (_, true, _) => Err("only the original's first bytes were kept".to_owned()),
                (None, _, _) => Err("it does not name its source topic".to_owned()),
                (Some(_), false, Some(mark)) if !replay.again => Err(format!(
                    "replayed already, at {} by {} (to {})",
                    mark.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    mark.by,
                    mark.to
                )),
                (Some(topic), false, _) => Ok(topic),
            };
            let topic = match target {
                Ok(topic) => topic,
                Err(why) => {
                    replayed.refused.push((letter.dead_letter.clone(), why));
                    continue;
                }
            };
            if !replay.dry_run {
                let original = &letter.original;
                let headers = original
                    .headers
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_slice()))
                    .chain([(headers::REPLAY_OF, letter.dead_letter.as_bytes())]);
                let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
                    .payload(original.payload.as_slice())
                    .headers(owned(headers));
                if let Some(key) = &original.key {
                    record = record.key(key.as_slice());
                }
                let delivered = producer
                    .send(record, Duration::from_secs(30))
                    .await
                    .map_err(|(e, _)| e)?;
                let mark = ReplayMark {
                    at: Utc::now(),
                    by: replay.who.to_owned(),
                    to: format!("{topic}/{}/{}", delivered.partition, delivered.offset),
                    action: replay.action.map(str::to_owned),
                };
                self.ledger.mark_replayed(letter.position, mark).await?;
            }
            replayed.replayed.push(letter.dead_letter.clone());
        }
        Ok(replayed)
    }
}

/// How a replay is done.
#[derive(Debug, Clone, Copy, Default)]
pub struct Replay<'a> {
    /// Who asks: `key #N`, or `cli`.
    pub who: &'a str,
    /// Send nothing, say what would be sent.
    pub dry_run: bool,
    /// Replay dead letters replayed before too.
    pub again: bool,
    /// The form token of the console action doing it, if one.
    pub action: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::signature;

    #[test]
    fn what_varies_between_failures_leaves_the_signature() {
        let timeout = |server: &str, ms: u32, attempt: u32| {
            signature(&format!(
                "upstream_timeout: server \"{server}\" did not answer within {ms} ms (attempt {attempt})"
            ))
        };
        assert_eq!(timeout("slow", 30_000, 3), timeout("fast", 1_500, 1));
        assert_eq!(
            timeout("slow", 30_000, 3),
            "upstream_timeout: server \"…\" did not answer within N ms (attempt N)"
        );
        assert_ne!(
            timeout("slow", 30_000, 3),
            signature("upstream_unavailable: server \"slow\" refused the connection")
        );
        assert_eq!(
            signature("job 3f2a9c0b1d4e5f6071829304 failed"),
            signature("job 0123456789abcdef01234567 failed")
        );
        assert_eq!(signature("no digits, no quotes"), "no digits, no quotes");
        assert_ne!(
            signature("couldn't connect to the server"),
            signature("couldn't parse the answer")
        );
        assert_eq!(
            signature("tool 'echo' failed"),
            signature("tool 'add' failed")
        );
    }
}
