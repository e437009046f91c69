//! `GET /dlq`: dead letters, filtered by kind and time, a page at a time;
//! `GET /dlq/{partition}/{offset}`: one, with its original message (secrets
//! redacted) and headers. Replays are POSTs: one dead letter from its page, or all
//! matching a filter through `/dlq/replay/preview`, which shows exactly which and how
//! many and asks to confirm; `/dlq/replay` then replays exactly those positions.

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};
use serde::Deserialize;

use super::jobs::urlencode;
use super::{action_button, layout, parse_since, refusal, refused, when, Cost, Section, Viewer};
use crate::api::Console;
use crate::dead_letters::{DeadLetter, DeadLetters, Filter, Position};

/// Dead letters on one page.
const PAGE: usize = 50;

#[derive(Deserialize, Default)]
pub(crate) struct FilterForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    since: String,
    /// How many of the matching to skip (paging).
    #[serde(default)]
    skip: usize,
}

impl FilterForm {
    fn filter(&self) -> Result<Filter, String> {
        Ok(Filter {
            kind: Some(self.kind.trim().to_owned()).filter(|k| !k.is_empty()),
            job_id: None,
            since: parse_since(&self.since)?,
        })
    }

    fn query(&self, skip: usize) -> String {
        format!(
            "/dlq?kind={}&since={}&skip={skip}",
            urlencode(&self.kind),
            urlencode(&self.since)
        )
    }
}

pub(crate) async fn list(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Query(form): Query<FilterForm>,
) -> Markup {
    let mut cost = Cost::start();
    let filters = html! {
        form.search method="get" action="/dlq" {
            input name="kind" placeholder="error kind, e.g. tool_error" value=(form.kind) aria-label="error kind";
            input name="since" placeholder="since: 2h, 7d or a time" value=(form.since) aria-label="since";
            button type="submit" { "Filter" }
        }
    };
    let body = match form.filter() {
        Err(problem) => html! { (filters) p.problem { (problem) } },
        Ok(filter) => {
            let wanted = form.skip.saturating_add(PAGE);
            match console
                .read(move |reader, settings| {
                    DeadLetters::new(settings).find(reader, &filter, wanted)
                })
                .await
            {
                Err(e) => html! { (filters) p.problem { (e) } },
                Ok(found) => {
                    cost.records = Some(found.scanned);
                    let shown: Vec<&DeadLetter> =
                        found.dead_letters.iter().skip(form.skip).collect();
                    html! {
                        (filters)
                        p {
                            (found.matched) " matching among the " (found.scanned) " newest dead letters read"
                            @if !shown.is_empty() { "; " (form.skip + 1) "–" (form.skip + shown.len()) " shown" } "."
                        }
                        @if found.matched > 0 {
                            (action_button(&viewer, "/dlq/replay/preview", &format!("Replay all {} matching…", found.matched), html! {
                                input type="hidden" name="kind" value=(form.kind);
                                input type="hidden" name="since" value=(form.since);
                            }))
                        }
                        (table(&shown))
                        p.pager {
                            @if form.skip > 0 { a href=(form.query(form.skip.saturating_sub(PAGE))) { "← Newer" } " " }
                            @if form.skip + shown.len() < found.matched { a href=(form.query(form.skip + PAGE)) { "Older →" } }
                        }
                    }
                }
            }
        }
    };
    layout(&viewer, Section::DeadLetters, "Dead letters", &cost, body)
}

fn table(letters: &[&DeadLetter]) -> Markup {
    html! {
        table {
            thead { tr { th { "dead letter" } th { "jobID" } th { "kind" } th { "error" } th { "written" } th { "from" } } }
            tbody {
                @for letter in letters {
                    tr {
                        td { a href=(format!("/dlq/{}/{}", letter.position.partition, letter.position.offset)) { (letter.position) } }
                        td { @if let Some(id) = &letter.job_id { a href=(format!("/jobs?jobID={}", urlencode(id))) { (id) } } }
                        td { code { (letter.kind) } }
                        td.error { (letter.error) }
                        td { (when(letter.at)) }
                        td { (source(letter)) }
                    }
                }
            }
        }
    }
}

fn source(letter: &DeadLetter) -> String {
    match (
        &letter.source_topic,
        letter.source_partition,
        letter.source_offset,
    ) {
        (Some(topic), Some(partition), Some(offset)) => format!("{topic}/{partition}/{offset}"),
        (Some(topic), _, _) => topic.clone(),
        _ => "—".to_owned(),
    }
}

