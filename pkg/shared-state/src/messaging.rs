//! Client-to-client messaging (seed 002) on Redis, so that sender and recipient may talk
//! to different mcp-server replicas.
//!
//! Each client id has a queue (a Redis list, created on demand, expiring with its
//! newest message) and a wake-up channel. `send` appends and publishes a wake-up;
//! `send_and_wait` subscribes to its own channel *before* sending, then takes the
//! recipient's first reply from its queue, sleeping on the channel between looks —
//! it never polls. Timestamps come from Redis' clock, the one clock all replicas share.
//! Ids are the credentials, as in the seed: whoever knows an id may read its queue.

use std::time::Duration;

use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError};
use crate::wakeups::{WakeError, WakeHub};

const CLIENTS: &str = "mcp-jobs:messaging:clients";
const NEXT_ID: &str = "mcp-jobs:messaging:next-id";
const MAX_ID_CHARS: usize = 128;

#[derive(Debug, Clone)]
pub struct MessagingSettings {
    /// Messages older than this are dropped unread.
    pub message_ttl: Duration,
    pub max_message_bytes: usize,
    /// The longest `send_message_and_wait` may block, whatever the caller asks.
    pub max_wait: Duration,
    /// Calls that may wait at once on this replica.
    pub max_waiters: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    #[error("{field} is empty: give a client id")]
    EmptyId { field: &'static str },
    #[error("{field} is {chars} characters long; ids have at most {MAX_ID_CHARS}")]
    IdTooLong { field: &'static str, chars: usize },
    #[error(
        "unknown client {id:?}: it has not checked in (call checkin_client with that id first)"
    )]
    UnknownClient { id: String },
    #[error("the message is empty")]
    EmptyMessage,
    #[error("the message is {size} bytes; the limit is {limit} (MESSAGING_MAX_MESSAGE_BYTES)")]
    MessageTooLarge { size: usize, limit: usize },
    #[error("no reply from {recipient:?} within {waited:?}; the message stays in its queue")]
    NoReply { recipient: String, waited: Duration },
    #[error("this replica already has {limit} calls waiting (MESSAGING_MAX_WAITERS); nothing was sent: try again later or on another replica")]
    TooManyWaiters { limit: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MessagingError {
    /// A stable name for the failure, for callers and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::EmptyId { .. } | Self::IdTooLong { .. } | Self::EmptyMessage => {
                "invalid_arguments"
            }
            Self::UnknownClient { .. } => "unknown_client",
            Self::MessageTooLarge { .. } => "too_large",
            Self::NoReply { .. } => "timeout",
            Self::TooManyWaiters { .. } => "too_many_waiters",
            Self::Store(StoreError::Unavailable { .. }) => "redis_unavailable",
            Self::Store(StoreError::Command { .. }) => "redis_error",
        }
    }
}

/// One message as stored in a queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: u64,
    pub from: String,
    pub to: String,
    pub text: String,
    /// Redis' clock, milliseconds since the epoch.
    pub sent_at_ms: i64,
}

/// A checked-in client.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientInfo {
    pub id: String,
    pub name: String,
    pub capabilities: Vec<String>,
    pub checked_in_at_ms: i64,
}

/// Messages taken from a queue, with Redis' clock at the time, for relative times.
#[derive(Debug, Clone)]
pub struct Taken {
    pub messages: Vec<Message>,
    pub now_ms: i64,
}

#[derive(Clone)]
pub struct Mailboxes {
    store: Store,
    settings: MessagingSettings,
    /// The replica's one subscription, shared by every waiting call.
    wakeups: WakeHub,
    send: Script,
    take_all: Script,
    take_reply: Script,
}

impl Mailboxes {
    pub fn new(store: Store, settings: MessagingSettings) -> Self {
        Self {
            wakeups: WakeHub::new(store.client(), settings.max_waiters),
            store,
            settings,
            // KEYS: queue, id counter. ARGV: from, to, text, ttl ms, wake channel.
            send: Script::new(
                r"
                local t = redis.call('TIME')
                local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
                local id = redis.call('INCR', KEYS[2])
                redis.call('RPUSH', KEYS[1], cjson.encode({
                    id = id, from = ARGV[1], to = ARGV[2], text = ARGV[3], sentAtMs = now }))
                redis.call('PEXPIRE', KEYS[1], ARGV[4])
                redis.call('PUBLISH', ARGV[5], ARGV[1])
                return {id, now}",
            ),
            // KEYS: queue. Takes everything; the caller drops what has expired.
            take_all: Script::new(
                r"
                local t = redis.call('TIME')
                local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
                local items = redis.call('LRANGE', KEYS[1], 0, -1)
                redis.call('DEL', KEYS[1])
                return {now, items}",
            ),
            // KEYS: queue. ARGV: sender wanted, sent at or after (ms), ttl ms.
            take_reply: Script::new(
                r"
                local t = redis.call('TIME')
                local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
                local oldest = math.max(tonumber(ARGV[2]), now - tonumber(ARGV[3]))
                for _, item in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
                    local ok, m = pcall(cjson.decode, item)
                    if ok and m.from == ARGV[1] and tonumber(m.sentAtMs) >= oldest then
                        redis.call('LREM', KEYS[1], 1, item)
                        return {now, item}
                    end
                end
                return false",
            ),
        }
    }

