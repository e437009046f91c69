//! The schedules topic (compacted, one partition) and what it holds, read back into a
//! [`Catalog`]. Two records per schedule, so that neither writer can overwrite the
//! other's (compaction keeps the latest of each key):
//! - key `<name>`: the definition and whether it is paused, written by
//!   `kafka-worker schedules …`;
//! - key `<name>/state`: the last occurrence handled (fired or skipped), written only
//!   by the active dispatcher, in the transaction that publishes the occurrence.
//!
//! A tombstone (null value) deletes either. Records nobody can read are logged and
//! skipped: a bad record never stops the scheduler.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use mcp_jobs_kafka::topic::{self, ReadError, Reader};
use rdkafka::consumer::BaseConsumer;
use rdkafka::Message;
use serde::{Deserialize, Serialize};

use crate::schedule::{InvalidSchedule, Schedule, ScheduleSpec};

const STATE_SUFFIX: &str = "/state";

/// A schedule's definition record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Definition {
    pub schedule: ScheduleSpec,
    #[serde(default)]
    pub paused: bool,
    /// Occurrences before this never fire (a new schedule does not catch up on its past).
    pub created_at: DateTime<Utc>,
    /// Set by `resume`: occurrences while paused never fire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_at: Option<DateTime<Utc>>,
}

impl Definition {
    /// Where the schedule's occurrences start: after the last one handled, never before
    /// it was created or last resumed.
    pub fn handled_until(&self, state: &State) -> DateTime<Utc> {
        [Some(self.created_at), self.resumed_at, state.last_handled]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(self.created_at)
    }
}

/// The dispatcher's record of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// The latest occurrence fired or skipped: later ones are still to come.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled: Option<DateTime<Utc>>,
    /// The latest occurrence fired, and when it was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fired: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fired_at: Option<DateTime<Utc>>,
    /// The latest occurrence fired whose outcome the dispatcher has seen: a later
    /// `last_fired` is a run that may still be going (`overlap: skip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_outcome: Option<DateTime<Utc>>,
}

impl State {
    /// The later of two states: records of one schedule only ever move forward.
    pub fn merge(&mut self, other: State) {
        if other.last_handled > self.last_handled {
            self.last_handled = other.last_handled;
        }
        if other.last_fired > self.last_fired {
            self.last_fired = other.last_fired;
            self.last_fired_at = other.last_fired_at;
        }
        if other.last_outcome > self.last_outcome {
            self.last_outcome = other.last_outcome;
        }
    }

    /// The last run fired, if its outcome has not been seen.
    pub fn unfinished(&self) -> Option<DateTime<Utc>> {
        self.last_fired
            .filter(|fired| self.last_outcome < Some(*fired))
    }
}

/// Which record a key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Definition(String),
    State(String),
}

impl Key {
    pub fn parse(key: &str) -> Self {
        match key.strip_suffix(STATE_SUFFIX) {
            Some(name) => Self::State(name.to_owned()),
            None => Self::Definition(key.to_owned()),
        }
    }

    pub fn state(name: &str) -> String {
        format!("{name}{STATE_SUFFIX}")
    }
}

/// What a record changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Definition(String),
    State(String),
}

/// Every schedule the topic describes, with its state.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub definitions: BTreeMap<String, Definition>,
    pub states: BTreeMap<String, State>,
}

impl Catalog {
    /// Applies one record of the topic; returns what it changed, if anything.
    pub fn apply(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) -> Option<Change> {
        let Some(key) = key.and_then(|k| std::str::from_utf8(k).ok()) else {
            tracing::warn!("a record without a UTF-8 key on the schedules topic: skipped");
            return None;
        };
        match (Key::parse(key), value) {
            (Key::Definition(name), None) => self
                .definitions
                .remove(&name)
                .map(|_| Change::Definition(name)),
            (Key::State(name), None) => self.states.remove(&name).map(|_| Change::State(name)),
            (Key::Definition(name), Some(value)) => {
                match serde_json::from_slice::<Definition>(value) {
                    Ok(definition) => {
                        (self.definitions.get(&name) != Some(&definition)).then(|| {
                            self.definitions.insert(name.clone(), definition);
                            Change::Definition(name)
                        })
                    }
                    Err(e) => {
                        tracing::warn!(schedule = %name, error = %e, "unreadable schedule definition: skipped");
                        None
                    }
                }
            }
            (Key::State(name), Some(value)) => match serde_json::from_slice::<State>(value) {
                Ok(state) => {
                    let current = self.states.entry(name.clone()).or_default();
                    let before = *current;
                    current.merge(state);
                    (*current != before).then_some(Change::State(name))
                }
                Err(e) => {
                    tracing::warn!(schedule = %name, error = %e, "unreadable schedule state: skipped");
                    None
                }
            },
        }
    }

