//! What the overview page charts: outcomes per minute over the last hour, by status,
//! and the group's lag per partition. A background thread follows the results topic
//! (starting an hour back, or at most [`BACKFILL_PER_PARTITION`] records back per
//! partition) and samples the group every [`SAMPLE_EVERY`]; pages read the summary it
//! keeps, so a page view reads no records. Lag is sampled, not stored in Kafka: its
//! chart starts when the console does.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use mcp_jobs_kafka::group::{self, Member};
use mcp_jobs_kafka::topic::{self, ReadError};
use mcp_jobs_kafka::KafkaSettings;
use mcp_jobs_scheduler::presence;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

/// How far back the charts go.
pub const WINDOW: chrono::Duration = chrono::Duration::hours(1);
/// The most outcome records read back per partition when the console starts.
pub const BACKFILL_PER_PARTITION: i64 = 100_000;
/// How often the group's lag and members are sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// What a problem is about, as the overview names it.
const RESULTS: &str = "results topic";
const LAG: &str = "lag";
const MEMBERS: &str = "group members";
const SCHEDULER: &str = "scheduler";

/// Outcomes finished in one minute.
#[derive(Debug, Clone, Default)]
pub struct Minute {
    pub succeeded: u64,
    /// Failed, by error kind.
    pub failed: BTreeMap<String, u64>,
}

impl Minute {
    pub fn failed(&self) -> u64 {
        self.failed.values().sum()
    }
}

/// One sample of the group's lag.
#[derive(Debug, Clone)]
pub struct LagSample {
    pub at: DateTime<Utc>,
    /// Per partition.
    pub lag: BTreeMap<i32, i64>,
}

/// What the overview shows; a snapshot of it is cheap to take.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Start of the minute (Unix seconds) → outcomes finished in it.
    pub minutes: BTreeMap<i64, Minute>,
    /// Workers that wrote an outcome in the window: id → (last seen, outcomes).
    pub workers: BTreeMap<String, (DateTime<Utc>, u64)>,
    pub lag: VecDeque<LagSample>,
    /// The group's members at the last sample.
    pub members: Vec<Member>,
    /// Outcome records read since the console started.
    pub records_read: u64,
    /// What is failing now, by what (`results topic`, `lag`, `group members`, and
    /// `scheduler` when no dispatcher is active): each
    /// is cleared as soon as that source answers again.
    pub problems: BTreeMap<&'static str, String>,
}

/// The overview's data, kept up to date by [`follow`].
#[derive(Default)]
pub struct Activity(Mutex<Summary>);