    /// Registers (or refreshes) `id`, so others may send to it.
    pub async fn check_in(
        &self,
        id: &str,
        name: &str,
        capabilities: Vec<String>,
    ) -> Result<ClientInfo, MessagingError> {
        valid_id("client_id", id)?;
        let mut connection = self.store.connection();
        let (seconds, micros): (i64, i64) = redis::cmd("TIME")
            .query_async(&mut connection)
            .await
            .map_err(|e| self.store.error(e))?;
        let info = ClientInfo {
            id: id.to_owned(),
            name: if name.trim().is_empty() {
                id.to_owned()
            } else {
                name.to_owned()
            },
            capabilities,
            checked_in_at_ms: seconds * 1000 + micros / 1000,
        };
        let record = serde_json::to_string(&info).unwrap_or_default();
        let () = connection
            .hset(CLIENTS, id, record)
            .await
            .map_err(|e| self.store.error(e))?;
        Ok(info)
    }

    /// Every checked-in client, by id.
    pub async fn clients(&self) -> Result<Vec<ClientInfo>, MessagingError> {
        let records: Vec<(String, String)> = self
            .store
            .connection()
            .hgetall(CLIENTS)
            .await
            .map_err(|e| self.store.error(e))?;
        let mut clients: Vec<ClientInfo> = records
            .into_iter()
            .filter_map(|(_, record)| serde_json::from_str(&record).ok())
            .collect();
        clients.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(clients)
    }

    /// Queues `text` for `to`; returns the message as stored.
    pub async fn send(&self, from: &str, to: &str, text: &str) -> Result<Message, MessagingError> {
        valid_id("sender_id", from)?;
        valid_id("recipient_id", to)?;
        if text.trim().is_empty() {
            return Err(MessagingError::EmptyMessage);
        }
        if text.len() > self.settings.max_message_bytes {
            return Err(MessagingError::MessageTooLarge {
                size: text.len(),
                limit: self.settings.max_message_bytes,
            });
        }
        self.known(&[from, to]).await?;
        let (id, sent_at_ms): (u64, i64) = self
            .send
            .key(queue(to))
            .key(NEXT_ID)
            .arg(from)
            .arg(to)
            .arg(text)
            .arg(self.ttl_ms())
            .arg(wake_channel(to))
            .invoke_async(&mut self.store.connection())
            .await
            .map_err(|e| self.store.error(e))?;
        Ok(Message {
            id,
            from: from.to_owned(),
            to: to.to_owned(),
            text: text.to_owned(),
            sent_at_ms,
        })
    }

    /// Sends, then blocks until `to` answers `from` (its first message to `from` sent
    /// after this one) or `timeout` passes (capped by `max_wait`).
    pub async fn send_and_wait(
        &self,
        from: &str,
        to: &str,
        text: &str,
        timeout: Duration,
    ) -> Result<(Message, Taken), MessagingError> {
        let waited = timeout.min(self.settings.max_wait);
        let deadline = tokio::time::Instant::now() + waited;
        // Subscribed before sending: a reply cannot slip in unseen.
        let waiter = self
            .wakeups
            .wait_on(&wake_channel(from))
            .await
            .map_err(|e| match e {
                WakeError::TooManyWaiters { limit } => MessagingError::TooManyWaiters { limit },
                WakeError::Redis(e) => self.store.error(e).into(),
            })?;
        let sent = self.send(from, to, text).await?;
        let mut last_look = false;
        loop {
            match self.take_reply(from, to, sent.sent_at_ms).await {
                Ok(Some(reply)) => {
                    if let Some(first) = reply.messages.first() {
                        let waited_ms = (reply.now_ms - first.sent_at_ms).max(0);
                        metrics::histogram!("mcp_server_messaging_wake_seconds")
                            .record(waited_ms as f64 / 1000.0);
                    }
                    return Ok((sent, reply));
                }
                Ok(None) if last_look => {
                    return Err(MessagingError::NoReply {
                        recipient: to.to_owned(),
                        waited,
                    })
                }
                Ok(None) => {}
                // Redis went away mid-wait: the subscription wakes this call once it is
                // back, and the inbox is read again then. Still away at the deadline:
                // that is the answer.
                Err(e @ MessagingError::Store(StoreError::Unavailable { .. })) if last_look => {
                    return Err(e)
                }
                Err(MessagingError::Store(StoreError::Unavailable { .. })) => {}
                Err(e) => return Err(e),
            }
            // One more look at the deadline, which also tells a Redis that is away.
            last_look = tokio::time::timeout_at(deadline, waiter.woken())
                .await
                .is_err();
        }
    }

