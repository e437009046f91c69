//! What the console remembers beyond the deployment's own topics: which dead letters
//! were replayed (when, by whom, to where) or resolved without a replay, which sessions
//! were ended by logging out, and which action forms were already submitted (so a
//! resubmitted form does nothing twice). It lives on a compacted topic of its own,
//! `KAFKA_CONSOLE_TOPIC` (`<KAFKA_TOPIC>.console`, one partition), so every console
//! replica knows it: each reads the topic from its beginning at start and then follows
//! it on a thread of its own, keeping it in memory. A replica knows its own writes at once and the others' within a poll
//! (half a second). Entries that expire (sessions, used forms: 12 h) are forgotten and
//! tombstoned; replay marks stay as long as the topic does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mcp_jobs_kafka::admin::AdminError;
use mcp_jobs_kafka::topic::{self, ReadError, Reader};
use mcp_jobs_kafka::KafkaSettings;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::dead_letters::Position;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("opening the console's ledger stopped: {0}")]
    Stopped(String),
    #[error(transparent)]
    Admin(#[from] AdminError),
}

/// A dead letter sent back to its source topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayMark {
    pub at: DateTime<Utc>,
    /// Who replayed it: `key #N`, or `cli` for `kafka-worker dlq replay`.
    pub by: String,
    /// Where the replay went: `<topic>/<partition>/<offset>`.
    pub to: String,
    /// The action (a submitted form's token) that replayed it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// A dead letter an operator settled without replaying it: it leaves the default view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedMark {
    pub at: DateTime<Utc>,
    /// Who resolved it: `key #N`.
    pub by: String,
    /// The action (a submitted form's token, or an API request's) that resolved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// An entry that ends: a logged-out session, a submitted form.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Expiring {
    until: DateTime<Utc>,
    /// For a submitted form: the page showing what it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<String>,
}

/// What a form's token says about an earlier submission of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Not submitted before: it is now claimed for this request.
    First,
    /// Submitted before; what it did is at this page.
    Done(String),
    /// Being submitted right now by another request.
    InProgress,
}

#[derive(Default)]
struct State {
    replayed: HashMap<Position, ReplayMark>,
    resolved: HashMap<Position, ResolvedMark>,
    revoked: HashMap<String, Expiring>,
    used: HashMap<String, Expiring>,
}

const REPLAYED: &str = "replayed/";
const RESOLVED: &str = "resolved/";
const REVOKED: &str = "revoked/";
const USED: &str = "used/";

/// Takes a dead letter's mark (a tombstone removes it) into `marks`.
fn set_mark<M: serde::de::DeserializeOwned>(
    marks: &mut HashMap<Position, M>,
    position: &str,
    value: Option<&[u8]>,
) {
    let Ok(position) = position.parse::<Position>() else {
        return;
    };
    match value.and_then(|v| serde_json::from_slice(v).ok()) {
        Some(mark) => marks.insert(position, mark),
        None => marks.remove(&position),
    };
}

/// The marks `action` made, by position.
fn marked_by<M: Clone>(
    marks: &HashMap<Position, M>,
    action: &str,
    action_of: impl Fn(&M) -> Option<&str>,
) -> Vec<(Position, M)> {
    let mut made: Vec<(Position, M)> = marks
        .iter()
        .filter(|(_, mark)| action_of(mark) == Some(action))
        .map(|(position, mark)| (*position, mark.clone()))
        .collect();
    made.sort_by_key(|(position, _)| *position);
    made
}

/// The console's memory, shared by every replica through its topic.
pub struct Ledger {
    topic: String,
    producer: FutureProducer,
    state: Mutex<State>,
}

impl Ledger {
    /// Creates the ledger's topic if it is missing, reads it to its end, and follows
    /// it until `stop`. Blocking: run it off the async workers.
    pub fn open(
        settings: &KafkaSettings,
        stop: CancellationToken,
    ) -> Result<Arc<Self>, LedgerError> {
        let topic = settings.console_topic.clone();
        let producer: FutureProducer = settings.acked_producer_config().create()?;
        let ledger = Arc::new(Self {
            topic,
            producer,
            state: Mutex::default(),
        });
        let consumer = topic::follower(settings, "kafka-worker-console-ledger")?;
        let position = ledger.load(&consumer)?;
        let following = ledger.clone();
        std::thread::spawn(move || following.follow(&consumer, position, &stop));
        Ok(ledger)
    }

