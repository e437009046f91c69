//! `GET /waiting`: the delayed jobs waiting for their time, earliest due first (the
//! index is followed in the background; the page reads back only the records it
//! shows); POST `/waiting/{jobID}/cancel` cancels one, so it never runs.

use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};

use super::jobs::urlencode;
use super::{action_button, admit, layout, no_dispatcher, when, Cost, Csrf, Section, Viewer};
use mcp_jobs_scheduler::delayed::WaitingJob;

use crate::api::{CancelError, Console};

/// Waiting jobs on the page.
const PAGE: usize = 100;

pub(crate) async fn page(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
) -> Markup {
    let mut cost = Cost::start();
    let page = console.waiting(PAGE).await;
    let body = match page {
        Err(e) => html! { p.problem { (e) } },
        Ok(page) => {
            cost.records = Some(page.read);
            html! {
                p {
                    (page.total) " waiting"
                    @if page.total > page.jobs.len() { ", the " (page.jobs.len()) " due first shown" }
                    @if !page.loaded { " (the delayed topic is still being read: there may be more)" }
                    ". A job waits on " code { (console.settings.delayed_topic) }
                    " until the active dispatcher sends it back to the jobs topic at its time."
                }
                @if page.jobs.is_empty() {
                    p { "No job waits. Publish one to run later with " code { "kafka-worker publish job.json --in 10m" } "." }
                } @else {
                    table {
                        thead { tr { th { "jobID" } th { "due" } th { "delayed from" } th.num { "bytes" } th { "" } } }
                        tbody {
                            @for job in &page.jobs {
                                tr {
                                    td { a href=(format!("/jobs?jobID={}", urlencode(&job.job_id))) { (job.job_id) } }
                                    td { (due(job)) }
                                    td { code { (job.delayed_from.as_deref().unwrap_or("—")) } }
                                    td.num { (job.bytes) }
                                    td.actions { (cancel_button(&viewer, &job.job_id)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let body = html! { (no_dispatcher(&console)) (body) };
    layout(&viewer, Section::Waiting, "Waiting jobs", &cost, body)
}

/// When `job` is due, as the pages write times; "at once" for a record not written by
/// a worker.
pub(crate) fn due(job: &WaitingJob) -> String {
    job.due
        .map_or_else(|| "at once".to_owned(), |at| when(Some(at)))
}

/// The button that cancels waiting job `job_id`.
pub(crate) fn cancel_button(viewer: &Viewer, job_id: &str) -> Markup {
    let action = format!("/waiting/{}/cancel", urlencode(job_id));
    action_button(viewer, &action, "Cancel", html! {})
}

pub(crate) async fn cancel(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Path(job_id): Path<String>,
    Form(form): Form<Csrf>,
) -> Response {
    let admitted = match admit(&console, &viewer, &form) {
        Ok(admitted) => admitted,
        Err(answer) => return *answer,
    };
    match console.cancel_waiting(&job_id).await {
        Ok(_) => {
            tracing::info!(who = %viewer.who, action = "delayed cancel", job_id = %job_id, "console action");
            let page = format!("/jobs?jobID={}", urlencode(&job_id));
            admitted.done(&console, &page).await
        }
        Err(CancelError::NotWaiting(why)) => admitted.failed(&console, StatusCode::NOT_FOUND, &why),
        Err(CancelError::Failed(why)) => {
            admitted.failed(&console, StatusCode::SERVICE_UNAVAILABLE, &why)
        }
    }
}