pub(crate) async fn one(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Path((partition, offset)): Path<(i32, i64)>,
) -> Response {
    let mut cost = Cost::start();
    let position = Position { partition, offset };
    let found = match console
        .read(move |reader, settings| DeadLetters::new(settings).at(reader, &[position]))
        .await
    {
        Ok(found) => found,
        Err(e) => return refused(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    cost.records = Some(found.scanned);
    let Some(letter) = found.dead_letters.first() else {
        return refused(
            StatusCode::NOT_FOUND,
            &format!("no dead letter at {position} (retention may have deleted it)"),
        );
    };
    let body = html! {
        dl {
            dt { "jobID" } dd { @if let Some(id) = &letter.job_id { a href=(format!("/jobs?jobID={}", urlencode(id))) { (id) } } @else { "—" } }
            dt { "error kind" } dd { code { (letter.kind) } }
            dt { "error" } dd { pre { (letter.error) } }
            dt { "attempts" } dd { (letter.attempts.map_or("—".to_owned(), |a| a.to_string())) }
            dt { "written" } dd { (when(letter.at)) }
            dt { "by worker" } dd { code { (letter.worker.as_deref().unwrap_or("—")) } }
            dt { "consumed from" } dd { (source(letter)) }
            dt { "key" } dd { code { (letter.key.as_deref().map_or("—".into(), String::from_utf8_lossy)) } }
        }
        @if letter.truncated {
            p.problem { "Only the original's first bytes were kept: it cannot be replayed." }
        } @else {
            (action_button(&viewer, "/dlq/replay", "Replay this dead letter", html! {
                input type="hidden" name="positions" value=(position);
            }))
        }
        h2 { "Original message" }
        (message(letter))
        h2 { "Its headers" }
        table {
            tbody {
                @for (name, value) in &letter.headers {
                    tr { td { code { (name) } } td { code { (String::from_utf8_lossy(value)) } } }
                }
            }
        }
    };
    layout(
        &viewer,
        Section::DeadLetters,
        &format!("Dead letter {position}"),
        &cost,
        body,
    )
    .into_response()
}

/// The original message, pretty-printed with its job's secrets redacted. A message
/// that is not JSON is not shown: where its secrets are cannot be told.
fn message(letter: &DeadLetter) -> Markup {
    match serde_json::from_slice::<serde_json::Value>(&letter.payload) {
        Ok(mut value) => {
            mcp_jobs_contract::redact_job_secrets(&mut value);
            html! { pre.json { (serde_json::to_string_pretty(&value).unwrap_or_default()) } }
        }
        Err(e) => html! {
            p { (letter.payload.len()) " bytes that are not JSON (" (e) "); not shown, since where their secrets are cannot be told. "
                "`kafka-worker dlq list --json` and the topic itself have them." }
        },
    }
}

#[derive(Deserialize)]
pub(crate) struct PreviewForm {
    csrf: String,
    #[serde(flatten)]
    filter: FilterForm,
}

/// Shows every dead letter a filter's replay would send, and asks to confirm.
pub(crate) async fn preview(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Form(form): Form<PreviewForm>,
) -> Response {
    if let Some(refusal) = refusal(&viewer, &form.csrf) {
        return refusal;
    }
    let mut cost = Cost::start();
    let filter = match form.filter.filter() {
        Ok(filter) => filter,
        Err(problem) => return refused(StatusCode::BAD_REQUEST, &problem),
    };
    let found = match console
        .read(move |reader, settings| DeadLetters::new(settings).find(reader, &filter, usize::MAX))
        .await
    {
        Ok(found) => found,
        Err(e) => return refused(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    cost.records = Some(found.scanned);
    let replayable: Vec<&DeadLetter> = found.dead_letters.iter().filter(|l| !l.truncated).collect();
    let positions = replayable
        .iter()
        .map(|l| l.position.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let body = html! {
        p.confirm {
            "Replay these " strong { (replayable.len()) } " dead letters to their source topics?"
            @if replayable.len() < found.dead_letters.len() {
                " (" (found.dead_letters.len() - replayable.len()) " more match but were cut to fit and cannot be replayed.)"
            }
        }
        (action_button(&viewer, "/dlq/replay", &format!("Replay {} dead letters", replayable.len()), html! {
            input type="hidden" name="positions" value=(positions);
        }))
        " " a href=(form.filter.query(0)) { "Cancel" }
        (table(&replayable))
    };
    layout(&viewer, Section::DeadLetters, "Confirm replay", &cost, body).into_response()
}

#[derive(Deserialize)]
pub(crate) struct ReplayForm {
    csrf: String,
    /// `partition:offset,…`: exactly the dead letters the page showed.
    positions: String,
}

pub(crate) async fn replay(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Form(form): Form<ReplayForm>,
) -> Response {
    if let Some(refusal) = refusal(&viewer, &form.csrf) {
        return refusal;
    }
    let mut cost = Cost::start();
    let positions: Result<Vec<Position>, String> = form
        .positions
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(str::parse)
        .collect();
    let positions = match positions {
        Ok(positions) if !positions.is_empty() => positions,
        Ok(_) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "no dead letter to replay was named",
            )
        }
        Err(problem) => return refused(StatusCode::BAD_REQUEST, &problem),
    };
    let asked = positions.clone();
    let found = match console
        .read(move |reader, settings| DeadLetters::new(settings).at(reader, &asked))
        .await
    {
        Ok(found) => found,
        Err(e) => return refused(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    cost.records = Some(found.scanned);
    let replayed = match DeadLetters::new(&console.settings)
        .replay(&found.dead_letters, false)
        .await
    {
        Ok(replayed) => replayed,
        Err(e) => return refused(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let missing = positions.len().saturating_sub(found.dead_letters.len());
    tracing::info!(
        who = %viewer.who, action = "dlq replay", asked = positions.len(),
        replayed = replayed.replayed.len(), refused = replayed.refused.len(), missing,
        "console action"
    );
    let replayed_letters: Vec<&DeadLetter> = found
        .dead_letters
        .iter()
        .filter(|l| replayed.replayed.contains(&l.dead_letter))
        .collect();
    let body = html! {
        p.done { "Replayed " strong { (replayed.replayed.len()) } " of " (positions.len()) " dead letters." }
        @if missing > 0 { p.problem { (missing) " were no longer on the dead-letter topic." } }
        @for (letter, why) in &replayed.refused { p.problem { (letter) ": " (why) } }
        p { "Each goes back to its source topic with its key and headers, marked " code { "mcp-jobs-replay-of" }
            "; its next outcome says " code { "replayOf" } ". Follow a job:" }
        (table(&replayed_letters))
    };
    layout(&viewer, Section::DeadLetters, "Replayed", &cost, body).into_response()
}
