//! A compacted topic kept in memory as a view of what it holds (the delayed jobs that
//! wait, the jobs in flight): read from its beginning, then followed as it grows, on a
//! thread of its own. After an error the view is emptied and the topic read again from
//! its beginning, so a view is never a mix of two readings; until the end of every
//! partition is reached again it says it is partial.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::settings::KafkaSettings;
use crate::topic::{follower, partition_count, ReadError};

/// How often a topic that cannot be followed is tried again.
const RETRY: Duration = Duration::from_secs(5);

/// What a followed topic is kept as.
pub trait View: Default + Send + 'static {
    /// Takes one record in, in the order of its partition.
    fn apply(&mut self, message: &BorrowedMessage<'_>);
}

/// A topic followed in the background as a `V`.
pub struct Followed<V> {
    view: Arc<Mutex<V>>,
    /// Whether every partition has been read to its end since the last start: until
    /// then the view is partial.
    loaded: Arc<AtomicBool>,
    /// Why the topic cannot be followed, while it cannot.
    problem: Arc<Mutex<Option<String>>>,
}

impl<V> Clone for Followed<V> {
    fn clone(&self) -> Self {
        Self {
            view: self.view.clone(),
            loaded: self.loaded.clone(),
            problem: self.problem.clone(),
        }
    }
}

impl<V: View> Followed<V> {
    /// Follows `topic` from its beginning until `stop`; `group` names the reader to the
    /// broker (it joins no group).
    pub fn start(
        settings: KafkaSettings,
        group: &'static str,
        topic: String,
        stop: CancellationToken,
    ) -> Self {
        let followed = Self {
            view: Arc::default(),
            loaded: Arc::default(),
            problem: Arc::default(),
        };
        let following = followed.clone();
        std::thread::spawn(move || {
            while !stop.is_cancelled() {
                if let Err(e) = following.tail(&settings, group, &topic, &stop) {
                    tracing::warn!(%topic, error = %e, "following a topic; reading it again shortly");
                    *lock(&following.problem) = Some(format!("{topic}: {e}"));
                    std::thread::sleep(RETRY);
                }
            }
        });
        followed
    }

    fn tail(
        &self,
        settings: &KafkaSettings,
        group: &str,
        topic: &str,
        stop: &CancellationToken,
    ) -> Result<(), ReadError> {
        let consumer = follower(settings, group)?;
        let partitions = partition_count(&consumer, topic)?;
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        *lock(&self.view) = V::default();
        self.loaded.store(false, Ordering::Relaxed);
        *lock(&self.problem) = None;
        let mut loading: HashSet<i32> = (0..partitions).collect();
        while !stop.is_cancelled() {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => lock(&self.view).apply(&message),
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    loading.remove(&partition);
                    if loading.is_empty() {
                        self.loaded.store(true, Ordering::Relaxed);
                    }
                }
                Some(Err(e)) => return Err(e.into()),
                None => {}
            }
        }
        Ok(())
    }

    /// The view as read so far, locked while it is held.
    pub fn view(&self) -> MutexGuard<'_, V> {
        lock(&self.view)
    }

    /// Whether the whole topic has been read (if not, the view may lack records).
    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Relaxed)
    }

    /// Why the topic cannot be followed now, if it cannot.
    pub fn problem(&self) -> Option<String> {
        lock(&self.problem).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
