//! `GET /dlq`: dead letters, filtered by kind and time, a page at a time;
//! `GET /dlq/{partition}/{offset}`: one, with its original message and headers (as
//! [`DeadLetter`] redacts them). Replays are POSTs: one dead letter from its page, or
//! all matching a filter through `/dlq/replay/preview`, which shows exactly which and
//! how many (leaving out those replayed before unless asked) and asks to confirm;
//! `/dlq/replay` then replays exactly those positions and redirects to
//! `/dlq/replays/{token}`, which shows what that form did, from the ledger.

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};
use mcp_jobs_contract::headers;
use serde::Deserialize;

use super::jobs::urlencode;
use super::{
    action_button, admit, layout, moment, refusal, refused, Admitted, Cost, Csrf, Section, Viewer,
};
use crate::api::Console;
use crate::dead_letters::{parse_since, DeadLetter, Filter, Group, Position, Replay};
use crate::ledger::ReplayMark;
use crate::session;

/// Dead letters on one page.
const PAGE: usize = 50;

#[derive(Deserialize, Default, Clone)]
pub(crate) struct FilterForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    since: String,
    /// A group of dead letters (same kind and error signature), by its id.
    #[serde(default)]
    group: String,
    /// How many of the matching to skip (paging).
    #[serde(default)]
    skip: usize,
    /// A replay of all matching takes those replayed before too (a checkbox: `on`).
    #[serde(default)]
    include_replayed: Option<String>,
    /// Show those resolved without a replay too (`resolved=shown`).
    #[serde(default)]
    resolved: Option<String>,
}

impl FilterForm {
    fn filter(&self) -> Result<Filter, String> {
        Ok(Filter {
            kind: Some(self.kind.trim().to_owned()).filter(|k| !k.is_empty()),
            job_id: None,
            since: parse_since(&self.since)?,
            unreplayed_only: false,
            group: Some(self.group.trim().to_owned()).filter(|g| !g.is_empty()),
            with_resolved: self.resolved.is_some(),
        })
    }

    /// What a replay of all matching takes.
    fn replay_filter(&self) -> Result<Filter, String> {
        Ok(Filter {
            unreplayed_only: self.include_replayed.is_none(),
            ..self.filter()?
        })
    }

    fn query(&self, skip: usize) -> String {
        let resolved = if self.resolved.is_some() {
            "&resolved=shown"
        } else {
            ""
        };
        format!(
            "/dlq?kind={}&since={}&group={}&skip={skip}{resolved}",
            urlencode(&self.kind),
            urlencode(&self.since),
            urlencode(&self.group)
        )
    }

    /// This filter narrowed to `group`.
    fn of_group(&self, group: &Group) -> String {
        format!(
            "/dlq?kind={}&since={}&group={}",
            urlencode(&group.kind),
            urlencode(&self.since),
            urlencode(&group.id)
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
                .read(move |reader, console| console.dead_letters().find(reader, &filter, wanted))
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
                                input type="hidden" name="group" value=(form.group);
                                label.check { input type="checkbox" name="include_replayed"; " include those replayed before" }
                            }))
                            " "
                            (action_button(&viewer, "/dlq/selected", &format!("Mark all {} matching resolved", found.matched), html! {
                                input type="hidden" name="do" value="resolve";
                                input type="hidden" name="matching" value="true";
                                input type="hidden" name="kind" value=(form.kind);
                                input type="hidden" name="since" value=(form.since);
                                input type="hidden" name="group" value=(form.group);
                            }))
                        }
                        p {
                            @if form.resolved.is_some() {
                                "Those resolved without a replay are shown. " a href=(FilterForm { resolved: None, ..form.clone() }.query(0)) { "Hide them" } "."
                            } @else {
                                "Those resolved without a replay are left out. " a href=(format!("{}&resolved=shown", form.query(0))) { "Show them" } "."
                            }
                        }
                        @if form.group.is_empty() && found.groups.len() > 1 { (groups(&form, &found.groups)) }
                        @if !form.group.is_empty() { p { "One group of those: " a href=(FilterForm { group: String::new(), ..form.clone() }.query(0)) { "show every group" } "." } }
                        (selection(&viewer, &shown))
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

