//! A schedule: what an operator writes (`ScheduleSpec`, in a JSON or YAML file) and
//! what the dispatcher computes with (`Schedule`: cron in its time zone, windows,
//! jitter). Every field is checked up front, and a bad one is named.
//!
//! Time zones and DST follow croner's rules: a fixed-time occurrence (`0 2 * * *`) that
//! falls in a spring-forward gap runs at the first instant after the gap; one that
//! falls in a fall-back overlap runs once, at the earlier instant; interval patterns
//! (`*/15 * * * *`) run on the real instants they match.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use mcp_jobs_contract::ScheduledJobEnvelope;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The longest schedule name: it goes into jobIDs (at most 256 characters) with an
/// `@` and a 20-character timestamp.
pub const MAX_NAME_CHARS: usize = 200;
/// Catch-up window when a schedule names none.
pub const DEFAULT_CATCHUP_WINDOW: Duration = Duration::from_secs(5 * 60);
/// The longest catch-up window (and so jitter): a year.
pub const MAX_CATCHUP_WINDOW: Duration = Duration::from_secs(366 * 24 * 3600);

/// What a schedule does when an occurrence comes while the previous run has no outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// No new run while the previous one has no outcome (the occurrence is skipped).
    #[default]
    Skip,
    /// Runs may overlap.
    Allow,
}

/// A schedule as written in a schedules file and stored on the schedules topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleSpec {
    pub name: String,
    /// Five fields, or six with seconds first; `@hourly`, `@daily`… too.
    pub cron: String,
    /// IANA zone the cron is read in; UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// An envelope without `jobID` (each occurrence gets its own) or `scheduledAt`.
    pub job: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<Overlap>,
    /// How late a missed occurrence may still fire, e.g. `10m` (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catchup_window: Option<String>,
    /// Up to this much later than nominal, fixed per occurrence, e.g. `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<String>,
    /// No occurrence before this RFC 3339 time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// No occurrence after this RFC 3339 time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_at: Option<String>,
}

/// A field of a schedule that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidSchedule {
    /// The field's path, e.g. `schedules[1].cron` or `schedules[0].job.payload.mcpServers`.
    pub field: String,
    pub reason: String,
}

/// A checked schedule, ready to compute occurrences.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub spec: ScheduleSpec,
    cron: Cron,
    pub timezone: Tz,
    pub overlap: Overlap,
    pub catchup_window: Duration,
    pub jitter: Duration,
    pub start_at: Option<DateTime<Utc>>,
    pub end_at: Option<DateTime<Utc>>,
}

impl Schedule {
    /// Checks every field of `spec`; the first error names its field under `prefix`.
    pub fn compile(spec: ScheduleSpec, prefix: &str) -> Result<Self, InvalidSchedule> {
        Self::compile_all(spec, prefix).map_err(|mut errors| errors.remove(0))
    }

