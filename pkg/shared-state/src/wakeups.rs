//! One Redis subscription per replica for every waiting call. A connection per waiter
//! would exhaust Redis' `maxclients` (and starve every other user of that Redis) with
//! a few thousand waits; here one connection carries every wake channel.
//!
//! A channel is subscribed when its first waiter arrives — before [`WakeHub::wait_on`]
//! returns, so a caller that sends after it cannot miss the reply's wake-up — and
//! unsubscribed when its last waiter leaves. Messages are routed to the channel's
//! waiters in process. When the connection drops, it is re-established with backoff,
//! every live channel is subscribed again, and then every waiter is woken to look at
//! its inbox, so nothing published while the connection was down is missed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::Notify;

/// Why a wait could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WakeError {
    #[error("this replica already has {limit} calls waiting (MESSAGING_MAX_WAITERS); try again later or another replica")]
    TooManyWaiters { limit: usize },
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

/// The replica's subscription and the waiters of each channel.
#[derive(Clone)]
pub struct WakeHub {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    max_waiters: usize,
    /// The live connection's command side and its generation; `None` while
    /// disconnected. Held while subscribing or unsubscribing, so those happen in the
    /// order they were decided.
    sink: tokio::sync::Mutex<Option<(u64, PubSubSink)>>,
    waiters: Mutex<Waiters>,
    next_id: AtomicU64,
    generations: AtomicU64,
}

/// How long connecting the subscription may take before a wait fails as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Waiters {
    by_channel: HashMap<String, HashMap<u64, Arc<Notify>>>,
    count: usize,
}

/// A registered waiter: woken by each message on its channel, and after a reconnect.
/// Dropping it leaves the channel (and unsubscribes when it was the last).
pub struct Waiter {
    hub: WakeHub,
    channel: String,
    id: u64,
    notify: Arc<Notify>,
}

impl Waiter {
    /// Resolves at the next wake-up; one that came since the last call resolves at once.
    pub async fn woken(&self) {
        self.notify.notified().await;
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let emptied = {
            let mut waiters = self.hub.inner.lock_waiters();
            let emptied = match waiters.by_channel.get_mut(&self.channel) {
                Some(channel) => {
                    channel.remove(&self.id);
                    channel.is_empty()
                }
                None => false,
            };
            if emptied {
                waiters.by_channel.remove(&self.channel);
            }
            waiters.count -= 1;
            metrics::gauge!("mcp_server_messaging_waiters").set(waiters.count as f64);
            emptied
        };
        if emptied {
            let hub = self.hub.clone();
            let channel = std::mem::take(&mut self.channel);
            // Only a runtime can unsubscribe; without one the process is ending anyway.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { hub.unsubscribe_if_unused(&channel).await });
            }
        }
    }
}