/// What can be done with `letter`: replay it (again, once replayed), unless only its
/// first bytes were kept.
pub(crate) fn replay_button(viewer: &Viewer, letter: &DeadLetter) -> Markup {
    let position = letter.position.to_string();
    html! {
        @if letter.truncated {
            p.problem { "Only the original's first bytes were kept: it cannot be replayed." }
        } @else if letter.replayed.is_some() {
            (action_button(viewer, "/dlq/replay", "Replay again", html! {
                input type="hidden" name="positions" value=(position);
                input type="hidden" name="again" value="true";
            }))
        } @else {
            (action_button(viewer, "/dlq/replay", "Replay this dead letter", html! {
                input type="hidden" name="positions" value=(position);
            }))
        }
    }
}

/// Groups shown on a page at most.
const GROUPS: usize = 20;

/// The matching dead letters by kind and error signature, largest first.
fn groups(form: &FilterForm, groups: &[Group]) -> Markup {
    html! {
        details.groups open {
            summary { (groups.len()) " groups by kind and error" }
            table {
                thead { tr { th { "kind" } th { "error (the newest)" } th.num { "dead letters" } th.num { "not replayed" } th { "first" } th { "last" } } }
                tbody {
                    @for group in groups.iter().take(GROUPS) {
                        tr {
                            td { code { (group.kind) } }
                            td.error { a href=(form.of_group(group)) { (group.error) } }
                            td.num { (group.count) }
                            td.num { (group.unreplayed) }
                            td { (moment(group.first_seen)) }
                            td { (moment(group.last_seen)) }
                        }
                    }
                }
            }
            @if groups.len() > GROUPS { p { "The " (GROUPS) " largest shown." } }
        }
    }
}

/// The dead letters shown, each with a box that selects it, and what can be done with
/// those selected (nothing in read-only mode).
fn selection(viewer: &Viewer, letters: &[&DeadLetter]) -> Markup {
    html! {
        @if viewer.read_only || letters.is_empty() {
            (table(letters, false))
        } @else {
            form.selection method="post" action="/dlq/selected" {
                input type="hidden" name="csrf" value=(viewer.csrf);
                input type="hidden" name="once" value=(session::form_token());
                p {
                    button type="submit" name="do" value="replay" { "Replay selected" } " "
                    button type="submit" name="do" value="resolve" { "Mark selected resolved" }
                }
                (table(letters, true))
            }
        }
    }
}

fn table(letters: &[&DeadLetter], selectable: bool) -> Markup {
    html! {
        table {
            thead { tr { th { "dead letter" } th { "jobID" } th { "kind" } th { "error" } th { "written" } th { "from" } th { "replayed" } } }
            tbody {
                @for letter in letters {
                    tr {
                        td.pick {
                            @if selectable {
                                input type="checkbox" name="positions" value=(letter.position) aria-label=(format!("select {}", letter.position));
                                " "
                            }
                            a href=(format!("/dlq/{}/{}", letter.position.partition, letter.position.offset)) { (letter.position) }
                        }
                        td { @if let Some(id) = &letter.job_id { a href=(format!("/jobs?jobID={}", urlencode(id))) { (id) } } }
                        td { code { (letter.kind) } }
                        td.error { (letter.error) }
                        td { (moment(letter.at)) }
                        td { (source(letter)) }
                        td {
                            @if let Some(mark) = &letter.replayed { (replayed_to(mark)) }
                            @if let Some(mark) = &letter.resolved { span.status.succeeded { "resolved" } " " (moment(Some(mark.at))) " by " (mark.by) }
                        }
                    }
                }
            }
        }
    }
}

/// Where a replay went and when, linked to the record it produced.
pub(crate) fn replayed_to(mark: &ReplayMark) -> Markup {
    html! { (moment(Some(mark.at))) " by " (mark.by) " → " code { (mark.to) } }
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
        .read(move |reader, console| console.dead_letters().at(reader, &[position]))
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
    let body = dead_letter_body(&viewer, letter);
    layout(
        &viewer,
        Section::DeadLetters,
        &format!("Dead letter {position}"),
        &cost,
        body,
    )
    .into_response()
}