    /// Checks every field of `spec`, and says every one that is wrong (never none).
    pub fn compile_all(spec: ScheduleSpec, prefix: &str) -> Result<Self, Vec<InvalidSchedule>> {
        let mut errors = Vec::new();
        let mut invalid = |field: &str, reason: String| {
            errors.push(InvalidSchedule {
                field: format!("{prefix}{field}"),
                reason,
            });
        };
        if let Err(reason) = check_name(&spec.name) {
            invalid("name", reason);
        }
        let cron = match parse_cron(&spec.cron) {
            Ok(cron) => Some(cron),
            Err(reason) => {
                invalid("cron", reason);
                None
            }
        };
        let timezone = match &spec.timezone {
            None => Some(Tz::UTC),
            Some(zone) => Tz::from_str(zone)
                .map_err(|_| {
                    invalid(
                        "timezone",
                        format!("{zone:?} is not an IANA time zone (e.g. Europe/Berlin)"),
                    )
                })
                .ok(),
        };
        let mut duration = |field: &str, value: &Option<String>, default: Duration| match value {
            None => Some(default),
            Some(text) => humantime::parse_duration(text)
                .map_err(|e| {
                    invalid(
                        field,
                        format!("{text:?} is not a duration like 90s or 10m: {e}"),
                    )
                })
                .ok(),
        };
        let catchup_window = duration(
            "catchupWindow",
            &spec.catchup_window,
            DEFAULT_CATCHUP_WINDOW,
        );
        let jitter = duration("jitter", &spec.jitter, Duration::ZERO);
        if let Some(window) = catchup_window {
            if window < Duration::from_secs(1) || window > MAX_CATCHUP_WINDOW {
                invalid("catchupWindow", "must be from 1s to 366 days".into());
            } else if let Some(jitter) = jitter.filter(|jitter| *jitter >= window) {
                invalid(
                    "jitter",
                    format!(
                        "{} must be shorter than catchupWindow ({}), or jittered occurrences would be skipped",
                        humantime::format_duration(jitter),
                        humantime::format_duration(window)
                    ),
                );
            }
        }
        let mut time = |field: &str, value: &Option<String>| match value.as_deref() {
            None => Some(None),
            Some(text) => DateTime::parse_from_rfc3339(text)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| invalid(field, format!("{text:?} is not an RFC 3339 time: {e}")))
                .ok(),
        };
        let start_at = time("startAt", &spec.start_at);
        let end_at = time("endAt", &spec.end_at);
        if let (Some(Some(start)), Some(Some(end))) = (start_at, end_at) {
            if end <= start {
                invalid("endAt", "must be after startAt".into());
            }
        }
        if let Err((field, reason)) = check_job(&spec) {
            invalid(&field, reason);
        }
        match (cron, timezone, catchup_window, jitter, start_at, end_at) {
            (
                Some(cron),
                Some(timezone),
                Some(catchup_window),
                Some(jitter),
                Some(start_at),
                Some(end_at),
            ) if errors.is_empty() => Ok(Self {
                overlap: spec.overlap.unwrap_or_default(),
                spec,
                cron,
                timezone,
                catchup_window,
                jitter,
                start_at,
                end_at,
            }),
            _ => Err(errors),
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The first occurrence strictly after `after`, within `startAt`/`endAt`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let (from, inclusive) = match self.start_at {
            Some(start) if start > after => (start, true),
            _ => (after, false),
        };
        let next = self
            .cron
            .find_next_occurrence(&from.with_timezone(&self.timezone), inclusive)
            .ok()?
            .with_timezone(&Utc);
        match self.end_at {
            Some(end) if next > end => None,
            _ => Some(next),
        }
    }

    /// `at` on the schedule's own clock, as people there read it (`2026-03-29 03:00:00
    /// CEST`): the zone's abbreviation tells a DST shift.
    pub fn in_zone(&self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.timezone)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }

    /// When the occurrence at `nominal` fires: with its jitter.
    pub fn fires_at(&self, nominal: DateTime<Utc>) -> DateTime<Utc> {
        chrono::Duration::from_std(self.jitter_of(nominal))
            .ok()
            .and_then(|jitter| nominal.checked_add_signed(jitter))
            .unwrap_or(nominal)
    }

    /// The oldest occurrence that may still fire at `now`.
    pub fn catchup_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        chrono::Duration::from_std(self.catchup_window)
            .ok()
            .and_then(|window| now.checked_sub_signed(window))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// How long after `nominal` its occurrence fires: the same on every dispatcher.
    pub fn jitter_of(&self, nominal: DateTime<Utc>) -> Duration {
        let range = u64::try_from(self.jitter.as_millis()).unwrap_or(u64::MAX);
        if range == 0 {
            return Duration::ZERO;
        }
        let digest = Sha256::digest(job_id(self.name(), nominal).as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Duration::from_millis(u64::from_be_bytes(first) % range)
    }

    /// The job every occurrence runs, as a checked envelope (its id and time aside).
    pub fn sample_job(&self) -> Result<ScheduledJobEnvelope, mcp_jobs_contract::ContractError> {
        ScheduledJobEnvelope::from_slice(&self.job(DateTime::UNIX_EPOCH))
    }

    /// The job of the occurrence at `nominal`: the schedule's envelope with its jobID
    /// and `scheduledAt`.
    pub fn job(&self, nominal: DateTime<Utc>) -> Vec<u8> {
        occurrence_job(&self.spec.job, &job_id(self.name(), nominal), nominal)
    }
}