impl WakeHub {
    /// Connects on first use.
    pub fn new(client: redis::Client, max_waiters: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                max_waiters,
                sink: tokio::sync::Mutex::new(None),
                waiters: Mutex::new(Waiters::default()),
                next_id: AtomicU64::new(0),
                generations: AtomicU64::new(0),
            }),
        }
    }

    /// Registers a waiter on `channel`, subscribed by the time this returns.
    pub async fn wait_on(&self, channel: &str) -> Result<Waiter, WakeError> {
        let mut sink = self.inner.sink.lock().await;
        if sink.is_none() {
            *sink = Some(self.establish().await?);
        }
        let (waiter, first) = {
            let mut waiters = self.inner.lock_waiters();
            if waiters.count >= self.inner.max_waiters {
                return Err(WakeError::TooManyWaiters {
                    limit: self.inner.max_waiters,
                });
            }
            let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
            let notify = Arc::new(Notify::new());
            let on_channel = waiters.by_channel.entry(channel.to_owned()).or_default();
            let first = on_channel.is_empty();
            on_channel.insert(id, notify.clone());
            waiters.count += 1;
            metrics::gauge!("mcp_server_messaging_waiters").set(waiters.count as f64);
            let waiter = Waiter {
                hub: self.clone(),
                channel: channel.to_owned(),
                id,
                notify,
            };
            (waiter, first)
        };
        if first {
            if let Some((_, live)) = sink.as_mut() {
                // On failure the waiter is dropped, which undoes its registration.
                live.subscribe(channel).await?;
            }
        }
        Ok(waiter)
    }

    /// How many calls wait now.
    pub fn waiters(&self) -> usize {
        self.inner.lock_waiters().count
    }

    /// Opens a subscription connection, subscribes every channel that has waiters,
    /// starts routing what arrives on it, and wakes every waiter to look at its inbox
    /// (whatever was published while there was no connection).
    async fn establish(&self) -> Result<(u64, PubSubSink), redis::RedisError> {
        let pubsub = tokio::time::timeout(CONNECT_TIMEOUT, self.inner.client.get_async_pubsub())
            .await
            .map_err(|_| {
                redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "connecting the subscription timed out",
                ))
            })??;
        let (mut sink, stream) = pubsub.split();
        let channels: Vec<String> = self
            .inner
            .lock_waiters()
            .by_channel
            .keys()
            .cloned()
            .collect();
        if !channels.is_empty() {
            sink.subscribe(&channels).await?;
        }
        let generation = self.inner.generations.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(self.clone().route(stream, generation));
        for notify in self
            .inner
            .lock_waiters()
            .by_channel
            .values()
            .flat_map(HashMap::values)
        {
            notify.notify_one();
        }
        Ok((generation, sink))
    }

    /// Hands each message to its channel's waiters until the connection drops; then,
    /// while anyone still waits, re-establishes it with backoff.
    ///
    /// Boxed: it re-establishes connections, which start routes of their own.
    fn route(self, stream: PubSubStream, generation: u64) -> BoxFuture<'static, ()> {
        self.route_until_dropped(stream, generation).boxed()
    }

    async fn route_until_dropped(self, mut stream: PubSubStream, generation: u64) {
        while let Some(message) = stream.next().await {
            let waiters = self.inner.lock_waiters();
            for notify in waiters
                .by_channel
                .get(message.get_channel_name())
                .into_iter()
                .flat_map(HashMap::values)
            {
                notify.notify_one();
            }
        }
        {
            let mut sink = self.inner.sink.lock().await;
            if !matches!(*sink, Some((current, _)) if current == generation) {
                return;
            }
            *sink = None;
        }
        tracing::warn!("the Redis subscription connection dropped; reconnecting");
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(2))
            .with_jitter()
            .without_max_times()
            .build();
        while self.waiters() > 0 {
            {
                let mut sink = self.inner.sink.lock().await;
                if sink.is_some() {
                    return;
                }
                match self.establish().await {
                    Ok(live) => {
                        *sink = Some(live);
                        tracing::info!(
                            "the Redis subscription is back; every wait is checking its inbox"
                        );
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "reconnecting the Redis subscription failed")
                    }
                }
            }
            tokio::time::sleep(delays.next().unwrap_or(Duration::from_secs(2))).await;
        }
    }

    /// Unsubscribes `channel` unless a waiter arrived on it meanwhile.
    async fn unsubscribe_if_unused(&self, channel: &str) {
        let mut sink = self.inner.sink.lock().await;
        if self.inner.lock_waiters().by_channel.contains_key(channel) {
            return;
        }
        if let Some((_, live)) = sink.as_mut() {
            if let Err(e) = live.unsubscribe(channel).await {
                tracing::debug!(error = %e, channel, "unsubscribing failed; the connection will be replaced");
            }
        }
    }
}

impl Inner {
    fn lock_waiters(&self) -> std::sync::MutexGuard<'_, Waiters> {
        // Counts and maps, each change whole: a panic elsewhere cannot leave them torn.
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
