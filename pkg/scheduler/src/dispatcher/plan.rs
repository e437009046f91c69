//! Planning: what a schedule's due occurrences come to at a given instant — fire, or
//! skip (outside the catch-up window, or overlapping a run without an outcome) — and
//! when each schedule fires next. Pure: no clock, no Kafka; the term turns a
//! [`Decision`] into records.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::catalog::{Definition, State};
use crate::schedule::{Overlap, Schedule};

/// Occurrences counted one by one when skipping a long outage; beyond, the count is a floor.
pub(super) const MAX_SKIPS_COUNTED: u64 = 1_000_000;

/// Why occurrences were skipped (the `reason` label of the skip metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SkipReason {
    /// Older than the catch-up window allows.
    OutsideCatchup,
    /// `overlap: skip` while the last run has no outcome.
    Overlap,
}

impl SkipReason {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::OutsideCatchup => "outside_catchup",
            Self::Overlap => "overlap",
        }
    }
}

/// A schedule's due occurrences, and what is known of its last run.
pub(super) struct Due<'a> {
    pub schedule: &'a Schedule,
    pub definition: &'a Definition,
    pub state: State,
    /// The last run fired has no outcome seen yet.
    pub running: bool,
    /// The results topic has been read up to now: a run without an outcome is still
    /// going. Until then, an occurrence that would overlap waits.
    pub outcomes_known: bool,
}

/// One occurrence to fire now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Occurrence {
    pub nominal: DateTime<Utc>,
    /// How long after its time (with jitter) it fires.
    pub lateness: Duration,
}

/// What a schedule's due occurrences come to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Decision {
    /// Oldest first.
    pub fire: Vec<Occurrence>,
    pub skipped: Vec<(SkipReason, u64)>,
    /// More than [`MAX_SKIPS_COUNTED`] were outside the window: the count is a floor.
    pub count_capped: bool,
    /// The schedule's state once the fired occurrences are published.
    pub state: State,
}

/// Decides the occurrences of `due` that are due at `now`, firing at most `room`;
/// `None` when nothing is due (or all that is due waits for outcomes).
pub(super) fn decide(due: Due<'_>, now: DateTime<Utc>, room: usize) -> Option<Decision> {
    let Due {
        schedule,
        definition,
        mut state,
        mut running,
        outcomes_known,
    } = due;
    let before = state.last_handled;
    let window_start = schedule.catchup_start(now);
    let skips = schedule.overlap == Overlap::Skip;
    let mut from = definition.handled_until(&state);
    let mut fire = Vec::new();
    let (mut outside, mut overlapped, mut count_capped) = (0u64, 0u64, false);
    while let Some(nominal) = schedule.next_after(from) {
        let fires_at = schedule.fires_at(nominal);
        if fires_at > now || fire.len() >= room {
            break;
        }
        from = nominal;
        if nominal < window_start {
            outside += 1;
            if outside >= MAX_SKIPS_COUNTED {
                from = window_start;
                count_capped = true;
            }
            state.last_handled = Some(from);
            continue;
        }
        if skips && running {
            if !outcomes_known {
                break;
            }
            overlapped += 1;
            state.last_handled = Some(nominal);
            continue;
        }
        fire.push(Occurrence {
            nominal,
            lateness: (now - fires_at).to_std().unwrap_or_default(),
        });
        state.last_handled = Some(nominal);
        state.last_fired = Some(nominal);
        state.last_fired_at = Some(now);
        running = skips;
    }
    if state.last_handled == before {
        return None;
    }
    let skipped = [
        (SkipReason::OutsideCatchup, outside),
        (SkipReason::Overlap, overlapped),
    ]
    .into_iter()
    .filter(|(_, count)| *count > 0)
    .collect();
    Some(Decision {
        fire,
        skipped,
        count_capped,
        state,
    })
}

/// When the schedule's next occurrence fires (with its jitter): never while paused.
pub(super) fn next_fire(
    schedule: &Schedule,
    definition: &Definition,
    state: &State,
) -> Option<DateTime<Utc>> {
    if definition.paused {
        return None;
    }
    let nominal = schedule.next_after(definition.handled_until(state))?;
    Some(schedule.fires_at(nominal))
}

/// When each schedule's next occurrence fires, by name and in time order, so that
/// finding what is due costs no scan of every schedule.
#[derive(Default)]
pub(super) struct Plans {
    by_name: HashMap<String, DateTime<Utc>>,
    by_time: BTreeSet<(DateTime<Utc>, String)>,
}