/// `<name>@<nominal time, RFC 3339 UTC>`: the idempotency key of an occurrence.
pub fn job_id(name: &str, nominal: DateTime<Utc>) -> String {
    format!("{name}@{}", rfc3339(nominal))
}

/// The schedule and nominal time of an occurrence's jobID ([`job_id`]); `None` for any
/// other jobID.
pub fn occurrence_of(job_id: &str) -> Option<(&str, DateTime<Utc>)> {
    let (name, at) = job_id.rsplit_once('@')?;
    let at = DateTime::parse_from_rfc3339(at).ok()?;
    (!name.is_empty()).then(|| (name, at.with_timezone(&Utc)))
}

/// `2026-12-02T03:00:00Z`, with milliseconds only when there are some.
pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The schedule's envelope with `jobID` and `scheduledAt` set.
pub fn occurrence_job(job: &Map<String, Value>, job_id: &str, due: DateTime<Utc>) -> Vec<u8> {
    let mut envelope = job.clone();
    envelope.insert("jobID".into(), job_id.into());
    envelope.insert("scheduledAt".into(), rfc3339(due).into());
    // A map of JSON values always serializes.
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// A cron pattern of 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds
/// first), or a nickname (`@hourly`…), that matches some date.
fn parse_cron(pattern: &str) -> Result<Cron, String> {
    let fields = pattern.split_whitespace().count();
    if !pattern.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
        return Err(format!(
            "{pattern:?} has {fields} fields: use 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)"
        ));
    }
    let cron = CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(pattern.trim())
        .map_err(|e| format!("{pattern:?} is not a cron pattern: {e}"))?;
    if cron
        .find_next_occurrence(&DateTime::UNIX_EPOCH, false)
        .is_err()
    {
        return Err(format!("{pattern:?} never matches a date"));
    }
    Ok(cron)
}

/// Letters, digits, `.`, `_` and `-`: a name that is safe in a jobID, a record key, a
/// metric label and a shell.
fn check_name(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(format!(
            "must be 1 to {MAX_NAME_CHARS} characters, got {chars}"
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(format!(
            "{name:?} has {c:?}: use letters, digits, '.', '_' and '-'"
        )),
        None => Ok(()),
    }
}

/// The job must be a valid envelope once the scheduler adds its id and time.
fn check_job(spec: &ScheduleSpec) -> Result<(), (String, String)> {
    for field in ["jobID", "scheduledAt"] {
        if spec.job.contains_key(field) {
            return Err((
                format!("job.{field}"),
                "is set by the scheduler for each occurrence; leave it out".into(),
            ));
        }
    }
    let sample = occurrence_job(
        &spec.job,
        &job_id(&spec.name, DateTime::UNIX_EPOCH),
        DateTime::UNIX_EPOCH,
    );
    ScheduledJobEnvelope::from_slice(&sample)
        .map(drop)
        .map_err(|e| {
            let field = e
                .field()
                .filter(|f| *f != "(message)")
                .map_or_else(|| "job".to_owned(), |f| format!("job.{f}"));
            (field, e.to_string())
        })
}

/// A schedules file: `{"schedules": [...]}`, in JSON or YAML.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    schedules: Vec<Value>,
}

/// The largest job an occurrence may carry, and the setting that says so.
#[derive(Debug, Clone, Copy)]
pub struct JobLimit {
    pub bytes: usize,
    /// `MAX_MESSAGE_BYTES` or `RESULT_MAX_BYTES`, whichever is lower.
    pub setting: &'static str,
}

