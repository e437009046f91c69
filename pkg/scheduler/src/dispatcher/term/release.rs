//! Release: delayed jobs are read back by offset when they are due and sent to the jobs
//! topic with their tombstones, in the term's transaction; a waiting copy that a
//! tombstone of an older copy follows is written again so that compaction keeps it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use mcp_jobs_contract::headers::{DelayedMeta, RELEASED, SENT_OFFSET};
use mcp_jobs_kafka::headers::{self, header};
use rdkafka::error::KafkaError;
use rdkafka::Message;

use super::{Term, MAX_TRANSACTION_RECORDS};
use crate::dispatcher::transaction::{Outgoing, Sent, Transaction};
use crate::metrics;
use crate::waiting::{self, Position};

/// Delayed jobs read back and sent in one transaction at most.
const MAX_DELAYED_PER_TRANSACTION: usize = 500;
/// How long reading due delayed jobs back may take; what was read by then is sent.
const FETCH_LIMIT: Duration = Duration::from_secs(5);

/// Due delayed jobs could not be read back; they are tried again shortly.
#[derive(Debug, thiserror::Error)]
#[error("reading due jobs back from {topic}: {source}")]
pub(super) struct FetchError {
    topic: String,
    source: KafkaError,
}

impl Term<'_> {
    /// Adds the delayed jobs due at `now`, read back from their topic, and their tombstones.
    pub(super) fn add_delayed(
        &mut self,
        now: DateTime<Utc>,
        transaction: &mut Transaction,
    ) -> Result<(), FetchError> {
        let room = MAX_TRANSACTION_RECORDS.saturating_sub(transaction.records.len()) / 2;
        if self.delayed_retry_at.is_some_and(|at| at > now) {
            return Ok(());
        }
        self.delayed_retry_at = None;
        let due = self.waiting.due(
            now.timestamp_millis(),
            room.min(MAX_DELAYED_PER_TRANSACTION),
        );
        // A copy replaced by a newer one since (read after the tombstone) needs nothing.
        let waiting = &self.waiting;
        self.rewrites.retain(|at| waiting.holds(*at));
        if due.is_empty() && self.rewrites.is_empty() {
            return Ok(());
        }
        let positions: Vec<Position> = due
            .iter()
            .map(|(_, at)| *at)
            .chain(self.rewrites.iter().copied())
            .collect();
        let topic = &self.settings.delayed_topic;
        let fetched = tokio::task::block_in_place(|| {
            waiting::fetch(&self.fetcher, topic, &positions, FETCH_LIMIT)
        })
        .map_err(|source| FetchError {
            topic: topic.clone(),
            source,
        })?;
        self.add_rewrites(&fetched, transaction);
        for (due_ms, at) in due {
            let Some(message) = fetched.found.get(&at) else {
                if fetched.gone.contains(&at) {
                    tracing::warn!(
                        partition = at.partition,
                        offset = at.offset,
                        "a delayed job's record is gone (compacted); forgetting it"
                    );
                    self.waiting.drop_position(due_ms, at);
                } else {
                    // Not read this time: try again shortly, not in a tight loop.
                    self.delayed_retry_at = Some(now + chrono::Duration::seconds(1));
                }
                continue;
            };
            let Some(job_id) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                self.waiting.drop_position(due_ms, at);
                continue;
            };
            let tombstone = Outgoing {
                topic: topic.clone(),
                partition: Some(at.partition),
                key: Some(job_id.as_bytes().to_vec()),
                payload: None,
                headers: vec![(SENT_OFFSET.to_owned(), at.offset.to_string().into_bytes())],
            };
            transaction.sent.push(Sent {
                job_id: job_id.to_owned(),
                at,
            });
            let bytes = message.payload().map_or(0, <[u8]>::len);
            let limit = self.settings.limits.job_bytes;
            if bytes > limit {
                // Not written by a worker (it delays only jobs within the limit), and no
                // worker would run it: forwarding it could only fail the transaction.
                tracing::error!(
                    job_id,
                    bytes,
                    limit,
                    "a delayed record over MAX_MESSAGE_BYTES cannot be a job: dropped"
                );
                metrics::delayed_dropped();
                transaction.records.push(tombstone);
                continue;
            }
            let headers = headers::all_of(message.headers())
                .into_iter()
                .filter(|(name, _)| headers::TRACE.contains(&name.as_str()))
                .chain([(RELEASED.to_owned(), b"true".to_vec())])
                .collect();
            transaction.records.push(Outgoing {
                topic: self.settings.topic.clone(),
                partition: None,
                key: DelayedMeta::from_headers(|name| header(message.headers(), name)).original_key,
                payload: message.payload().map(<[u8]>::to_vec),
                headers,
            });
            transaction.records.push(tombstone);
        }
        Ok(())
    }

    /// Writes again, as they are, the waiting copies a tombstone of an older copy
    /// follows, so that compaction keeps them.
    fn add_rewrites(&mut self, fetched: &waiting::Fetched, transaction: &mut Transaction) {
        let topic = &self.settings.delayed_topic;
        self.rewrites.retain(|at| {
            if fetched.gone.contains(at) {
                tracing::warn!(
                    partition = at.partition,
                    offset = at.offset,
                    "a delayed job was compacted away before it could be written again"
                );
                return false;
            }
            true
        });
        for at in &self.rewrites {
            let Some(message) = fetched.found.get(at) else {
                continue;
            };
            transaction.records.push(Outgoing {
                topic: topic.clone(),
                partition: Some(at.partition),
                key: message.key().map(<[u8]>::to_vec),
                payload: message.payload().map(<[u8]>::to_vec),
                headers: headers::all_of(message.headers()),
            });
            transaction.rewritten.push(*at);
        }
    }
}