impl Activity {
    pub fn summary(&self) -> Summary {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Why no schedule dispatcher is active, while none is.
    pub fn no_dispatcher(&self) -> Option<String> {
        let summary = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        summary.problems.get(SCHEDULER).cloned()
    }

    fn update(&self, change: impl FnOnce(&mut Summary)) {
        change(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// The fields of an outcome record the overview counts.
#[derive(Deserialize)]
struct Counted {
    status: String,
    error: Option<Kind>,
    worker: Option<String>,
}

#[derive(Deserialize)]
struct Kind {
    kind: String,
}

/// Starts following the deployment's topics on a thread of its own, until `stop`.
pub fn follow(settings: KafkaSettings, stop: CancellationToken) -> Arc<Activity> {
    let activity = Arc::new(Activity::default());
    let shared = activity.clone();
    std::thread::spawn(move || {
        while !stop.is_cancelled() {
            if let Err(e) = tail(&settings, &shared, &stop) {
                tracing::warn!(error = %e, "console: following the results topic");
                shared.update(|s| {
                    s.problems.insert(RESULTS, e.to_string());
                });
                std::thread::sleep(SAMPLE_EVERY);
            }
        }
    });
    activity
}

/// Reads the results topic from an hour back and then as it grows, sampling the
/// group between polls; returns on an error (the caller starts over) or at `stop`.
fn tail(
    settings: &KafkaSettings,
    activity: &Activity,
    stop: &CancellationToken,
) -> Result<(), ReadError> {
    let consumer = topic::follower(settings, "kafka-worker-console")?;
    let results = &settings.results_topic;
    let since = topic::offsets_at(&consumer, results, Utc::now() - WINDOW)?;
    let mut assignment = TopicPartitionList::new();
    for (partition, at) in since {
        let (low, high) = consumer.fetch_watermarks(results, partition, SAMPLE_EVERY)?;
        let floor = low.max(high - BACKFILL_PER_PARTITION);
        let start = match at {
            Offset::Offset(at) => at.max(floor),
            _ => high,
        };
        assignment.add_partition_offset(results, partition, Offset::Offset(start))?;
    }
    consumer.assign(&assignment)?;
    activity.update(|s| {
        s.problems.remove(RESULTS);
    });
    let mut sampled: Option<Instant> = None;
    while !stop.is_cancelled() {
        if sampled.is_none_or(|at| at.elapsed() >= SAMPLE_EVERY) {
            sample(settings, &consumer, activity);
            sampled = Some(Instant::now());
        }
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(record)) => count(activity, &record),
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => return Err(e.into()),
        }
    }
    Ok(())
}

fn count(activity: &Activity, record: &rdkafka::message::BorrowedMessage<'_>) {
    let Some(at) = record
        .timestamp()
        .to_millis()
        .and_then(DateTime::from_timestamp_millis)
    else {
        return;
    };
    let counted: Option<Counted> = record
        .payload()
        .and_then(|payload| serde_json::from_slice(payload).ok());
    activity.update(|s| {
        s.records_read += 1;
        let Some(counted) = counted else { return };
        let minute = s.minutes.entry(at.timestamp() / 60 * 60).or_default();
        if counted.status == "succeeded" {
            minute.succeeded += 1;
        } else {
            let kind = counted
                .error
                .map_or_else(|| "unknown".to_owned(), |e| e.kind);
            *minute.failed.entry(kind).or_default() += 1;
        }
        if let Some(worker) = counted.worker {
            let seen = s.workers.entry(worker).or_insert((at, 0));
            seen.0 = seen.0.max(at);
            seen.1 += 1;
        }
    });
}

/// Samples the group's lag and members.
fn sample(settings: &KafkaSettings, consumer: &BaseConsumer<topic::Reader>, activity: &Activity) {
    let now = Utc::now();
    let lag = group::group_lag(settings)
        .map(|lag| {
            lag.partitions
                .iter()
                .map(|p| (p.partition, p.lag()))
                .collect()
        })
        .map_err(|e| e.to_string());
    let members =
        group::members(consumer, &settings.group, SAMPLE_EVERY).map_err(|e| e.to_string());
    let dispatcher = presence::look(consumer, settings).warning(settings);
    activity.update(|s| {
        s.sampled(now, lag, members);
        match dispatcher {
            Some(none_active) => s.problems.insert(SCHEDULER, none_active),
            None => s.problems.remove(SCHEDULER),
        };
    });
}

impl Summary {
    /// Takes in one sample (a failed part is a problem until that part answers again)
    /// and forgets what left the window.
    fn sampled(
        &mut self,
        now: DateTime<Utc>,
        lag: Result<BTreeMap<i32, i64>, String>,
        members: Result<Vec<Member>, String>,
    ) {
        match lag {
            Ok(lag) => {
                self.problems.remove(LAG);
                self.lag.push_back(LagSample { at: now, lag });
            }
            Err(e) => {
                self.problems.insert(LAG, e);
            }
        }
        match members {
            Ok(members) => {
                self.problems.remove(MEMBERS);
                self.members = members;
            }
            Err(e) => {
                self.problems.insert(MEMBERS, e);
            }
        }
        let horizon = now - WINDOW;
        while self.lag.front().is_some_and(|sample| sample.at < horizon) {
            self.lag.pop_front();
        }
        let first_minute = horizon.timestamp() / 60 * 60;
        self.minutes.retain(|minute, _| *minute >= first_minute);
        self.workers.retain(|_, (seen, _)| *seen >= horizon);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_names_its_cause_and_clears_when_that_part_answers_again() {
        let mut summary = Summary::default();
        let now = Utc::now();
        summary.sampled(
            now,
            Err("Kafka: Broker transport failure".into()),
            Ok(vec![]),
        );
        assert_eq!(
            summary.problems.get(LAG).map(String::as_str),
            Some("Kafka: Broker transport failure")
        );
        // The members still answer: only the lag is a problem.
        assert_eq!(summary.problems.len(), 1);
        let lag = BTreeMap::from([(0, 3)]);
        summary.sampled(now + SAMPLE_EVERY, Ok(lag), Ok(vec![]));
        assert!(summary.problems.is_empty(), "{:?}", summary.problems);
        assert_eq!(summary.lag.len(), 1);
    }
}