    /// Takes every unexpired message queued for `id`, oldest first.
    pub async fn take_all(&self, id: &str) -> Result<Taken, MessagingError> {
        valid_id("client_id", id)?;
        self.known(&[id]).await?;
        let (now_ms, items): (i64, Vec<String>) = self
            .take_all
            .key(queue(id))
            .invoke_async(&mut self.store.connection())
            .await
            .map_err(|e| self.store.error(e))?;
        let oldest = now_ms - self.ttl_ms();
        let messages = items
            .iter()
            .filter_map(|item| serde_json::from_str::<Message>(item).ok())
            .filter(|message| message.sent_at_ms >= oldest)
            .collect();
        Ok(Taken { messages, now_ms })
    }

    async fn take_reply(
        &self,
        waiter: &str,
        from: &str,
        sent_after_ms: i64,
    ) -> Result<Option<Taken>, MessagingError> {
        let found: Option<(i64, String)> = self
            .take_reply
            .key(queue(waiter))
            .arg(from)
            .arg(sent_after_ms)
            .arg(self.ttl_ms())
            .invoke_async(&mut self.store.connection())
            .await
            .map_err(|e| self.store.error(e))?;
        Ok(found.and_then(|(now_ms, item)| {
            let message = serde_json::from_str(&item).ok()?;
            Some(Taken {
                messages: vec![message],
                now_ms,
            })
        }))
    }

    /// Fails with the first of `ids` that has not checked in.
    async fn known(&self, ids: &[&str]) -> Result<(), MessagingError> {
        let present: Vec<bool> = {
            let mut pipe = redis::pipe();
            for id in ids {
                pipe.hexists(CLIENTS, *id);
            }
            pipe.query_async(&mut self.store.connection())
                .await
                .map_err(|e| self.store.error(e))?
        };
        match ids.iter().zip(present).find(|(_, known)| !known) {
            Some((id, _)) => Err(MessagingError::UnknownClient {
                id: (*id).to_owned(),
            }),
            None => Ok(()),
        }
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.settings.message_ttl.as_millis()).unwrap_or(i64::MAX)
    }
}

fn queue(id: &str) -> String {
    format!("mcp-jobs:messaging:queue:{id}")
}

fn wake_channel(id: &str) -> String {
    format!("mcp-jobs:messaging:wake:{id}")
}

fn valid_id(field: &'static str, id: &str) -> Result<(), MessagingError> {
    let chars = id.chars().count();
    if id.trim().is_empty() {
        Err(MessagingError::EmptyId { field })
    } else if chars > MAX_ID_CHARS {
        Err(MessagingError::IdTooLong { field, chars })
    } else {
        Ok(())
    }
}

/// Messages as Markdown, oldest first, each with how long ago it was sent.
pub fn render_messages(recipient: &str, taken: &Taken) -> String {
    match taken.messages.len() {
        0 => format!("No messages for {recipient}."),
        n => {
            let mut text = format!(
                "# {n} message{} for {recipient}\n",
                if n == 1 { "" } else { "s" }
            );
            for message in &taken.messages {
                text.push_str(&format!(
                    "\n## From {}, {}\n\n{}\n",
                    message.from,
                    ago(taken.now_ms - message.sent_at_ms),
                    message.text
                ));
            }
            text
        }
    }
}

/// How long ago, in words: "just now", "42 seconds ago", "3 minutes ago".
pub fn ago(elapsed_ms: i64) -> String {
    let seconds = elapsed_ms.max(0) / 1000;
    let (n, unit) = match seconds {
        0..=4 => return "just now".into(),
        5..=59 => (seconds, "second"),
        60..=3599 => (seconds / 60, "minute"),
        3600..=86_399 => (seconds / 3600, "hour"),
        _ => (seconds / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        assert_eq!(ago(1_200), "just now");
        assert_eq!(ago(42_000), "42 seconds ago");
        assert_eq!(ago(60_000), "1 minute ago");
        assert_eq!(ago(185_000), "3 minutes ago");
        assert_eq!(ago(7_300_000), "2 hours ago");
        assert_eq!(ago(-5), "just now");
    }

    #[test]
    fn ids_are_checked_before_redis_is_asked() {
        assert!(matches!(
            valid_id("sender_id", " "),
            Err(MessagingError::EmptyId { field: "sender_id" })
        ));
        let long = "x".repeat(MAX_ID_CHARS + 1);
        assert!(matches!(
            valid_id("client_id", &long),
            Err(MessagingError::IdTooLong { .. })
        ));
        assert!(valid_id("client_id", "alice").is_ok());
    }
}