impl Plans {
    pub(super) fn set(&mut self, name: &str, at: Option<DateTime<Utc>>) {
        if let Some(old) = self.by_name.remove(name) {
            self.by_time.remove(&(old, name.to_owned()));
        }
        if let Some(at) = at {
            self.by_name.insert(name.to_owned(), at);
            self.by_time.insert((at, name.to_owned()));
        }
    }

    pub(super) fn next(&self) -> Option<DateTime<Utc>> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// The schedules due at `now`, earliest first.
    pub(super) fn due(&self, now: DateTime<Utc>) -> Vec<String> {
        self.by_time
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, name)| name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::ScheduleSpec;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap()
    }

    /// A schedule `name` with `fields` on top of a list-tools job, created at `created`.
    fn schedule(fields: serde_json::Value, created: &str) -> (Schedule, Definition) {
        let mut spec = serde_json::json!({
            "name": "nightly",
            "job": {"jobType": "list-tools", "payload": {"mcpServers": {"time": {"command": "mcp-server-time"}}}},
        });
        if let (Some(spec), Some(fields)) = (spec.as_object_mut(), fields.as_object()) {
            spec.extend(fields.clone());
        }
        let spec: ScheduleSpec = serde_json::from_value(spec).unwrap();
        let definition = Definition {
            schedule: spec.clone(),
            paused: false,
            created_at: utc(created),
            resumed_at: None,
        };
        (Schedule::compile(spec, "").unwrap(), definition)
    }

    fn handled(at: &str) -> State {
        State {
            last_handled: Some(utc(at)),
            ..State::default()
        }
    }

    fn due<'a>(schedule: &'a Schedule, definition: &'a Definition, state: State) -> Due<'a> {
        Due {
            schedule,
            definition,
            state,
            running: false,
            outcomes_known: true,
        }
    }

    fn fired(decision: &Decision) -> Vec<DateTime<Utc>> {
        decision.fire.iter().map(|o| o.nominal).collect()
    }

    #[test]
    fn an_occurrence_fires_at_its_time_and_not_before() {
        let (s, d) = schedule(
            serde_json::json!({"cron": "*/5 * * * *"}),
            "2026-06-01T10:00:30Z",
        );
        assert_eq!(
            decide(
                due(&s, &d, State::default()),
                utc("2026-06-01T10:04:59Z"),
                100
            ),
            None
        );
        let decision = decide(
            due(&s, &d, State::default()),
            utc("2026-06-01T10:05:00Z"),
            100,
        )
        .unwrap();
        assert_eq!(fired(&decision), [utc("2026-06-01T10:05:00Z")]);
        assert_eq!(decision.fire[0].lateness, Duration::ZERO);
        assert!(decision.skipped.is_empty());
        let state = decision.state;
        assert_eq!(state.last_handled, Some(utc("2026-06-01T10:05:00Z")));
        assert_eq!(state.last_fired, Some(utc("2026-06-01T10:05:00Z")));
        assert_eq!(state.last_fired_at, Some(utc("2026-06-01T10:05:00Z")));
        assert_eq!(next_fire(&s, &d, &state), Some(utc("2026-06-01T10:10:00Z")));
    }

    #[test]
    fn a_new_schedule_does_not_catch_up_on_its_past() {
        let (s, d) = schedule(
            serde_json::json!({"cron": "*/5 * * * *"}),
            "2026-06-01T10:07:00Z",
        );
        let decision = decide(
            due(&s, &d, State::default()),
            utc("2026-06-01T10:12:00Z"),
            100,
        )
        .unwrap();
        assert_eq!(fired(&decision), [utc("2026-06-01T10:10:00Z")]);
    }

    #[test]
    fn missed_occurrences_inside_the_window_fire_late_oldest_first_older_ones_are_skipped() {
        let (s, d) = schedule(
            serde_json::json!({"cron": "*/5 * * * *", "catchupWindow": "11m", "overlap": "allow"}),
            "2026-06-01T00:00:00Z",
        );
        // Down from 10:00 to 10:22: 10:05 and 10:10 are older than 10:11.
        let decision = decide(
            due(&s, &d, handled("2026-06-01T10:00:00Z")),
            utc("2026-06-01T10:22:00Z"),
            100,
        )
        .unwrap();
        assert_eq!(
            fired(&decision),
            [utc("2026-06-01T10:15:00Z"), utc("2026-06-01T10:20:00Z")]
        );
        assert_eq!(decision.fire[0].lateness, Duration::from_secs(7 * 60));
        assert_eq!(decision.skipped, [(SkipReason::OutsideCatchup, 2)]);
        assert_eq!(
            decision.state.last_handled,
            Some(utc("2026-06-01T10:20:00Z"))
        );
    }

    #[test]
    fn an_outage_longer_than_the_window_skips_everything_and_fires_nothing_late() {
        let (s, d) = schedule(
            serde_json::json!({"cron": "0 * * * *"}),
            "2026-06-01T00:00:00Z",
        );
        let decision = decide(
            due(&s, &d, handled("2026-06-01T00:00:00Z")),
            utc("2026-06-01T05:30:00Z"),
            100,
        )
        .unwrap();
        assert!(decision.fire.is_empty());
        assert_eq!(decision.skipped, [(SkipReason::OutsideCatchup, 5)]);
        assert_eq!(
            decision.state.last_handled,
            Some(utc("2026-06-01T05:00:00Z"))
        );
        assert_eq!(decision.state.last_fired, None, "nothing fired");
        assert_eq!(
            next_fire(&s, &d, &decision.state),
            Some(utc("2026-06-01T06:00:00Z"))
        );
    }

    #[test]
    fn overlap_skip_waits_for_outcomes_then_skips_while_the_last_run_is_going() {
        let (s, d) = schedule(
            serde_json::json!({"cron": "*/5 * * * *"}),
            "2026-06-01T00:00:00Z",
        );
        let now = utc("2026-06-01T10:05:00Z");
        let state = handled("2026-06-01T10:00:00Z");
        let running = |outcomes_known| Due {
            running: true,
            outcomes_known,
            ..due(&s, &d, state)
        };
        assert_eq!(
            decide(running(false), now, 100),
            None,
            "while outcomes are read, an overlapping occurrence waits"
        );
        let decision = decide(running(true), now, 100).unwrap();
        assert!(decision.fire.is_empty());
        assert_eq!(decision.skipped, [(SkipReason::Overlap, 1)]);
        assert_eq!(decision.state.last_handled, Some(now));
        // Two due at once with nothing running: the first fires, the second overlaps it.
        let decision = decide(due(&s, &d, handled("2026-06-01T09:55:00Z")), now, 100).unwrap();
        assert_eq!(fired(&decision), [utc("2026-06-01T10:00:00Z")]);
        assert_eq!(decision.skipped, [(SkipReason::Overlap, 1)]);
    }

    #[test]
    fn overlap_allow_fires_while_the_last_run_is_going() {
        let (s, d) = schedule(
            serde_json::json!({"cron": "*/5 * * * *", "overlap": "allow"}),
            "2026-06-01T00:00:00Z",
        );
        let decision = decide(
            Due {
                running: true,
                outcomes_known: false,
                ..due(&s, &d, handled("2026-06-01T09:55:00Z"))
            },
            utc("2026-06-01T10:05:00Z"),
            100,
        )
        .unwrap();
        assert_eq!(
            fired(&decision),
            [utc("2026-06-01T10:00:00Z"), utc("2026-06-01T10:05:00Z")]
        );
    }

    #[test]
    fn jitter_delays_firing_by_the_occurrences_own_fixed_amount() {
        let (s, d) = schedule(
            serde_json::json!({"cron": "0 * * * *", "jitter": "10m", "catchupWindow": "1h"}),
            "2026-06-01T00:00:00Z",
        );
        let state = handled("2026-06-01T10:00:00Z");
        let nominal = utc("2026-06-01T11:00:00Z");
        let fires_at = s.fires_at(nominal);
        assert!(fires_at > nominal && fires_at < utc("2026-06-01T11:10:00Z"));
        assert_eq!(next_fire(&s, &d, &state), Some(fires_at));
        let just_before = fires_at - chrono::Duration::milliseconds(1);
        assert_eq!(decide(due(&s, &d, state), just_before, 100), None);
        let decision = decide(
            due(&s, &d, state),
            fires_at + chrono::Duration::seconds(2),
            100,
        )
        .unwrap();
        assert_eq!(
            fired(&decision),
            [nominal],
            "its jobID keeps the nominal time"
        );
        assert_eq!(
            decision.fire[0].lateness,
            Duration::from_secs(2),
            "late from its jittered time"
        );
    }

    #[test]
    fn start_and_end_bound_the_occurrences() {
        let (s, d) = schedule(
            serde_json::json!({
                "cron": "0 * * * *",
                "startAt": "2026-06-01T12:00:00Z",
                "endAt": "2026-06-01T14:00:00Z",
                "catchupWindow": "1d",
                "overlap": "allow",
            }),
            "2026-06-01T00:00:00Z",
        );
        assert_eq!(
            decide(
                due(&s, &d, State::default()),
                utc("2026-06-01T11:59:00Z"),
                100
            ),
            None
        );
        let decision = decide(
            due(&s, &d, State::default()),
            utc("2026-06-01T18:00:00Z"),
            100,
        )
        .unwrap();
        assert_eq!(
            fired(&decision),
            [
                utc("2026-06-01T12:00:00Z"),
                utc("2026-06-01T13:00:00Z"),
                utc("2026-06-01T14:00:00Z")
            ],
            "the start is inclusive, and so is the end"
        );
        assert_eq!(
            next_fire(&s, &d, &decision.state),
            None,
            "nothing after the end"
        );
    }

    /// `30 2 * * *` in Europe/Berlin: 02:30 does not exist on 29 March 2026 (it runs
    /// at the first instant after the gap, 03:00 CEST, 01:00Z) and happens twice on 25
    /// October (it runs once, at the first, 00:30Z). A dispatcher down across either
    /// night catches up exactly those.
    #[test]
    fn dst_changes_both_ways_fire_each_day_once() {
        let (s, d) = schedule(
            serde_json::json!({"cron": "30 2 * * *", "timezone": "Europe/Berlin", "catchupWindow": "6h"}),
            "2026-01-01T00:00:00Z",
        );
        let spring = decide(
            due(&s, &d, handled("2026-03-28T01:30:00Z")),
            utc("2026-03-29T05:00:00Z"),
            100,
        )
        .unwrap();
        assert_eq!(fired(&spring), [utc("2026-03-29T01:00:00Z")]);
        assert_eq!(
            next_fire(&s, &d, &spring.state),
            Some(utc("2026-03-30T00:30:00Z")),
            "CEST from then on"
        );
        let autumn = decide(
            due(&s, &d, handled("2026-10-24T00:30:00Z")),
            utc("2026-10-25T05:00:00Z"),
            100,
        )
        .unwrap();
        assert_eq!(
            fired(&autumn),
            [utc("2026-10-25T00:30:00Z")],
            "once, not at the repeated 02:30"
        );
        assert_eq!(
            next_fire(&s, &d, &autumn.state),
            Some(utc("2026-10-26T01:30:00Z")),
            "CET from then on"
        );
    }

    #[test]
    fn a_transaction_takes_at_most_its_room_and_the_rest_follows() {
        let (s, d) = schedule(
            serde_json::json!({"cron": "*/5 * * * *", "catchupWindow": "1h", "overlap": "allow"}),
            "2026-06-01T00:00:00Z",
        );
        let now = utc("2026-06-01T11:00:00Z");
        let part = decide(due(&s, &d, handled("2026-06-01T10:00:00Z")), now, 5).unwrap();
        assert_eq!(part.fire.len(), 5);
        assert_eq!(part.state.last_handled, Some(utc("2026-06-01T10:25:00Z")));
        let rest = decide(due(&s, &d, part.state), now, 100).unwrap();
        assert_eq!(rest.fire.len(), 7, "10:30 to 11:00");
        assert_eq!(rest.state.last_handled, Some(now));
    }

    #[test]
    fn a_paused_schedule_never_fires() {
        let (s, mut d) = schedule(
            serde_json::json!({"cron": "* * * * *"}),
            "2026-06-01T00:00:00Z",
        );
        d.paused = true;
        assert_eq!(next_fire(&s, &d, &State::default()), None);
    }

    #[test]
    fn plans_are_due_earliest_first_and_replaced_by_name() {
        let mut plans = Plans::default();
        plans.set("b", Some(utc("2026-06-01T10:00:00Z")));
        plans.set("a", Some(utc("2026-06-01T10:05:00Z")));
        plans.set("c", Some(utc("2026-06-01T09:00:00Z")));
        plans.set("c", Some(utc("2026-06-01T11:00:00Z")));
        assert_eq!(plans.next(), Some(utc("2026-06-01T10:00:00Z")));
        assert_eq!(plans.due(utc("2026-06-01T10:30:00Z")), ["b", "a"]);
        plans.set("b", None);
        assert_eq!(plans.due(utc("2026-06-01T10:30:00Z")), ["a"]);
    }
}