    /// Reads the topic to its end; where to follow it from.
    fn load(&self, consumer: &BaseConsumer<Reader>) -> Result<i64, LedgerError> {
        let mut next = 0;
        topic::read_range(
            consumer,
            &self.topic,
            &[(0, Offset::Beginning)],
            usize::MAX,
            |record| {
                self.apply(record.key(), record.payload());
                next = record.offset() + 1;
            },
        )?;
        Ok(next)
    }

    fn follow(&self, consumer: &BaseConsumer<Reader>, from: i64, stop: &CancellationToken) {
        let mut assignment = TopicPartitionList::new();
        let assigned = assignment
            .add_partition_offset(&self.topic, 0, Offset::Offset(from))
            .and_then(|()| consumer.assign(&assignment));
        if let Err(e) = assigned {
            tracing::error!(error = %e, topic = %self.topic, "console: cannot follow its ledger");
            return;
        }
        while !stop.is_cancelled() {
            match consumer.poll(Duration::from_millis(500)) {
                Some(Ok(record)) => self.apply(record.key(), record.payload()),
                Some(Err(KafkaError::PartitionEOF(_))) | None => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, topic = %self.topic, "console: following its ledger");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    /// Takes in one record of the topic (a tombstone removes its entry).
    fn apply(&self, key: Option<&[u8]>, value: Option<&[u8]>) {
        let Some(key) = key.and_then(|k| std::str::from_utf8(k).ok()) else {
            return;
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(position) = key.strip_prefix(REPLAYED) {
            return set_mark(&mut state.replayed, position, value);
        }
        if let Some(position) = key.strip_prefix(RESOLVED) {
            return set_mark(&mut state.resolved, position, value);
        }
        let (map, id) = if let Some(id) = key.strip_prefix(REVOKED) {
            (&mut state.revoked, id)
        } else if let Some(id) = key.strip_prefix(USED) {
            (&mut state.used, id)
        } else {
            return;
        };
        match value.and_then(|v| serde_json::from_slice::<Expiring>(v).ok()) {
            Some(entry) if entry.until > Utc::now() => {
                // A form claimed here and finished elsewhere keeps the finished entry.
                let known = map.get(id).is_some_and(|e| e.result.is_some());
                if !known || entry.result.is_some() {
                    map.insert(id.to_owned(), entry);
                }
            }
            _ => {
                map.remove(id);
            }
        }
    }

    async fn write(&self, key: &str, value: Option<Vec<u8>>) -> Result<(), KafkaError> {
        let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(&self.topic).key(key);
        if let Some(value) = &value {
            record = record.payload(value.as_slice());
        }
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(e, _)| e)
    }

    async fn write_mark(
        &self,
        prefix: &str,
        position: Position,
        mark: &impl Serialize,
    ) -> Result<(), KafkaError> {
        let value = serde_json::to_vec(mark).unwrap_or_default();
        self.write(&format!("{prefix}{position}"), Some(value))
            .await
    }

    fn with_state<T>(&self, read: impl FnOnce(&mut State) -> T) -> T {
        read(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The replay of the dead letter at `position`, if it was replayed.
    pub fn replayed(&self, position: &Position) -> Option<ReplayMark> {
        self.with_state(|state| state.replayed.get(position).cloned())
    }

    /// The dead letters `action` replayed, by position.
    pub fn replayed_by(&self, action: &str) -> Vec<(Position, ReplayMark)> {
        self.with_state(|state| marked_by(&state.replayed, action, |m| m.action.as_deref()))
    }

    /// Records that the dead letter at `position` was replayed.
    pub async fn mark_replayed(
        &self,
        position: Position,
        mark: ReplayMark,
    ) -> Result<(), KafkaError> {
        self.write_mark(REPLAYED, position, &mark).await?;
        self.with_state(|state| state.replayed.insert(position, mark));
        Ok(())
    }

    /// When and by whom the dead letter at `position` was resolved without a replay,
    /// if it was.
    pub fn resolved(&self, position: &Position) -> Option<ResolvedMark> {
        self.with_state(|state| state.resolved.get(position).cloned())
    }

    /// Whether the dead letter at `position` was resolved without a replay (no copy of
    /// the mark: for scans).
    pub fn is_resolved(&self, position: &Position) -> bool {
        self.with_state(|state| state.resolved.contains_key(position))
    }

    /// The dead letters `action` resolved, by position.
    pub fn resolved_by(&self, action: &str) -> Vec<(Position, ResolvedMark)> {
        self.with_state(|state| marked_by(&state.resolved, action, |m| m.action.as_deref()))
    }

    /// Records that the dead letter at `position` was resolved, for every replica.
    pub async fn mark_resolved(
        &self,
        position: Position,
        mark: ResolvedMark,
    ) -> Result<(), KafkaError> {
        self.write_mark(RESOLVED, position, &mark).await?;
        self.with_state(|state| state.resolved.insert(position, mark));
        Ok(())
    }

    /// Whether the session `id` was ended by logging out.
    pub fn is_revoked(&self, id: &str) -> bool {
        self.with_state(|state| {
            state
                .revoked
                .get(id)
                .is_some_and(|entry| entry.until > Utc::now())
        })
    }

    /// Ends the session `id` (valid until `until`) on every replica.
    pub async fn revoke(&self, id: &str, until: DateTime<Utc>) -> Result<(), KafkaError> {
        let entry = Expiring {
            until,
            result: None,
        };
        self.with_state(|state| state.revoked.insert(id.to_owned(), entry.clone()));
        let value = serde_json::to_vec(&entry).unwrap_or_default();
        self.write(&format!("{REVOKED}{id}"), Some(value)).await
    }

    /// Claims a form's one-time token for this request, or says what became of it.
    pub fn claim(&self, token: &str, until: DateTime<Utc>) -> Submitted {
        self.with_state(|state| match state.used.get(token) {
            Some(Expiring {
                result: Some(result),
                ..
            }) => Submitted::Done(result.clone()),
            Some(_) => Submitted::InProgress,
            None => {
                state.used.insert(
                    token.to_owned(),
                    Expiring {
                        until,
                        result: None,
                    },
                );
                Submitted::First
            }
        })
    }

    /// Records what a claimed form did (the page that shows it), for every replica.
    pub async fn submitted(
        &self,
        token: &str,
        until: DateTime<Utc>,
        result: &str,
    ) -> Result<(), KafkaError> {
        let entry = Expiring {
            until,
            result: Some(result.to_owned()),
        };
        self.with_state(|state| state.used.insert(token.to_owned(), entry.clone()));
        let value = serde_json::to_vec(&entry).unwrap_or_default();
        self.write(&format!("{USED}{token}"), Some(value)).await
    }

    /// Forgets a claim whose action failed before doing anything, so it can be tried
    /// again.
    pub fn release(&self, token: &str) {
        self.with_state(|state| {
            if state.used.get(token).is_some_and(|e| e.result.is_none()) {
                state.used.remove(token);
            }
        });
    }

    /// Forgets expired sessions and forms, and tombstones them on the topic.
    pub async fn prune(&self) {
        let now = Utc::now();
        let expired: Vec<String> = self.with_state(|state| {
            let mut expired = Vec::new();
            for (prefix, map) in [(REVOKED, &mut state.revoked), (USED, &mut state.used)] {
                map.retain(|id, entry| {
                    let live = entry.until > now;
                    if !live {
                        expired.push(format!("{prefix}{id}"));
                    }
                    live
                });
            }
            expired
        });
        for key in expired {
            if let Err(e) = self.write(&key, None).await {
                tracing::warn!(error = %e, key, "console: tombstoning an expired ledger entry");
            }
        }
    }
}
