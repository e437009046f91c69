//! The delayed jobs waiting for their time, as the active dispatcher holds them: an
//! index (jobID → when it is due and where its record is), never the jobs themselves,
//! so memory grows with the number of waiting jobs, not their size. A jobID is held as
//! 128 bits of its SHA-256, not as text (up to 256 characters). Due records are read
//! back by offset ([`fetch`]) when they are sent.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use sha2::{Digest, Sha256};

use mcp_jobs_contract::headers::{DelayedMeta, SENT_OFFSET};
use mcp_jobs_kafka::follow;
use mcp_jobs_kafka::headers::header;
use mcp_jobs_kafka::topic::Reader;

/// Where a waiting job's record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

/// One record of the delayed topic, as the index takes it: a job's copy, or a tombstone
/// (which may name the copy it ends, [`SENT_OFFSET`]).
pub(crate) struct DelayedRecord<'m> {
    pub job_id: &'m str,
    pub at: Position,
    pub meta: DelayedMeta,
    pub sent_offset: Option<i64>,
    /// The job's size; `None` for a tombstone.
    pub bytes: Option<usize>,
}

impl<'m> DelayedRecord<'m> {
    /// `None` for a record without a UTF-8 jobID key (no worker writes one).
    pub fn of<M: Message>(message: &'m M) -> Option<Self> {
        let job_id = message.key().and_then(|k| std::str::from_utf8(k).ok())?;
        Some(Self {
            job_id,
            at: Position {
                partition: message.partition(),
                offset: message.offset(),
            },
            meta: DelayedMeta::from_headers(|name| header(message.headers(), name)),
            sent_offset: header(message.headers(), SENT_OFFSET)
                .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok()),
            bytes: message.payload().map(<[u8]>::len),
        })
    }

    /// Takes the record into `waiting`; see [`WaitingJobs::record`] for what it returns.
    pub fn apply(&self, waiting: &mut WaitingJobs) -> Option<Position> {
        let due_ms = self.meta.due_at_ms;
        let tombstone = self.bytes.is_none();
        waiting.record(self.job_id, self.at, due_ms, self.sent_offset, tombstone)
    }
}

/// A jobID's first 128 bits of SHA-256: a collision is out of reach.
type JobKey = u128;

