//! `GET /jobs`: with `jobID`, every outcome record of that job (a redelivered or
//! replayed job has several); without, the latest outcomes, a page at a time.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Extension;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use mcp_jobs_contract::status::JobStatus;
use mcp_jobs_contract::task::JobState;
use mcp_jobs_scheduler::delayed::WaitingJob;
use mcp_jobs_scheduler::schedule::occurrence_of;

use super::dead_letters::{replay_button, replayed_to};
use super::waiting::{cancel_button, due};
use super::{layout, moment, Cost, Section, Viewer};
use crate::api::Console;
use crate::dead_letters::{DeadLetter, Filter};
use crate::jobs;

/// Outcomes on one page of the latest.
const PAGE: usize = 50;

/// A job's dead letters shown at most (a job replayed and failing again has several).
const DEAD_LETTERS: usize = 10;

#[derive(Deserialize)]
pub(crate) struct JobsQuery {
    #[serde(rename = "jobID")]
    job_id: Option<String>,
    before: Option<String>,
}

pub(crate) async fn page(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<JobsQuery>,
) -> Markup {
    let mut cost = Cost::start();
    let job_id = query.job_id.filter(|id| !id.trim().is_empty());
    let search = html! {
        form.search method="get" action="/jobs" {
            input type="search" name="jobID" placeholder="jobID" value=[job_id.as_deref()] aria-label="jobID";
            button type="submit" { "Find" }
        }
    };
    let body = match job_id {
        Some(job_id) => {
            let id = job_id.clone();
            match console
                .read(move |reader, console| {
                    let found = jobs::outcomes(reader, &console.settings, &id, None)
                        .map_err(|e| e.to_string())?;
                    let filter = Filter {
                        job_id: Some(id.clone()),
                        with_resolved: true,
                        ..Filter::default()
                    };
                    let letters = console
                        .dead_letters()
                        .find(reader, &filter, DEAD_LETTERS)
                        .map_err(|e| e.to_string())?;
                    // Not found waiting, or not readable now: the outcomes tell the rest.
                    let waiting = console.delayed.find(reader, &console.settings, &id);
                    Ok::<_, String>((found, letters, waiting.ok().flatten()))
                })
                .await
            {
                Ok((found, letters, waiting)) => {
                    let in_flight = console.in_flight.view().get(&job_id);
                    let read = found.scanned + letters.scanned + usize::from(waiting.is_some());
                    cost.records = Some(read);
                    html! {
                        (search)
                        h2 { "Job " code { (job_id) } }
                        (came_from(&job_id))
                        @if let Some((waiting, shown)) = &waiting { (waits(&viewer, waiting, shown)) }
                        @if let Some(status) = &in_flight { (runs(status)) }
                        (job(&found.outcomes, waiting.is_some(), in_flight.is_some()))
                        (dead_letters(&viewer, &letters.dead_letters))
                    }
                }
                Err(e) => html! { (search) p.problem { (e) } },
            }
        }
        None => {
            let before = query.before.as_deref().and_then(jobs::parse_cursor);
            match console
                .read(move |reader, console| {
                    jobs::latest(reader, &console.settings, PAGE, before.as_ref())
                })
                .await
            {
                Ok(page) => {
                    cost.records = Some(page.scanned);
                    html! { (search) h2 { "Latest outcomes" } (latest(&page)) }
                }
                Err(e) => html! { (search) p.problem { (e) } },
            }
        }
    };
    layout(&viewer, Section::Jobs, "Jobs", &cost, body)
}

/// Where a job came from, when its id tells: an occurrence of a schedule is
/// `<schedule>@<its time>`.
fn came_from(job_id: &str) -> Markup {
    let occurrence = occurrence_of(job_id);
    html! {
        @if let Some((schedule, at)) = occurrence {
            p { "An occurrence of schedule " a href="/schedules" { strong { (schedule) } } ", due " (moment(Some(at))) "." }
        }
    }
}

/// The job's dead letters, newest first, each with its replay.
fn dead_letters(viewer: &Viewer, letters: &[DeadLetter]) -> Markup {
    html! {
        @for letter in letters {
            section.outcome {
                h3 { "Dead letter " a href=(format!("/dlq/{}/{}", letter.position.partition, letter.position.offset)) { (letter.dead_letter) } }
                dl {
                    dt { "error kind" } dd { code { (letter.kind) } }
                    dt { "written" } dd { (moment(letter.at)) }
                    dt { "replayed" } dd { @if let Some(mark) = &letter.replayed { (replayed_to(mark)) } @else { "no" } }
                }
                (replay_button(viewer, letter))
            }
        }
    }
}

/// A job waiting on the delayed topic: when it is due, the job (secrets hidden), and
/// the button that cancels it.
fn waits(viewer: &Viewer, waiting: &WaitingJob, shown: &Value) -> Markup {
    html! {
        section.outcome {
            h3 { span.status.paused { "waiting" } " for its time" }
            dl {
                dt { "due" } dd { (due(waiting)) }
                dt { "delayed from" } dd { code { (waiting.delayed_from.as_deref().unwrap_or("—")) } }
                dt { "waits at" } dd { code { (waiting.partition) "/" (waiting.offset) } }
            }
            (cancel_button(viewer, &waiting.job_id))
            details {
                summary { "Job (secrets hidden)" }
                pre.json { (serde_json::to_string_pretty(shown).unwrap_or_default()) }
            }
        }
    }
}

