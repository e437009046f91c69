//! `GET /now`: what is happening now: the jobs running (the longest running first, so
//! a stuck one is on top) and retrying (the next tried first), as their workers report
//! them on the status topic, and the delayed jobs due first, each cancellable.

use std::sync::Arc;

use axum::extract::State;
use axum::Extension;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use mcp_jobs_contract::status::JobStatus;

use super::jobs::urlencode;
use super::waiting::{cancel_button, due};
use super::{layout, no_dispatcher, relative, when, Cost, Section, Viewer};
use crate::api::Console;
use crate::now::JobInFlight;

/// Jobs of each kind on the page.
const PAGE: usize = 50;
/// Waiting jobs on the page (the Waiting page shows more).
const WAITING: usize = 10;

pub(crate) async fn page(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
) -> Markup {
    let mut cost = Cost::start();
    let now = Utc::now();
    let in_flight = console.in_flight(PAGE);
    let waiting = console.waiting(WAITING).await;
    cost.records = waiting.as_ref().ok().map(|page| page.read);
    let in_flight = match in_flight {
        Err(e) => html! { p.problem { "The jobs in flight cannot be shown: " (e) } },
        Ok(page) => html! {
            p {
                (page.running_total) " running, " (page.retrying_total) " waiting to be retried"
                @if page.tasks > 0 { " (" (page.tasks) " of them durable tasks)" }
                @if !page.loaded { " (the status topic is still being read: there may be more)" }
                ", as the workers report them on " code { (console.settings.status_topic) } "."
            }
            h2 { "Running" }
            @if page.running.is_empty() {
                p { "No job is running." }
            } @else {
                table {
                    thead { tr { th { "jobID" } th { "calls" } th { "worker" } th.num { "attempt" } th { "since" } } }
                    tbody {
                        @for job in &page.running {
                            tr {
                                td { (job_link(job)) }
                                td { (calls(&job.status)) }
                                td { code { (job.status.worker) } }
                                td.num { (job.status.attempt) }
                                td { (ago(job.status.at, now)) }
                            }
                        }
                    }
                }
                (more(page.running_total, page.running.len()))
            }
            h2 { "Retrying" }
            @if page.retrying.is_empty() {
                p { "No job waits to be retried." }
            } @else {
                table {
                    thead { tr { th { "jobID" } th { "calls" } th.num { "failed attempt" } th { "error" } th { "next attempt" } } }
                    tbody {
                        @for job in &page.retrying {
                            tr {
                                td { (job_link(job)) }
                                td { (calls(&job.status)) }
                                td.num { (job.status.attempt) }
                                td.error { (job.status.error.as_deref().unwrap_or("—")) }
                                td { @if let Some(next) = job.status.next_attempt_at { (ago(next, now)) } @else { "—" } }
                            }
                        }
                    }
                }
                (more(page.retrying_total, page.retrying.len()))
            }
        },
    };
    let waiting = match waiting {
        Err(e) => html! { p.problem { "The waiting jobs cannot be shown: " (e) } },
        Ok(page) => html! {
            @if page.jobs.is_empty() {
                p { "No delayed job waits." }
            } @else {
                table {
                    thead { tr { th { "jobID" } th { "due" } th { "" } } }
                    tbody {
                        @for job in &page.jobs {
                            tr {
                                td { a href=(format!("/jobs?jobID={}", urlencode(&job.job_id))) { (job.job_id) } }
                                td { (due(job)) }
                                td.actions { (cancel_button(&viewer, &job.job_id)) }
                            }
                        }
                    }
                }
                @if page.total > page.jobs.len() {
                    p { a href="/waiting" { "All " (page.total) " waiting" } }
                }
            }
        },
    };
    let body = html! {
        (in_flight)
        h2 { "Waiting for their time" }
        (no_dispatcher(&console))
        (waiting)
    };
    layout(&viewer, Section::Now, "Now", &cost, body)
}

fn job_link(job: &JobInFlight) -> Markup {
    html! {
        a href=(format!("/jobs?jobID={}", urlencode(&job.job_id))) { (job.job_id) }
        @if job.status.task { " " span.badge title="a durable MCP task: its jobID is the task id" { "task" } }
    }
}

/// What a job calls, as far as its status names it.
fn calls(status: &JobStatus) -> Markup {
    html! {
        (status.job_type) " "
        @for (i, call) in status.calls.iter().enumerate() {
            @if i > 0 { ", " }
            code { (call) }
        }
        @if status.more_calls > 0 { " and " (status.more_calls) " more" }
    }
}

/// A moment as how long ago (or how soon) it is, with the time itself on hover.
fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! { time.relative datetime=(at.to_rfc3339()) title=(when(Some(at))) { (relative(at, now)) } }
}

fn more(total: usize, shown: usize) -> Markup {
    html! { @if total > shown { p { "and " (total - shown) " more." } } }
}