/// One dead letter's page: what it says, its message and headers (redacted), replay.
pub(crate) fn dead_letter_body(viewer: &Viewer, letter: &DeadLetter) -> Markup {
    html! {
        dl {
            dt { "jobID" } dd { @if let Some(id) = &letter.job_id { a href=(format!("/jobs?jobID={}", urlencode(id))) { (id) } } @else { "—" } }
            dt { "error kind" } dd { code { (letter.kind) } }
            dt { "error" } dd { pre { (letter.error) } }
            dt { "attempts" } dd { (letter.attempts.map_or("—".to_owned(), |a| a.to_string())) }
            dt { "written" } dd { (moment(letter.at)) }
            dt { "by worker" } dd { code { (letter.worker.as_deref().unwrap_or("—")) } }
            dt { "consumed from" } dd { (source(letter)) }
            dt { "key" } dd { code { (letter.shown_key.as_deref().unwrap_or("—")) } }
            dt { "replayed" } dd { @if let Some(mark) = &letter.replayed { (replayed_to(mark)) } @else { "no" } }
        }
        (replay_button(viewer, letter))
        h2 { "Original message" }
        @match &letter.shown_message {
            Ok(message) => pre.json { (serde_json::to_string_pretty(message).unwrap_or_default()) },
            Err(why) => p { (why) "; not shown, since where its secrets are cannot be told." },
        }
        h2 { "Its headers" }
        table {
            tbody {
                @for (name, value) in &letter.shown_headers {
                    tr { td { code { (name) } } td { code { (value) } } }
                }
            }
        }
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
    let filter = match form.filter.replay_filter() {
        Ok(filter) => filter,
        Err(problem) => return refused(StatusCode::BAD_REQUEST, &problem),
    };
    let again = !filter.unreplayed_only;
    let found = match console
        .read(move |reader, console| console.dead_letters().find(reader, &filter, usize::MAX))
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
        @if !again { p.note { "Dead letters replayed before are left out." } }
        (action_button(&viewer, "/dlq/replay", &format!("Replay {} dead letters", replayable.len()), html! {
            input type="hidden" name="positions" value=(positions);
            @if again { input type="hidden" name="again" value="true"; }
        }))
        " " a href=(form.filter.query(0)) { "Cancel" }
        (table(&replayable, false))
    };
    layout(&viewer, Section::DeadLetters, "Confirm replay", &cost, body).into_response()
}

#[derive(Deserialize)]
pub(crate) struct ReplayForm {
    csrf: String,
    #[serde(default)]
    once: String,
    /// `partition:offset,…`: exactly the dead letters the page showed.
    positions: String,
    /// `true`: replay those replayed before too.
    #[serde(default)]
    again: Option<String>,
}

pub(crate) async fn replay(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Form(form): Form<ReplayForm>,
) -> Response {
    let action = Csrf {
        csrf: form.csrf,
        once: form.once,
    };
    let admitted = match admit(&console, &viewer, &action) {
        Ok(admitted) => admitted,
        Err(answer) => return *answer,
    };
    let positions: Result<Vec<Position>, String> = form
        .positions
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(str::parse)
        .collect();
    let positions = match positions {
        Ok(positions) if !positions.is_empty() => positions,
        Ok(_) => {
            return admitted.failed(
                &console,
                StatusCode::BAD_REQUEST,
                "no dead letter to replay was named",
            )
        }
        Err(problem) => return admitted.failed(&console, StatusCode::BAD_REQUEST, &problem),
    };
    let again = form.again.as_deref() == Some("true");
    replay_at(&console, &viewer, admitted, positions, again).await
}