/// Parses a schedules file and checks every schedule in it, names unique, each
/// occurrence's job within `limit` (a worker would refuse a larger one). All the
/// problems are returned at once, every field of every schedule, each naming its field.
pub fn parse_file(text: &str, limit: JobLimit) -> Result<Vec<Schedule>, Vec<InvalidSchedule>> {
    let document: Value = match serde_yaml_ng::from_str(text) {
        Ok(document) => document,
        Err(e) => {
            return Err(vec![InvalidSchedule {
                field: "(file)".into(),
                reason: format!("not JSON or YAML: {e}"),
            }])
        }
    };
    if !document.is_object() {
        return Err(vec![InvalidSchedule {
            field: "(file)".into(),
            reason: "must be an object: {\"schedules\": [...]}".into(),
        }]);
    }
    let file: ScheduleFile = serde_path_to_error::deserialize(document).map_err(|e| {
        vec![InvalidSchedule {
            field: path_or_file(&e.path().to_string()),
            reason: e.into_inner().to_string(),
        }]
    })?;
    let mut schedules = Vec::new();
    let mut names = std::collections::HashSet::new();
    let mut errors = Vec::new();
    for (i, value) in file.schedules.into_iter().enumerate() {
        let prefix = format!("schedules[{i}].");
        let spec = match serde_path_to_error::deserialize::<_, ScheduleSpec>(value) {
            Ok(spec) => spec,
            Err(e) => {
                let path = e.path().to_string();
                errors.push(InvalidSchedule {
                    field: format!(
                        "schedules[{i}]{}",
                        if path == "." {
                            String::new()
                        } else {
                            format!(".{path}")
                        }
                    ),
                    reason: e.into_inner().to_string(),
                });
                continue;
            }
        };
        if !names.insert(spec.name.clone()) {
            errors.push(InvalidSchedule {
                field: format!("{prefix}name"),
                reason: format!("{:?} is named twice", spec.name),
            });
        }
        match Schedule::compile_all(spec, &prefix) {
            Ok(schedule) => {
                let bytes = schedule.job(DateTime::UNIX_EPOCH).len();
                if bytes > limit.bytes {
                    errors.push(InvalidSchedule {
                        field: format!("{prefix}job"),
                        reason: format!(
                            "is {bytes} bytes, over the job limit of {} ({})",
                            limit.bytes, limit.setting
                        ),
                    });
                } else {
                    schedules.push(schedule);
                }
            }
            Err(invalid) => errors.extend(invalid),
        }
    }
    if errors.is_empty() {
        Ok(schedules)
    } else {
        Err(errors)
    }
}