    /// The checked schedule `name`, if its stored definition is still valid (it was when
    /// applied; a newer version of this program may be stricter).
    pub fn schedule(&self, name: &str) -> Option<Result<Schedule, InvalidSchedule>> {
        let definition = self.definitions.get(name)?;
        Some(Schedule::compile(definition.schedule.clone(), ""))
    }

    /// Reads the whole topic (committed records only) with `consumer`, which is
    /// assigned nothing yet.
    pub fn load(consumer: &BaseConsumer<Reader>, topic: &str) -> Result<Self, ReadError> {
        let mut catalog = Self::default();
        let starts = topic::from_beginning(consumer, topic)?;
        topic::read_range(consumer, topic, &starts, usize::MAX, |message| {
            catalog.apply(message.key(), message.payload());
        })?;
        Ok(catalog)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occurrences_start_after_the_last_handled_never_before_creation_or_resume() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let spec = serde_json::from_value(serde_json::json!({
            "name": "nightly", "cron": "0 3 * * *", "job": { "jobType": "list-tools" }
        }))
        .unwrap();
        let mut definition = Definition {
            schedule: spec,
            paused: false,
            created_at: t("2026-12-01T00:00:00Z"),
            resumed_at: None,
        };
        let never_handled = State::default();
        assert_eq!(
            definition.handled_until(&never_handled),
            t("2026-12-01T00:00:00Z")
        );
        let handled = State {
            last_handled: Some(t("2026-12-02T03:00:00Z")),
            ..State::default()
        };
        assert_eq!(
            definition.handled_until(&handled),
            t("2026-12-02T03:00:00Z")
        );
        definition.resumed_at = Some(t("2026-12-05T12:00:00Z"));
        assert_eq!(
            definition.handled_until(&handled),
            t("2026-12-05T12:00:00Z")
        );
    }

    #[test]
    fn keys_and_merges() {
        assert_eq!(Key::parse("nightly"), Key::Definition("nightly".into()));
        assert_eq!(Key::parse("nightly/state"), Key::State("nightly".into()));
        assert_eq!(Key::state("nightly"), "nightly/state");

        let t = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc));
        let mut catalog = Catalog::default();
        let newer = State {
            last_handled: t("2026-12-02T03:00:00Z"),
            last_fired: t("2026-12-02T03:00:00Z"),
            last_fired_at: t("2026-12-02T03:00:01Z"),
            last_outcome: None,
        };
        let older = State {
            last_handled: t("2026-12-01T03:00:00Z"),
            last_fired: t("2026-12-01T03:00:00Z"),
            last_fired_at: t("2026-12-01T03:00:01Z"),
            last_outcome: t("2026-12-01T03:00:00Z"),
        };
        for state in [newer, older] {
            let value = serde_json::to_vec(&state).unwrap();
            catalog.apply(Some(b"nightly/state"), Some(&value));
        }
        let merged = catalog.states["nightly"];
        assert_eq!(
            merged.last_fired, newer.last_fired,
            "a state never moves back"
        );
        assert_eq!(merged.last_outcome, older.last_outcome);
        assert_eq!(merged.unfinished(), newer.last_fired);
        let newer = merged;
        let value = serde_json::to_vec(&newer).unwrap();
        assert_eq!(
            catalog.apply(Some(b"nightly/state"), Some(&value)),
            None,
            "no change"
        );
        assert_eq!(
            catalog.apply(Some(b"nightly/state"), None),
            Some(Change::State("nightly".into()))
        );
        assert!(catalog.states.is_empty());
        assert_eq!(catalog.apply(Some(b"x"), Some(b"not json")), None);
        assert_eq!(catalog.apply(None, Some(b"{}")), None);
    }
}
