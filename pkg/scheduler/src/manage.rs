//! `kafka-worker schedules …`: the operator's commands on the schedules topic. They
//! write definitions only; the active dispatcher picks changes up as they land.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use mcp_jobs_kafka::publish::{self, PublishError, Published};
use mcp_jobs_kafka::KafkaSettings;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde::Serialize;

use crate::catalog::{Catalog, Definition, Key, State};
use crate::schedule::{self, InvalidSchedule, JobLimit, Schedule};
use mcp_jobs_kafka::topic;

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("the schedules file is not valid; nothing was changed:\n{}", list(.0))]
    Invalid(Vec<InvalidSchedule>),
    #[error("no schedule named {0:?}")]
    Unknown(String),
    #[error("schedule {name:?} is stored but no longer valid: {error}")]
    Stored {
        name: String,
        error: InvalidSchedule,
    },
    #[error(transparent)]
    Read(#[from] mcp_jobs_kafka::topic::ReadError),
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("publishing the triggered job: {0}")]
    Publish(#[from] PublishError),
}

fn list(errors: &[InvalidSchedule]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What `apply` changed.
#[derive(Debug, Default, Serialize)]
pub struct Applied {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    pub deleted: Vec<String>,
    /// What is valid but likely not meant: a schedule whose `endAt` has passed.
    pub warnings: Vec<String>,
}

/// One line of `schedules list`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub paused: bool,
    pub last_fired: Option<DateTime<Utc>>,
    pub last_handled: Option<DateTime<Utc>>,
    /// The next occurrence still to fire (it may be due already, if the dispatcher is
    /// catching up or none is running).
    pub next: Option<DateTime<Utc>>,
    /// The next occurrences from `next` on (at most [`UPCOMING`]), each also on the
    /// schedule's own clock.
    pub upcoming: Vec<Upcoming>,
    /// Why the stored definition cannot run, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
}

/// How many occurrences [`Listed::upcoming`] holds.
pub const UPCOMING: usize = 5;

/// An occurrence to come, in UTC and in the schedule's time zone.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Upcoming {
    pub at: DateTime<Utc>,
    /// `2026-03-29 03:00:00 CEST`.
    pub local: String,
}

/// The schedules topic, read and written from the command line.
pub struct Schedules<'a> {
    settings: &'a KafkaSettings,
    producer: FutureProducer,
}

impl<'a> Schedules<'a> {
    pub fn new(settings: &'a KafkaSettings) -> Result<Self, ManageError> {
        let producer = settings.acked_producer_config().create()?;
        Ok(Self { settings, producer })
    }

    /// Everything on the schedules topic now.
    pub fn catalog(&self) -> Result<Catalog, ManageError> {
        let consumer = topic::reader(self.settings, "kafka-worker-schedules")?;
        let topic = &self.settings.schedules_topic;
        Ok(tokio::task::block_in_place(|| {
            Catalog::load(&consumer, topic)
        })?)
    }

    /// The schedules of `file`, each checked (its job must fit the worker's limits):
    /// what [`Schedules::apply`] takes.
    pub fn parse(&self, file: &str) -> Result<Vec<Schedule>, ManageError> {
        // A job must fit the worker's limit, and the broker's record limit with room for
        // the record's key and headers (RESULT_MAX_BYTES keeps that room).
        let (message, result) = (
            self.settings.limits.job_bytes,
            self.settings.limits.outcome_bytes,
        );
        let limit = if message <= result {
            JobLimit {
                bytes: message,
                setting: "MAX_MESSAGE_BYTES",
            }
        } else {
            JobLimit {
                bytes: result,
                setting: "RESULT_MAX_BYTES",
            }
        };
        schedule::parse_file(file, limit).map_err(ManageError::Invalid)
    }

    /// Upserts every schedule of a parsed file (keeping each one's paused state and
    /// creation time); with `prune`, deletes those the file does not name. The whole
    /// file was checked by [`Schedules::parse`], so nothing changes if any of it is wrong.
    pub async fn apply(
        &self,
        schedules: Vec<Schedule>,
        prune: bool,
    ) -> Result<Applied, ManageError> {
        let catalog = self.catalog()?;
        let now = Utc::now();
        let mut applied = Applied::default();
        for schedule in schedules {
            let name = schedule.name().to_owned();
            if let Some(end) = schedule.end_at.filter(|end| *end <= now) {
                applied.warnings.push(format!(
                    "{name}: endAt {} has passed: it will never fire",
                    end.to_rfc3339()
                ));
            }
            let existing = catalog.definitions.get(&name);
            let list = match existing {
                Some(old) if old.schedule == schedule.spec => {
                    applied.unchanged.push(name);
                    continue;
                }
                Some(_) => &mut applied.updated,
                None => &mut applied.created,
            };
            let definition = Definition {
                schedule: schedule.spec,
                paused: existing.is_some_and(|d| d.paused),
                created_at: existing.map_or(now, |d| d.created_at),
                resumed_at: existing.and_then(|d| d.resumed_at),
            };
            self.write_definition(&name, &definition).await?;
            list.push(name);
        }
        if prune {
            let named: BTreeSet<String> = applied
                .created
                .iter()
                .chain(&applied.updated)
                .chain(&applied.unchanged)
                .cloned()
                .collect();
            for name in catalog.definitions.keys().filter(|n| !named.contains(*n)) {
                self.tombstones(name).await?;
                applied.deleted.push(name.clone());
            }
        }
        Ok(applied)
    }

