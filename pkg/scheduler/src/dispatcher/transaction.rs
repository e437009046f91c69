//! Transactions: the active dispatcher publishes only in Kafka transactions, under one
//! `transactional.id` shared by every dispatcher. Taking over starts with
//! `init_transactions`, which aborts whatever the previous owner left open and fences
//! it: a dispatcher that lost the partition without noticing can no longer commit.
//! An occurrence's job and the schedule's new state are one transaction, as are a
//! delayed job sent back and its tombstone.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use mcp_jobs_contract::headers::RELEASED;
use mcp_jobs_kafka::headers;
use mcp_jobs_kafka::KafkaSettings;
use mcp_jobs_telemetry::propagation;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use super::guarded;
use super::plan::{Occurrence, SkipReason};
use crate::catalog::{Key, State};
use crate::schedule::{job_id, Schedule};
use crate::waiting::Position;

/// How long a commit may take before it is given up and tried again.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a transaction did not commit.
#[derive(Debug, thiserror::Error)]
pub(super) enum TransactionError {
    /// The producer cannot go on: fenced by a newer dispatcher, or broken.
    #[error("transaction: {0}")]
    Fatal(KafkaError),
    /// It failed and could not even be aborted: the producer's state is unknown.
    #[error("transaction: {failed}; abort: {abort}")]
    AbortFailed {
        failed: KafkaError,
        abort: KafkaError,
    },
    /// Aborted: nothing was published, and the same work may be tried again.
    #[error("transaction aborted: {0}")]
    Aborted(KafkaError),
}

/// One record to publish in a transaction.
pub(super) struct Outgoing {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// An occurrence published: for the log and the metrics once committed.
pub(super) struct Fired {
    pub schedule: String,
    pub occurrence: Occurrence,
}

/// Occurrences skipped: for the log and the metrics once committed.
pub(super) struct Skipped {
    pub schedule: String,
    pub reason: SkipReason,
    pub count: u64,
}

/// A delayed job sent back to the jobs topic from `at`.
pub(super) struct Sent {
    pub job_id: String,
    pub at: Position,
}

/// What one transaction publishes, and what to remember once it is committed.
#[derive(Default)]
pub(super) struct Transaction {
    pub records: Vec<Outgoing>,
    pub states: BTreeMap<String, State>,
    pub fired: Vec<Fired>,
    pub skipped: Vec<Skipped>,
    pub sent: Vec<Sent>,
    pub rewritten: Vec<Position>,
}

impl Transaction {
    /// Publishes `state` as `name`'s state record.
    pub(super) fn add_state(&mut self, topic: &str, name: &str, state: State) {
        self.records.push(Outgoing {
            topic: topic.to_owned(),
            partition: None,
            key: Some(Key::state(name).into_bytes()),
            // A state always serializes: times only.
            payload: Some(serde_json::to_vec(&state).unwrap_or_default()),
            headers: Vec::new(),
        });
        self.states.insert(name.to_owned(), state);
    }

    /// Publishes a tombstone for `name`'s state record.
    pub(super) fn tombstone_state(&mut self, topic: &str, name: &str) {
        self.records.push(Outgoing {
            topic: topic.to_owned(),
            partition: None,
            key: Some(Key::state(name).into_bytes()),
            payload: None,
            headers: Vec::new(),
        });
    }