fn job_key(job_id: &str) -> JobKey {
    let digest = Sha256::digest(job_id.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(first)
}

#[derive(Default)]
pub struct WaitingJobs {
    by_id: HashMap<JobKey, (i64, Position)>,
    /// (due in ms since the epoch, position): the order they are sent in.
    by_due: BTreeSet<(i64, Position)>,
}

impl follow::View for WaitingJobs {
    fn apply(&mut self, message: &rdkafka::message::BorrowedMessage<'_>) {
        if let Some(record) = DelayedRecord::of(message) {
            record.apply(self);
        }
    }
}

impl WaitingJobs {
    /// Takes in one record of the delayed topic: a job (its newest copy wins) or a
    /// tombstone, which forgets the copy it names. Returns a newer copy of the job
    /// that the tombstone follows: compaction would remove it, so it must be written
    /// again.
    pub fn record(
        &mut self,
        job_id: &str,
        at: Position,
        due_ms: Option<i64>,
        tombstone_of: Option<i64>,
        is_tombstone: bool,
    ) -> Option<Position> {
        let key = job_key(job_id);
        if is_tombstone {
            let sent = tombstone_of.unwrap_or(at.offset);
            let (_, held) = *self.by_id.get(&key)?;
            if held.partition != at.partition {
                return None;
            }
            if held.offset <= sent {
                self.remove(key);
                return None;
            }
            return (held.offset < at.offset).then_some(held);
        }
        self.remove(key);
        // A record without a due time (not written by a worker) goes out at once.
        let due = due_ms.unwrap_or(0);
        self.by_id.insert(key, (due, at));
        self.by_due.insert((due, at));
        None
    }

    /// Forgets `job_id` if its waiting copy is the one at `at` (it was sent).
    pub fn sent(&mut self, job_id: &str, at: Position) {
        let key = job_key(job_id);
        if self.by_id.get(&key).is_some_and(|(_, p)| *p == at) {
            self.remove(key);
        }
    }

    /// Forgets a position whose record could not be read back (compacted away).
    pub fn drop_position(&mut self, due: i64, at: Position) {
        self.by_due.remove(&(due, at));
        self.by_id.retain(|_, (_, p)| *p != at);
    }

    fn remove(&mut self, key: JobKey) {
        if let Some((due, position)) = self.by_id.remove(&key) {
            self.by_due.remove(&(due, position));
        }
    }

    /// When job `job_id` is due and where its waiting copy is, if it waits.
    pub fn position_of(&self, job_id: &str) -> Option<(i64, Position)> {
        self.by_id.get(&job_key(job_id)).copied()
    }

    /// Whether the copy at `at` is still the one waiting for its job.
    pub fn holds(&self, at: Position) -> bool {
        self.by_due.iter().any(|(_, held)| *held == at)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// When the next job is due, in ms since the epoch.
    pub fn next_due(&self) -> Option<i64> {
        self.by_due.first().map(|(due, _)| *due)
    }

    /// Up to `limit` jobs due at `now_ms`, earliest first.
    pub fn due(&self, now_ms: i64, limit: usize) -> Vec<(i64, Position)> {
        self.by_due
            .iter()
            .take_while(|(due, _)| *due <= now_ms)
            .take(limit)
            .copied()
            .collect()
    }
}

/// Wanted offsets this far apart are reached by a seek rather than read through.
const SEEK_GAP: i64 = 500;

/// What [`fetch`] read back.
#[derive(Default)]
pub struct Fetched {
    pub found: HashMap<Position, OwnedMessage>,
    /// Positions a later record of their partition was read past: they are gone.
    pub gone: Vec<Position>,
}

/// Reads the records at `positions` of `topic` with `consumer` (outside any group),
/// every partition at once, for at most `timeout`. A position neither found nor gone
/// (its partition ended first, or time ran out) is for the caller to try again.
pub fn fetch(
    consumer: &BaseConsumer<Reader>,
    topic: &str,
    positions: &[Position],
    timeout: Duration,
) -> Result<Fetched, KafkaError> {
    // Per partition: the wanted offsets, in order, and how many are behind us.
    let mut wanted: HashMap<i32, (Vec<i64>, usize)> = HashMap::new();
    for position in positions {
        wanted
            .entry(position.partition)
            .or_default()
            .0
            .push(position.offset);
    }
    let mut fetched = Fetched::default();
    let mut assignment = TopicPartitionList::new();
    for (partition, (offsets, next)) in &mut wanted {
        offsets.sort_unstable();
        offsets.dedup();
        // Below the partition's start (deleted by retention or by hand): gone.
        let (low, _) = consumer.fetch_watermarks(topic, *partition, Duration::from_secs(5))?;
        while *next < offsets.len() && offsets[*next] < low {
            fetched.gone.push(Position {
                partition: *partition,
                offset: offsets[*next],
            });
            *next += 1;
        }
        if let Some(&first) = offsets.get(*next) {
            assignment.add_partition_offset(topic, *partition, Offset::Offset(first))?;
        }
    }
    wanted.retain(|_, (offsets, next)| *next < offsets.len());
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + timeout;
    let mut open = wanted.len();
    while open > 0 {
        if Instant::now() > deadline {
            break;
        }
        let (partition, offset, message) = match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => (message.partition(), message.offset(), Some(message)),
            // The end of a partition, before what is wanted there: not read this time.
            Some(Err(KafkaError::PartitionEOF(partition))) => (partition, 0, None),
            Some(Err(e)) => {
                tracing::debug!(error = %e, "reading delayed jobs back");
                continue;
            }
            None => continue,
        };
        let Some((offsets, next)) = wanted.get_mut(&partition) else {
            continue;
        };
        if *next >= offsets.len() {
            continue;
        }
        if message.is_none() {
            *next = offsets.len();
            open -= 1;
            continue;
        }
        while *next < offsets.len() && offsets[*next] < offset {
            fetched.gone.push(Position {
                partition,
                offset: offsets[*next],
            });
            *next += 1;
        }
        if let Some(message) = message.filter(|_| offsets.get(*next) == Some(&offset)) {
            fetched
                .found
                .insert(Position { partition, offset }, message.detach());
            *next += 1;
        }
        match offsets.get(*next) {
            None => open -= 1,
            Some(&target) if target - offset > SEEK_GAP => {
                let seek = Offset::Offset(target);
                if let Err(e) = consumer.seek(topic, partition, seek, Duration::from_secs(5)) {
                    // Reading on gets there too, only slower.
                    tracing::debug!(error = %e, partition, target, "seeking ahead");
                }
            }
            Some(_) => {}
        }
    }
    Ok(fetched)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(partition: i32, offset: i64) -> Position {
        Position { partition, offset }
    }

    #[test]
    fn newest_copy_wins_and_tombstones_forget_only_what_was_sent() {
        let mut waiting = WaitingJobs::default();
        waiting.record("a", at(0, 1), Some(2_000), None, false);
        waiting.record("b", at(1, 1), Some(1_000), None, false);
        waiting.record("a", at(0, 5), Some(3_000), None, false);
        assert_eq!(waiting.len(), 2);
        assert_eq!(waiting.next_due(), Some(1_000));
        assert_eq!(waiting.due(2_500, 10), [(1_000, at(1, 1))]);
        // The tombstone of a's first copy leaves the newer one waiting, and says that
        // it must be written again (compaction would remove it).
        assert_eq!(
            waiting.record("a", at(0, 9), None, Some(1), true),
            Some(at(0, 5))
        );
        assert_eq!(waiting.len(), 2);
        waiting.sent("b", at(1, 1));
        assert_eq!(waiting.due(10_000, 10), [(3_000, at(0, 5))]);
        waiting.record("a", at(0, 10), None, Some(5), true);
        assert!(waiting.is_empty());
        assert_eq!(waiting.next_due(), None);
    }
}