    /// Every schedule, by name.
    pub fn list(&self) -> Result<Vec<Listed>, ManageError> {
        Ok(listing(&self.catalog()?))
    }

    /// Pauses (`true`) or resumes a schedule. Occurrences while paused never fire.
    pub async fn set_paused(&self, name: &str, paused: bool) -> Result<bool, ManageError> {
        let catalog = self.catalog()?;
        let mut definition = catalog
            .definitions
            .get(name)
            .cloned()
            .ok_or_else(|| ManageError::Unknown(name.to_owned()))?;
        if definition.paused == paused {
            return Ok(false);
        }
        definition.paused = paused;
        if !paused {
            definition.resumed_at = Some(Utc::now());
        }
        self.write_definition(name, &definition).await?;
        Ok(true)
    }

    /// Fires `name` once now, outside its cron: a job `<name>@<now, to the millisecond>`
    /// published straight to the jobs topic (paused or not; overlap is not checked).
    pub async fn trigger(&self, name: &str) -> Result<Published, ManageError> {
        let catalog = self.catalog()?;
        let schedule = match catalog.schedule(name) {
            None => return Err(ManageError::Unknown(name.to_owned())),
            Some(Err(error)) => {
                return Err(ManageError::Stored {
                    name: name.to_owned(),
                    error,
                })
            }
            Some(Ok(schedule)) => schedule,
        };
        let now = Utc::now()
            .duration_trunc(chrono::Duration::milliseconds(1))
            .unwrap_or_else(|_| Utc::now());
        // Always with milliseconds: a trigger never takes the jobID of an occurrence.
        let job_id = format!(
            "{name}@{}",
            now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
        let job = schedule::occurrence_job(&schedule.spec.job, &job_id, now);
        Ok(publish::publish(self.settings, &job, Some(name)).await?)
    }

    /// Deletes the schedule and its state.
    pub async fn delete(&self, name: &str) -> Result<(), ManageError> {
        if !self.catalog()?.definitions.contains_key(name) {
            return Err(ManageError::Unknown(name.to_owned()));
        }
        self.tombstones(name).await
    }

    /// Tombstones the record under `key`, whatever it holds: the way to remove one that
    /// cannot be read as a schedule (and is warned about on every load).
    pub async fn delete_record(&self, key: &str) -> Result<(), ManageError> {
        self.send(key, None).await
    }

    async fn write_definition(
        &self,
        name: &str,
        definition: &Definition,
    ) -> Result<(), ManageError> {
        // A definition always serializes: strings, maps and times.
        let value = serde_json::to_vec(definition).unwrap_or_default();
        self.send(name, Some(&value)).await
    }

    async fn tombstones(&self, name: &str) -> Result<(), ManageError> {
        self.send(name, None).await?;
        self.send(&Key::state(name), None).await
    }

    async fn send(&self, key: &str, value: Option<&[u8]>) -> Result<(), ManageError> {
        let mut record: FutureRecord<'_, str, [u8]> =
            FutureRecord::to(&self.settings.schedules_topic).key(key);
        if let Some(value) = value {
            record = record.payload(value);
        }
        self.producer
            .send(record, Timeout::After(Duration::from_secs(30)))
            .await
            .map_err(|(e, _)| e)?;
        Ok(())
    }
}

/// Every schedule of `catalog`, by name, with its last and next occurrence.
pub fn listing(catalog: &Catalog) -> Vec<Listed> {
    let now = Utc::now();
    catalog
        .definitions
        .iter()
        .map(|(name, definition)| {
            let state = catalog.states.get(name).copied().unwrap_or_default();
            let compiled = catalog.schedule(name);
            let (next, upcoming) = match &compiled {
                Some(Ok(schedule)) => {
                    let next = next_due(schedule, definition, &state, now);
                    (next, upcoming(schedule, next))
                }
                _ => (None, Vec::new()),
            };
            Listed {
                name: name.clone(),
                cron: definition.schedule.cron.clone(),
                timezone: definition
                    .schedule
                    .timezone
                    .clone()
                    .unwrap_or_else(|| "UTC".into()),
                paused: definition.paused,
                last_fired: state.last_fired,
                last_handled: state.last_handled,
                next,
                upcoming,
                invalid: compiled.and_then(Result::err).map(|e| e.to_string()),
            }
        })
        .collect()
}

/// [`UPCOMING`] occurrences from `next` on.
fn upcoming(schedule: &Schedule, next: Option<DateTime<Utc>>) -> Vec<Upcoming> {
    std::iter::successors(next, |&at| schedule.next_after(at))
        .take(UPCOMING)
        .map(|at| Upcoming {
            at,
            local: schedule.in_zone(at),
        })
        .collect()
}

/// The next occurrence to fire, as `list` shows it: one still inside its catch-up
/// window, or the next in the future.
fn next_due(
    schedule: &Schedule,
    definition: &Definition,
    state: &State,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if definition.paused {
        return None;
    }
    let from = definition
        .handled_until(state)
        .max(schedule.catchup_start(now));
    schedule.next_after(from)
}
