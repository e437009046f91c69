//! Consumers for bounded reads, kept between requests: opening one (connecting to the
//! brokers, learning the cluster) costs more than most page reads themselves. Each
//! read assigns the partitions and offsets it needs, so a reader carries nothing from
//! one request to the next; idle ones are unassigned.

use std::ops::Deref;
use std::sync::{Mutex, PoisonError};

use mcp_jobs_kafka::topic::{self, Reader};
use mcp_jobs_kafka::KafkaSettings;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;

/// Idle readers kept; more are opened when more requests read at once.
const KEEP_IDLE: usize = 4;

pub struct Readers {
    settings: KafkaSettings,
    idle: Mutex<Vec<BaseConsumer<Reader>>>,
}

impl Readers {
    pub fn new(settings: KafkaSettings) -> Self {
        Self {
            settings,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// An idle reader, or a new one; back among the idle when the lease is dropped.
    pub fn take(&self) -> Result<Lease<'_>, KafkaError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let consumer = match idle {
            Some(consumer) => consumer,
            None => topic::reader(&self.settings, "kafka-worker-console")?,
        };
        Ok(Lease {
            consumer: Some(consumer),
            readers: self,
        })
    }
}

/// A reader in use.
pub struct Lease<'a> {
    consumer: Option<BaseConsumer<Reader>>,
    readers: &'a Readers,
}

impl Deref for Lease<'_> {
    type Target = BaseConsumer<Reader>;

    fn deref(&self) -> &Self::Target {
        // Only taken in drop.
        self.consumer
            .as_ref()
            .unwrap_or_else(|| unreachable!("a lease holds its reader until dropped"))
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(consumer) = self.consumer.take() else {
            return;
        };
        // A reader that cannot let go of its partitions is not reused.
        if consumer.unassign().is_err() {
            return;
        }
        let mut idle = self
            .readers
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < KEEP_IDLE {
            idle.push(consumer);
        }
    }
}