/// Replays the dead letters at `positions` (those replayed before only if `again`) and
/// answers with the page of what it did.
async fn replay_at(
    console: &Arc<Console>,
    viewer: &Viewer,
    admitted: Admitted,
    positions: Vec<Position>,
    again: bool,
) -> Response {
    let asked = positions.clone();
    let found = match console
        .read(move |reader, console| console.dead_letters().at(reader, &asked))
        .await
    {
        Ok(found) => found,
        Err(e) => return admitted.failed(console, StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let how = Replay {
        who: &viewer.who,
        dry_run: false,
        again,
        action: Some(&admitted.token),
    };
    let replayed = console
        .dead_letters()
        .replay(&found.dead_letters, &how)
        .await;
    let missing = positions.len().saturating_sub(found.dead_letters.len());
    let (replayed_count, refused_count) = match &replayed {
        Ok(replayed) => (replayed.replayed.len(), replayed.refused.len()),
        Err(_) => (0, 0),
    };
    tracing::info!(
        who = %viewer.who, action = "dlq replay", asked = positions.len(),
        replayed = replayed_count, refused = refused_count, missing,
        refusals = ?replayed.as_ref().map(|r| &r.refused).ok(),
        "console action"
    );
    if let Err(e) = replayed {
        // Those sent before the failure are marked and shown on the result page.
        tracing::error!(who = %viewer.who, error = %e, "console: replay stopped");
    }
    let result = format!(
        "/dlq/replays/{}?asked={}&refused={refused_count}&missing={missing}",
        admitted.token,
        positions.len()
    );
    admitted.done(console, &result).await
}

#[derive(Deserialize)]
pub(crate) struct ReplayCounts {
    #[serde(default)]
    asked: usize,
    #[serde(default)]
    refused: usize,
    #[serde(default)]
    missing: usize,
}

/// `GET /dlq/replays/{token}`: what one replay form did, from the ledger (so any
/// replica shows it, and a reload shows it again without replaying anything).
pub(crate) async fn replays(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Path(token): Path<String>,
    Query(counts): Query<ReplayCounts>,
) -> Markup {
    let cost = Cost::start();
    let marks = console.ledger.replayed_by(&token);
    let asked = counts.asked.max(marks.len());
    let body = html! {
        p.done { "Replayed " strong { (marks.len()) } " of " (asked) " dead letters." }
        @if counts.missing > 0 { p.problem { (counts.missing) " were no longer on the dead-letter topic." } }
        @if counts.refused > 0 {
            p.problem { (counts.refused) " were not replayed: replayed before, cut to fit, or naming no source topic (each dead letter's page says which)." }
        }
        p { "Each goes back to its source topic with its key and headers, marked " code { (headers::REPLAY_OF) }
            "; its next outcome says " code { "replayOf" } ". Reloading this page replays nothing." }
        table {
            thead { tr { th { "dead letter" } th { "replayed" } } }
            tbody {
                @for (position, mark) in &marks {
                    tr {
                        td { a href=(format!("/dlq/{}/{}", position.partition, position.offset)) { (position) } }
                        td { (replayed_to(mark)) }
                    }
                }
            }
        }
    };
    layout(&viewer, Section::DeadLetters, "Replayed", &cost, body)
}

/// `POST /dlq/selected`: the dead letters ticked on the list (`positions`, one field
/// each) replayed (`do=replay`, those replayed before too: they were chosen) or marked
/// resolved (`do=resolve`); `do=resolve` with `matching=true` and no positions takes
/// every one matching the filter the form carries (`kind`, `since`, `group`).
pub(crate) async fn selected(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    body: String,
) -> Response {
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    let action = Csrf {
        csrf: field("csrf"),
        once: field("once"),
    };
    let admitted = match admit(&console, &viewer, &action) {
        Ok(admitted) => admitted,
        Err(answer) => return *answer,
    };
    let positions: Result<Vec<Position>, String> = fields
        .iter()
        .filter(|(key, _)| key == "positions")
        .map(|(_, value)| value.parse())
        .collect();
    let positions = match positions {
        Ok(positions) => positions,
        Err(problem) => return admitted.failed(&console, StatusCode::BAD_REQUEST, &problem),
    };
    let filter = FilterForm {
        kind: field("kind"),
        since: field("since"),
        group: field("group"),
        ..FilterForm::default()
    };
    // Every one matching only when the form says so: no box ticked is not "all".
    let all_matching = field("matching") == "true";
    match (field("do").as_str(), positions.is_empty()) {
        ("replay", false) => replay_at(&console, &viewer, admitted, positions, true).await,
        ("resolve", false) => resolve(&console, &viewer, admitted, positions, &filter).await,
        ("resolve", true) if all_matching => {
            resolve(&console, &viewer, admitted, positions, &filter).await
        }
        (_, true) => admitted.failed(
            &console,
            StatusCode::BAD_REQUEST,
            "no dead letter was selected: tick the ones to act on",
        ),
        (other, false) => admitted.failed(
            &console,
            StatusCode::BAD_REQUEST,
            &format!("{other:?} is nothing the dead letters page does (replay, resolve)"),
        ),
    }
}

/// Marks the dead letters at `positions` (or, with none, every one `filter` matches)
/// resolved and answers with the page of what it did.
async fn resolve(
    console: &Arc<Console>,
    viewer: &Viewer,
    admitted: Admitted,
    positions: Vec<Position>,
    filter: &FilterForm,
) -> Response {
    let filter = match filter.filter() {
        Ok(filter) => filter,
        Err(problem) => return admitted.failed(console, StatusCode::BAD_REQUEST, &problem),
    };
    let found = match console.chosen_dead_letters(positions, filter).await {
        Ok(found) => found,
        Err(e) => return admitted.failed(console, StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let resolved = console
        .dead_letters()
        .resolve(&found.dead_letters, &viewer.who, &admitted.token)
        .await;
    tracing::info!(who = %viewer.who, action = "dlq resolve", asked = found.dead_letters.len(), resolved = ?resolved.as_ref().ok(), "console action");
    let result = format!("/dlq/resolutions/{}", admitted.token);
    admitted.done(console, &result).await
}

/// `GET /dlq/resolutions/{token}`: what one resolve form did, from the ledger.
pub(crate) async fn resolutions(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Path(token): Path<String>,
) -> Markup {
    let cost = Cost::start();
    let marks = console.ledger.resolved_by(&token);
    let body = html! {
        p.done { "Marked " strong { (marks.len()) } " dead letters resolved: they leave the dead letters' default view (" a href="/dlq?resolved=shown" { "show them" } "). Nothing was replayed; reloading this page does nothing." }
        table {
            thead { tr { th { "dead letter" } th { "resolved" } } }
            tbody {
                @for (position, mark) in &marks {
                    tr {
                        td { a href=(format!("/dlq/{}/{}", position.partition, position.offset)) { (position) } }
                        td { (moment(Some(mark.at))) " by " (mark.by) }
                    }
                }
            }
        }
    };
    layout(&viewer, Section::DeadLetters, "Resolved", &cost, body)
}

#[cfg(test)]
mod tests {
    use mcp_jobs_contract::FailureKind;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;
    use crate::dead_letters::{group_of, Found, Grouping, Record};
    use crate::session::Session;

    /// Where a job carries its secret.
    #[derive(Debug, Clone)]
    enum Place {
        Env,
        Header,
        UrlPassword,
        /// An argument named as a credential.
        NamedArgument,
        /// An env value the arguments repeat.
        RepeatedInArguments,
        /// A Kafka header named as a credential.
        KafkaHeader,
        /// An env value a Kafka header repeats.
        RepeatedInKafkaHeader,
        /// An env given as a string, which serde quotes in its error.
        EnvAsString,
    }

    fn place() -> impl Strategy<Value = Place> {
        prop_oneof![
            Just(Place::Env),
            Just(Place::Header),
            Just(Place::UrlPassword),
            Just(Place::NamedArgument),
            Just(Place::RepeatedInArguments),
            Just(Place::KafkaHeader),
            Just(Place::RepeatedInKafkaHeader),
            Just(Place::EnvAsString),
        ]
    }

    /// A dead-letter record of a job holding `secret` at `place`, its payload an
    /// object or a string, and its error quoting the secret as serde would.
    fn record(secret: &str, place: &Place, payload_as_string: bool, header_name: &str) -> Record {
        let mut server = json!({"command": "nc", "env": {"PLAIN": "visible-value"}});
        let mut arguments = json!({"text": "hello-visible"});
        let mut kafka_headers = vec![("tenant".to_owned(), b"seven".to_vec())];
        match place {
            Place::Env => server["env"]["DB_SECRET_VALUE"] = json!(secret),
            Place::Header => {
                server =
                    json!({"url": "https://tools.example/mcp", "headers": {"X-Thing": secret}});
            }
            Place::UrlPassword => {
                // Written as a URL must carry it: percent-encoded.
                let encoded: String = secret
                    .bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() {
                            char::from(b).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect();
                server = json!({"url": format!("https://user:{encoded}@tools.example/mcp")});
            }
            Place::NamedArgument => arguments[header_name] = json!(secret),
            Place::RepeatedInArguments => {
                server["env"]["TOKEN_A"] = json!(secret);
                arguments["note"] = json!(format!("use {secret} please"));
            }
            Place::KafkaHeader => {
                kafka_headers.push((header_name.to_owned(), secret.as_bytes().to_vec()))
            }
            Place::RepeatedInKafkaHeader => {
                server["env"]["K"] = json!(secret);
                kafka_headers.push(("x-copy".to_owned(), format!("v={secret}").into_bytes()));
            }
            Place::EnvAsString => server["env"] = json!(format!("DB={secret}")),
        }
        let payload = json!({"mcpServers": {"t": server}, "server": "t", "tool": "x", "arguments": arguments});
        let payload = if payload_as_string {
            Value::String(payload.to_string())
        } else {
            payload
        };
        let message = json!({"jobID": "job-1", "jobType": "tool-call", "payload": payload});
        let mut headers = kafka_headers;
        headers.extend([
            (headers::JOB_ID.to_owned(), b"job-1".to_vec()),
            (
                headers::ERROR_KIND.to_owned(),
                FailureKind::InvalidField.to_string().into_bytes(),
            ),
            (
                headers::ERROR.to_owned(),
                format!("payload.mcpServers.t: invalid type: string \"DB={secret}\"").into_bytes(),
            ),
            (headers::SOURCE_TOPIC.to_owned(), b"jobs".to_vec()),
        ]);
        Record {
            topic: "jobs.dlq".into(),
            partition: 0,
            offset: 7,
            timestamp_ms: Some(1_765_000_000_000),
            key: Some(b"k".to_vec()),
            payload: serde_json::to_vec(&message).unwrap_or_default(),
            headers,
        }
    }

    fn viewer() -> Viewer {
        Viewer {
            who: "key #1".into(),
            csrf: "c".repeat(64),
            read_only: false,
            session: Session {
                index: 0,
                id: "0".repeat(32),
                expires: chrono::Utc::now(),
            },
            page: Some("/dlq".into()),
            refresh: None,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Whatever the job, wherever its secret sits, no page and no API answer
        /// shows it.
        #[test]
        fn no_page_or_api_answer_shows_a_secret(
            secret in "[A-Za-z0-9_\\-+/=!@#%^&*\"\\\\]{8,40}",
            place in place(),
            payload_as_string in any::<bool>(),
            header_name in prop::sample::select(vec!["authorization", "Cookie", "x-api-key", "github_token", "client-secret", "db_password"]),
        ) {
            let written = record(&secret, &place, payload_as_string, header_name);
            let mut grouping = Grouping::default();
            grouping.add(group_of(&written), &written, false, 0);
            let grouped = grouping.groups(&[(written.clone(), None)]);
            let letter = DeadLetter::new(written, None);
            let page = dead_letter_body(&viewer(), &letter).into_string();
            let found = Found { dead_letters: vec![letter.clone()], matched: 1, groups: grouped, scanned: 1 };
            let list = html! { (groups(&FilterForm::default(), &found.groups)) (table(&[&letter], true)) }.into_string();
            let api = serde_json::to_string(&found).unwrap_or_default();
            // HTML escapes some characters: look for the secret as the page shows it too.
            let escaped = maud::html! { (secret) }.into_string();
            for (what, text) in [("page", &page), ("list", &list), ("api", &api)] {
                prop_assert!(!text.contains(&secret) && !text.contains(&escaped), "{what} shows {secret:?} ({place:?}): {text}");
            }
            // What is not secret stays readable.
            prop_assert!(page.contains("hello-visible"), "{page}");
        }
    }
}