/// A job in flight: where it runs, or when it is tried again.
fn runs(status: &JobStatus) -> Markup {
    html! {
        section.outcome {
            @if status.state == JobState::Retrying {
                h3 { span.status.paused { "retrying" } " attempt " (status.attempt) " failed" }
                dl {
                    dt { "error" } dd { pre { (status.error.as_deref().unwrap_or("—")) } }
                    dt { "next attempt" } dd { (moment(status.next_attempt_at)) }
                    dt { "worker" } dd { code { (status.worker) } }
                }
            } @else {
                h3 { span.status.running { "running" } " attempt " (status.attempt) }
                dl {
                    dt { "worker" } dd { code { (status.worker) } }
                    dt { "since" } dd { (moment(Some(status.at))) }
                    dt { "taken up" } dd { (moment(Some(status.started_at))) }
                }
            }
        }
    }
}

fn job(outcomes: &[Value], waiting: bool, running: bool) -> Markup {
    html! {
        @if outcomes.is_empty() && !waiting && !running {
            p { "No outcome record of this job among the newest records of the results topic (each partition's last "
                (crate::dead_letters::SCAN_PER_PARTITION) ")." }
        }
        @for (n, outcome) in outcomes.iter().enumerate() {
            section.outcome {
                h3 { "Outcome " (n + 1) " of " (outcomes.len()) ": " (status(outcome)) }
                dl {
                    dt { "attempts" } dd { (outcome["attempts"]) }
                    @if let Some(error) = outcome.get("error") {
                        dt { "error kind" } dd { a href=(format!("/dlq?kind={}", text(&error["kind"]))) { (text(&error["kind"])) } }
                        dt { "error" } dd { pre { (text(&error["message"])) } }
                    }
                    @if let Some(at) = outcome.get("scheduledAt") { dt { "scheduled at" } dd { (time(at)) } }
                    dt { "started" } dd { (time(&outcome["startedAt"])) }
                    dt { "finished" } dd { (time(&outcome["finishedAt"])) " (" (took(outcome)) ")" }
                    dt { "worker" } dd { code { (text(&outcome["worker"])) } }
                    @if let Some(replay) = outcome.get("replayOf") {
                        dt { "replay of" } dd { (text(replay)) }
                    }
                }
                @if let Some(attempts) = outcome["attemptLog"].as_array().filter(|a| !a.is_empty()) {
                    table.attempts {
                        thead { tr { th.num { "attempt" } th { "started" } th.num { "took" } th { "ended" } } }
                        tbody {
                            @for attempt in attempts {
                                tr {
                                    td.num { (attempt["attempt"]) }
                                    td { (time(&attempt["startedAt"])) }
                                    td.num { (took(attempt)) }
                                    td.error { @match attempt["error"].as_str() { Some(error) => (error), None => "succeeded" } }
                                }
                            }
                        }
                    }
                }
                @if let Some(results) = outcome.get("results") {
                    details open {
                        summary { "Result" }
                        pre.json { (serde_json::to_string_pretty(results).unwrap_or_default()) }
                    }
                }
            }
        }
    }
}

fn latest(page: &jobs::Page) -> Markup {
    html! {
        table {
            thead { tr { th { "jobID" } th { "outcome" } th.num { "attempts" } th { "finished" } th.num { "took" } th { "worker" } } }
            tbody {
                @for outcome in &page.outcomes {
                    tr {
                        td { a href=(format!("/jobs?jobID={}", urlencode(&text(&outcome["jobID"])))) { (text(&outcome["jobID"])) } }
                        td { (status(outcome)) }
                        td.num { (outcome["attempts"]) }
                        td { (time(&outcome["finishedAt"])) }
                        td.num { (took(outcome)) }
                        td { code { (text(&outcome["worker"])) } }
                    }
                }
            }
        }
        @if let Some(next) = &page.next {
            p { a.pager href=(format!("/jobs?before={}", urlencode(next))) { "Older →" } }
        }
    }
}

/// `succeeded`, or `failed: <kind>`.
fn status(outcome: &Value) -> Markup {
    let status = text(&outcome["status"]);
    html! {
        span class=(format!("status {status}")) { (status) }
        @if let Some(kind) = outcome["error"]["kind"].as_str() { " " code { (kind) } }
    }
}

/// How long the run took, from its start and finish.
fn took(outcome: &Value) -> String {
    let at = |field: &str| {
        outcome[field]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    match (at("startedAt"), at("finishedAt")) {
        (Some(started), Some(finished)) => {
            format!("{} ms", (finished - started).num_milliseconds())
        }
        _ => "—".to_owned(),
    }
}

/// A record's timestamp as the pages show moments; as it is if it is not one.
fn time(value: &Value) -> Markup {
    match value.as_str().map(DateTime::parse_from_rfc3339) {
        Some(Ok(at)) => moment(Some(at.with_timezone(&Utc))),
        _ => html! { (text(value)) },
    }
}

/// A JSON value as text: strings without quotes, absent as a dash.
pub(crate) fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "—".to_owned(),
        other => other.to_string(),
    }
}

/// Percent-encodes a query value.
pub(crate) fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::came_from;

    #[test]
    fn an_occurrence_names_its_schedule() {
        let told = came_from("nightly-report@2026-12-02T03:00:00Z").into_string();
        assert!(
            told.contains("nightly-report") && told.contains("2026-12-02 03:00:00 UTC"),
            "{told}"
        );
        assert_eq!(came_from("job-1").into_string(), "");
        assert_eq!(came_from("user@example.com").into_string(), "");
    }
}
