//! `GET /schedules`: each schedule's cron, last and next occurrence, paused or not;
//! POST `/schedules/{name}/pause|resume|trigger` acts on one.

use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};
use mcp_jobs_scheduler::catalog::Catalog;
use mcp_jobs_scheduler::manage::{listing, Schedules};
use mcp_jobs_scheduler::schedule::job_id;

use super::jobs::urlencode;

use super::{action_button, admit, layout, when, Cost, Csrf, Section, Viewer};
use crate::api::Console;

pub(crate) async fn page(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
) -> Markup {
    let cost = Cost::start();
    let listed = console
        .read(|reader, console| {
            Catalog::load(reader, &console.settings.schedules_topic)
                .map(|catalog| listing(&catalog))
        })
        .await;
    let body = match listed {
        Err(e) => html! { p.problem { (e) } },
        Ok(listed) if listed.is_empty() => html! {
            p { "No schedule. Add some with " code { "kafka-worker schedules apply schedules.yaml" } "." }
        },
        Ok(listed) => html! {
            table {
                thead { tr { th { "schedule" } th { "cron" } th { "state" } th { "last fired" } th { "next" } th { "" } } }
                tbody {
                    @for schedule in &listed {
                        tr {
                            td { strong { (schedule.name) } }
                            td { code { (schedule.cron) } " " (schedule.timezone) }
                            td {
                                @if let Some(invalid) = &schedule.invalid { span.status.failed { "invalid" } " " (invalid) }
                                @else if schedule.paused { span.status.paused { "paused" } }
                                @else { span.status.succeeded { "active" } }
                            }
                            td {
                                @if let Some(fired) = schedule.last_fired {
                                    a href=(format!("/jobs?jobID={}", urlencode(&job_id(&schedule.name, fired)))) { (when(Some(fired))) }
                                } @else { "—" }
                            }
                            td { @if schedule.paused { "—" } @else { (when(schedule.next)) } }
                            td.actions {
                                @let base = format!("/schedules/{}", urlencode(&schedule.name));
                                @if schedule.paused {
                                    (action_button(&viewer, &format!("{base}/resume"), "Resume", html! {}))
                                } @else {
                                    (action_button(&viewer, &format!("{base}/pause"), "Pause", html! {}))
                                }
                                (action_button(&viewer, &format!("{base}/trigger"), "Trigger now", html! {}))
                            }
                        }
                    }
                }
            }
        },
    };
    layout(&viewer, Section::Schedules, "Schedules", &cost, body)
}

pub(crate) async fn act(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<Csrf>,
) -> Response {
    let admitted = match admit(&console, &viewer, &form) {
        Ok(admitted) => admitted,
        Err(answer) => return *answer,
    };
    let schedules = match Schedules::new(&console.settings) {
        Ok(schedules) => schedules,
        Err(e) => {
            return admitted.failed(&console, StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
    };
    let done = match action.as_str() {
        "pause" => schedules
            .set_paused(&name, true)
            .await
            .map(|_| "paused".to_owned()),
        "resume" => schedules
            .set_paused(&name, false)
            .await
            .map(|_| "resumed".to_owned()),
        "trigger" => schedules
            .trigger(&name)
            .await
            .map(|published| format!("triggered as {}", published.job_id)),
        _ => {
            return admitted.failed(
                &console,
                StatusCode::NOT_FOUND,
                "the actions on a schedule are pause, resume and trigger",
            )
        }
    };
    match done {
        Ok(what) => {
            tracing::info!(who = %viewer.who, action = %format!("schedule {action}"), schedule = %name, result = %what, "console action");
            admitted.done(&console, "/schedules").await
        }
        Err(e) => admitted.failed(&console, StatusCode::BAD_REQUEST, &e.to_string()),
    }
}
