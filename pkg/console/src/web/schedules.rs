//! `GET /schedules`: each schedule's cron, last occurrence and next ones (on its own
//! clock and in UTC), paused or not; POST `/schedules/{name}/pause|resume|trigger|delete`
//! acts on one (a delete after `GET /schedules/{name}/delete` asks to confirm).

use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};
use mcp_jobs_scheduler::catalog::Catalog;
use mcp_jobs_scheduler::manage::{listing, Listed, Schedules, Upcoming};
use mcp_jobs_scheduler::schedule::job_id;

use super::jobs::urlencode;

use super::{
    action_button, admit, layout, moment, no_dispatcher, span, when, Cost, Csrf, Section, Viewer,
};
use crate::api::Console;
use crate::jobs::{self, Run};

/// Every schedule, read from the schedules topic.
async fn listed(console: &Arc<Console>) -> Result<Vec<Listed>, String> {
    console
        .read(|reader, console| {
            Catalog::load(reader, &console.settings.schedules_topic)
                .map(|catalog| listing(&catalog))
        })
        .await
}

pub(crate) async fn page(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
) -> Markup {
    let mut cost = Cost::start();
    let listed = listed(&console).await;
    let names: Vec<String> = listed.iter().flatten().map(|s| s.name.clone()).collect();
    // The runs are a bounded read of recent outcomes, made only when there are schedules
    // to show them for; without them the page still shows the schedules.
    let runs = match names.is_empty() {
        true => Ok((Default::default(), 0)),
        false => {
            console
                .read(move |reader, console| jobs::runs(reader, &console.settings, &names, RUNS))
                .await
        }
    };
    let (runs, runs_problem) = match runs {
        Ok((runs, scanned)) => {
            cost.records = Some(scanned);
            (runs, None)
        }
        Err(e) => (Default::default(), Some(e)),
    };
    let body = match listed {
        Err(e) => html! { p.problem { (e) } },
        Ok(listed) if listed.is_empty() => html! {
            p { "No schedule. Add some with " code { "kafka-worker schedules apply schedules.yaml" } "." }
        },
        Ok(listed) => html! {
            table {
                thead { tr { th { "schedule" } th { "cron" } th { "state" } th { "last fired" } th { "last runs" } th { "next" } th { "" } } }
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
                                    a href=(format!("/jobs?jobID={}", urlencode(&job_id(&schedule.name, fired)))) { (moment(Some(fired))) }
                                } @else { "—" }
                            }
                            td { (last_runs(runs.get(&schedule.name).map_or(&[][..], Vec::as_slice))) }
                            td { @if schedule.paused { "—" } @else { (upcoming(&schedule.upcoming)) } }
                            td.actions {
                                @let base = format!("/schedules/{}", urlencode(&schedule.name));
                                @if schedule.paused {
                                    (action_button(&viewer, &format!("{base}/resume"), "Resume", html! {}))
                                } @else {
                                    (action_button(&viewer, &format!("{base}/pause"), "Pause", html! {}))
                                }
                                (action_button(&viewer, &format!("{base}/trigger"), "Trigger now", html! {}))
                                @if !viewer.read_only { a.button href=(format!("{base}/delete")) { "Delete…" } }
                            }
                        }
                    }
                }
            }
        },
    };
    let body = html! {
        (no_dispatcher(&console))
        @if let Some(problem) = runs_problem { p.problem { "The last runs cannot be shown: " (problem) } }
        (body)
        p.note { "Last runs: the outcomes of each schedule's occurrences among the newest "
            (crate::dead_letters::SCAN_PER_PARTITION) " records of each partition of the results topic, newest first, with how long after its time each started." }
    };
    layout(&viewer, Section::Schedules, "Schedules", &cost, body)
}

/// Runs of each schedule shown at most.
const RUNS: usize = 5;

/// A schedule's last runs, newest first: how each ended, linked to its job, and how
/// late it started.
fn last_runs(runs: &[Run]) -> Markup {
    html! {
        @if runs.is_empty() { "—" }
        ul.plain {
            @for run in runs {
                li {
                    @if run.succeeded { span.status.succeeded { "✓" } } @else { span.status.failed title=[run.error_kind.as_deref()] { "✗" } }
                    " " a href=(format!("/jobs?jobID={}", urlencode(&run.job_id))) { (moment(Some(run.due))) }
                    " " small { (late(run.late_ms)) }
                }
            }
        }
    }
}