    /// Publishes the job of `schedule`'s `occurrence` to `jobs_topic`, released (no
    /// worker delays it again) and with a trace of its own.
    pub(super) fn add_occurrence(
        &mut self,
        jobs_topic: &str,
        schedule: &Schedule,
        occurrence: Occurrence,
    ) {
        let name = schedule.name();
        let id = job_id(name, occurrence.nominal);
        let span =
            tracing::info_span!("schedule", otel.kind = "producer", schedule = name, job_id = %id);
        let mut trace = HashMap::new();
        propagation::inject(&span, &mut trace);
        let headers = [(RELEASED.to_owned(), b"true".to_vec())]
            .into_iter()
            .chain(trace.into_iter().map(|(k, v)| (k, v.into_bytes())))
            .collect();
        self.records.push(Outgoing {
            topic: jobs_topic.to_owned(),
            partition: None,
            key: Some(name.as_bytes().to_vec()),
            payload: Some(schedule.job(occurrence.nominal)),
            headers,
        });
        self.fired.push(Fired {
            schedule: name.to_owned(),
            occurrence,
        });
    }
}

/// The transactional producer of one term.
pub(super) struct Publisher {
    producer: FutureProducer,
}

impl Publisher {
    /// Creates the producer under the shared `transactional.id` and fences the
    /// previous dispatcher.
    pub(super) fn fence(
        settings: &KafkaSettings,
        transactional_id: &str,
    ) -> Result<Self, KafkaError> {
        let producer: FutureProducer = guarded(
            settings.producer_config(&[
                ("linger.ms", "5"),
                // The jobs a dispatcher sends were accepted by the broker before; let
                // the topic's own limit decide, not the producer's default.
                ("message.max.bytes", "16777216"),
                ("transaction.timeout.ms", "60000"),
            ]),
            &[
                ("transactional.id", transactional_id),
                ("acks", "all"),
                ("enable.idempotence", "true"),
            ],
        )
        .create()?;
        producer.init_transactions(Timeout::After(TRANSACTION_TIMEOUT))?;
        Ok(Self { producer })
    }

    /// Publishes `records` in one transaction; returns how long it took. Every record's
    /// acknowledgement is awaited before the commit, so the commit's own flush has
    /// nothing left to wait for (rust-rdkafka's flush polls in 100 ms steps).
    pub(super) async fn commit(
        &self,
        records: Vec<Outgoing>,
    ) -> Result<Duration, TransactionError> {
        let started = Instant::now();
        match self.publish(&records).await {
            Ok(()) => Ok(started.elapsed()),
            Err(KafkaError::Transaction(e)) if e.is_fatal() => {
                Err(TransactionError::Fatal(KafkaError::Transaction(e)))
            }
            Err(failed) => {
                let aborted = tokio::task::block_in_place(|| {
                    self.producer
                        .abort_transaction(Timeout::After(TRANSACTION_TIMEOUT))
                });
                match aborted {
                    Ok(()) => Err(TransactionError::Aborted(failed)),
                    Err(abort) => Err(TransactionError::AbortFailed { failed, abort }),
                }
            }
        }
    }

    async fn publish(&self, records: &[Outgoing]) -> Result<(), KafkaError> {
        tokio::task::block_in_place(|| self.producer.begin_transaction())?;
        let mut deliveries = Vec::with_capacity(records.len());
        for record in records {
            deliveries.push(self.enqueue(record).await?);
        }
        for delivered in futures::future::join_all(deliveries).await {
            match delivered {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(e),
                Err(_) => return Err(KafkaError::Canceled),
            }
        }
        tokio::task::block_in_place(|| {
            // librdkafka asks for a retriable failure (a timeout) to be committed again.
            let mut tries = 1;
            loop {
                match self
                    .producer
                    .commit_transaction(Timeout::After(TRANSACTION_TIMEOUT))
                {
                    Err(KafkaError::Transaction(e)) if e.is_retriable() && tries < 3 => {
                        tracing::warn!(error = %e, "committing again");
                        tries += 1;
                    }
                    committed => return committed,
                }
            }
        })
    }

    /// Hands `record` to the producer, waiting while its queue is full.
    async fn enqueue(&self, record: &Outgoing) -> Result<DeliveryFuture, KafkaError> {
        let mut future = FutureRecord::<[u8], [u8]>::to(&record.topic)
            .headers(headers::owned(record.headers.iter().map(|(n, v)| (n, v))));
        if let Some(partition) = record.partition {
            future = future.partition(partition);
        }
        if let Some(key) = &record.key {
            future = future.key(key);
        }
        if let Some(payload) = &record.payload {
            future = future.payload(payload);
        }
        loop {
            match self.producer.send_result(future) {
                Ok(delivery) => return Ok(delivery),
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    returned,
                )) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    future = returned;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
}