fn path_or_file(path: &str) -> String {
    if path == "." {
        "(file)".into()
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_occurrences_job_id_reads_back_and_no_other_does() {
        let at = DateTime::parse_from_rfc3339("2026-12-02T03:00:00.250Z")
            .map(|at| at.with_timezone(&Utc))
            .expect("a time");
        let id = job_id("reports@eu", at);
        assert_eq!(occurrence_of(&id), Some(("reports@eu", at)));
        for other in ["user@example.com", "@2026-12-02T03:00:00Z", "plain"] {
            assert_eq!(occurrence_of(other), None, "{other}");
        }
    }

    fn spec(name: &str, cron: &str, timezone: Option<&str>) -> ScheduleSpec {
        ScheduleSpec {
            name: name.into(),
            cron: cron.into(),
            timezone: timezone.map(Into::into),
            job: serde_json::json!({
                "jobType": "list-tools",
                "payload": {"mcpServers": {"time": {"command": "mcp-server-time"}}}
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
            overlap: None,
            catchup_window: None,
            jitter: None,
            start_at: None,
            end_at: None,
        }
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap()
    }

    /// `0 2 * * *` in Europe/Berlin across 2026's changes (29 March, 25 October):
    /// 02:00 does not exist on 29 March, so it runs at 03:00 CEST (01:00Z); 02:00
    /// happens twice on 25 October, and it runs once, at the first (00:00Z).
    #[test]
    fn daily_at_two_in_berlin_across_both_2026_changes() {
        let schedule =
            Schedule::compile(spec("nightly", "0 2 * * *", Some("Europe/Berlin")), "").unwrap();
        let spring: Vec<String> = occurrences(&schedule, "2026-03-27T12:00:00Z", 4);
        assert_eq!(
            spring,
            [
                "2026-03-28T01:00:00Z", // 02:00 CET
                "2026-03-29T01:00:00Z", // 03:00 CEST: 02:00 was skipped by the clock
                "2026-03-30T00:00:00Z", // 02:00 CEST
                "2026-03-31T00:00:00Z",
            ]
        );
        let autumn: Vec<String> = occurrences(&schedule, "2026-10-23T12:00:00Z", 4);
        assert_eq!(
            autumn,
            [
                "2026-10-24T00:00:00Z", // 02:00 CEST
                "2026-10-25T00:00:00Z", // the first 02:00 (CEST); not again at 01:00Z
                "2026-10-26T01:00:00Z", // 02:00 CET
                "2026-10-27T01:00:00Z",
            ]
        );
    }

    /// An interval pattern runs on real instants: every 30 minutes stays every 30
    /// minutes of elapsed time through the fall-back hour, which it sees twice.
    #[test]
    fn interval_patterns_follow_elapsed_time_through_the_fall_back() {
        let schedule = Schedule::compile(
            spec("half-hourly", "*/30 * * * *", Some("Europe/Berlin")),
            "",
        )
        .unwrap();
        let got = occurrences(&schedule, "2026-10-24T23:45:00Z", 6);
        assert_eq!(
            got,
            [
                "2026-10-25T00:00:00Z", // 02:00 CEST
                "2026-10-25T00:30:00Z", // 02:30 CEST
                "2026-10-25T01:00:00Z", // 02:00 CET
                "2026-10-25T01:30:00Z", // 02:30 CET
                "2026-10-25T02:00:00Z",
                "2026-10-25T02:30:00Z",
            ]
        );
    }

    fn occurrences(schedule: &Schedule, from: &str, count: usize) -> Vec<String> {
        let mut at = utc(from);
        (0..count)
            .map(|_| {
                at = schedule.next_after(at).unwrap();
                rfc3339(at)
            })
            .collect()
    }

    #[test]
    fn seconds_aliases_windows_and_jitter() {
        let every_3s = Schedule::compile(spec("fast", "*/3 * * * * *", None), "").unwrap();
        assert_eq!(
            occurrences(&every_3s, "2026-12-02T03:00:01Z", 2),
            ["2026-12-02T03:00:03Z", "2026-12-02T03:00:06Z"]
        );
        let hourly = Schedule::compile(spec("h", "@hourly", None), "").unwrap();
        assert_eq!(
            occurrences(&hourly, "2026-12-02T03:00:00Z", 1),
            ["2026-12-02T04:00:00Z"]
        );

        let mut bounded = spec("b", "0 * * * *", None);
        bounded.start_at = Some("2026-12-02T05:00:00Z".into());
        bounded.end_at = Some("2026-12-02T06:30:00Z".into());
        let bounded = Schedule::compile(bounded, "").unwrap();
        assert_eq!(
            bounded.next_after(utc("2026-12-01T00:00:00Z")),
            Some(utc("2026-12-02T05:00:00Z"))
        );
        assert_eq!(
            bounded.next_after(utc("2026-12-02T05:00:00Z")),
            Some(utc("2026-12-02T06:00:00Z"))
        );
        assert_eq!(bounded.next_after(utc("2026-12-02T06:00:00Z")), None);

        let mut jittered = spec("j", "0 * * * *", None);
        jittered.jitter = Some("30s".into());
        let jittered = Schedule::compile(jittered, "").unwrap();
        let at = utc("2026-12-02T05:00:00Z");
        let jitter = jittered.jitter_of(at);
        assert!(jitter < Duration::from_secs(30));
        assert_eq!(jitter, jittered.jitter_of(at), "deterministic");
        let spread: std::collections::HashSet<Duration> = (0..24)
            .map(|h| jittered.jitter_of(at + chrono::Duration::hours(h)))
            .collect();
        assert!(
            spread.len() > 12,
            "occurrences get different jitters: {spread:?}"
        );
    }

    #[test]
    fn the_occurrence_job_carries_its_id_and_time() {
        let schedule = Schedule::compile(spec("nightly", "0 3 * * *", None), "").unwrap();
        let nominal = utc("2026-12-02T03:00:00Z");
        let job = ScheduledJobEnvelope::from_slice(&schedule.job(nominal)).unwrap();
        assert_eq!(job.job_id, "nightly@2026-12-02T03:00:00Z");
        assert_eq!(
            job.scheduled_at.map(|t| t.with_timezone(&Utc)),
            Some(nominal)
        );
    }

    #[test]
    fn bad_files_are_refused_by_field() {
        let file = r#"
schedules:
  - name: ok
    cron: "*/5 * * * *"
    job: {jobType: list-tools, payload: {mcpServers: {t: {command: mcp-server-time}}}}
  - name: bad-cron
    cron: "61 * * * *"
    job: {jobType: list-tools, payload: {mcpServers: {t: {command: mcp-server-time}}}}
  - name: bad-zone
    cron: "0 0 30 2 *"
    timezone: Mars/Olympus_Mons
    job: {jobType: list-tools, payload: {mcpServers: {t: {command: mcp-server-time}}}}
  - name: no-servers
    cron: "@daily"
    job: {jobType: list-tools, payload: {}}
  - name: has-id
    cron: "@daily"
    job: {jobID: x, jobType: list-tools, payload: {mcpServers: {t: {command: mcp-server-time}}}}
  - name: typo
    cron: "@daily"
    timzone: UTC
    job: {jobType: list-tools, payload: {mcpServers: {t: {command: mcp-server-time}}}}
  - name: "bad name"
    cron: "@daily"
    job: {jobType: list-tools, payload: {mcpServers: {t: {command: mcp-server-time}}}}
  - name: ok
    cron: "@daily"
    job: {jobType: list-tools, payload: {mcpServers: {t: {command: mcp-server-time}}}}
  - name: jitter
    cron: "@daily"
    jitter: 10m
    catchupWindow: 5m
    job: {jobType: list-tools, payload: {mcpServers: {t: {command: mcp-server-time}}}}
  - name: ok
    cron: "0 0 12 * * * 2027"
    job: {jobType: list-tools, payload: {}}
"#;
        let limit = |bytes| JobLimit {
            bytes,
            setting: "MAX_MESSAGE_BYTES",
        };
        let errors = parse_file(file, limit(1 << 20)).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "schedules[1].cron",
                "schedules[2].cron",
                "schedules[2].timezone",
                "schedules[3].job.payload.mcpServers",
                "schedules[4].job.jobID",
                "schedules[5].timzone",
                "schedules[6].name",
                "schedules[7].name",
                "schedules[8].jitter",
                // Every problem of one schedule: named twice, 7 cron fields, no server.
                "schedules[9].name",
                "schedules[9].cron",
                "schedules[9].job.payload.mcpServers",
            ],
            "{errors:#?}"
        );
        assert!(errors[1].reason.contains("never matches"), "{}", errors[1]);
        assert!(errors[5].reason.contains("unknown field"), "{}", errors[5]);
        assert!(errors[7].reason.contains("named twice"), "{}", errors[7]);
        assert!(errors[10].reason.contains("has 7 fields"), "{}", errors[10]);

        let json = r#"{"schedules": [{"name": "j", "cron": "@hourly", "job": {"jobType": "list-tools", "payload": {"mcpServers": {"t": {"command": "x"}}}}}]}"#;
        assert_eq!(parse_file(json, limit(1 << 20)).unwrap().len(), 1);
        assert_eq!(
            parse_file("[1, 2]", limit(1 << 20)).unwrap_err()[0].field,
            "(file)"
        );
        let too_large = parse_file(
            json,
            JobLimit {
                bytes: 100,
                setting: "RESULT_MAX_BYTES",
            },
        )
        .unwrap_err();
        assert_eq!(too_large[0].field, "schedules[0].job");
        assert!(
            too_large[0]
                .reason
                .ends_with("over the job limit of 100 (RESULT_MAX_BYTES)"),
            "{}",
            too_large[0]
        );
    }
}