/// How late a run started, as a person says it.
fn late(ms: i64) -> String {
    match ms {
        ms if ms < 1_000 => format!("{} ms late", ms.max(0)),
        ms if ms < 60_000 => format!("{:.1} s late", ms as f64 / 1000.0),
        ms => format!(
            "{} late",
            span(u64::try_from(ms / 1000).unwrap_or_default())
        ),
    }
}

/// The next occurrences: the first on the schedule's clock and in UTC, the rest folded.
fn upcoming(occurrences: &[Upcoming]) -> Markup {
    let Some((next, rest)) = occurrences.split_first() else {
        return html! { "—" };
    };
    html! {
        (next.local)
        // On a schedule's own clock that is UTC already, once is enough.
        @if !next.local.ends_with(" UTC") { br; small { (when(Some(next.at))) } }
        @if !rest.is_empty() {
            details {
                summary { "then" }
                ul.plain { @for at in rest { li { (at.local) " · " small { (when(Some(at.at))) } } } }
            }
        }
    }
}

/// `GET /schedules/{name}/delete`: what a delete removes, and the button that does it.
pub(crate) async fn confirm_delete(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
) -> Markup {
    let cost = Cost::start();
    let listed = listed(&console).await;
    let body = match listed.map(|all| all.into_iter().find(|s| s.name == name)) {
        Err(e) => html! { p.problem { (e) } },
        Ok(None) => html! { p.problem { "There is no schedule " code { (name) } "." } },
        Ok(Some(schedule)) => html! {
            p { "Delete " strong { (schedule.name) } " (" code { (schedule.cron) } " " (schedule.timezone) ")? "
                "Its definition and its state (last fired: " (when(schedule.last_fired)) ") leave the schedules topic, and it fires no more. "
                "Jobs it fired already are not touched. Apply its file again to bring it back." }
            (action_button(&viewer, &format!("/schedules/{}/delete", urlencode(&schedule.name)), "Delete", html! {}))
            " " a href="/schedules" { "Keep it" }
        },
    };
    layout(
        &viewer,
        Section::Schedules,
        "Delete a schedule",
        &cost,
        body,
    )
}

pub(crate) async fn act(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<Csrf>,
) -> Response {
    perform(&console, &viewer, &name, &action, &form).await
}

/// POST `/schedules/{name}/delete`, which its confirmation page (a GET of the same
/// path) sends.
pub(crate) async fn delete(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
    Form(form): Form<Csrf>,
) -> Response {
    perform(&console, &viewer, &name, "delete", &form).await
}

async fn perform(
    console: &Arc<Console>,
    viewer: &Viewer,
    name: &str,
    action: &str,
    form: &Csrf,
) -> Response {
    let admitted = match admit(console, viewer, form) {
        Ok(admitted) => admitted,
        Err(answer) => return *answer,
    };
    let schedules = match Schedules::new(&console.settings) {
        Ok(schedules) => schedules,
        Err(e) => return admitted.failed(console, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let done = match action {
        "pause" => schedules
            .set_paused(name, true)
            .await
            .map(|_| "paused".to_owned()),
        "resume" => schedules
            .set_paused(name, false)
            .await
            .map(|_| "resumed".to_owned()),
        "trigger" => schedules
            .trigger(name)
            .await
            .map(|published| format!("triggered as {}", published.job_id)),
        "delete" => schedules.delete(name).await.map(|()| "deleted".to_owned()),
        _ => {
            return admitted.failed(
                console,
                StatusCode::NOT_FOUND,
                "the actions on a schedule are pause, resume, trigger and delete",
            )
        }
    };
    match done {
        Ok(what) => {
            tracing::info!(who = %viewer.who, action = %format!("schedule {action}"), schedule = %name, result = %what, "console action");
            admitted.done(console, "/schedules").await
        }
        Err(e) => admitted.failed(console, StatusCode::BAD_REQUEST, &e.to_string()),
    }
}
