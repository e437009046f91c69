//! The console's web pages: server-rendered HTML (maud) with one embedded stylesheet
//! and one small embedded script (times in the viewer's zone; the pages read the same
//! without it, in UTC), so nothing is fetched from anywhere but the console itself.
//!
//! - [`overview`]: outcomes per second and lag per partition over the last hour,
//!   the workers in the group, mcp-server's pool figures.
//! - [`jobs`]: a job's outcome records by jobID; the latest outcomes, paged.
//! - [`dead_letters`]: dead letters, filtered and paged; one with its message and
//!   headers; replay of one, or of all matching after a confirmation.
//! - [`schedules`]: each schedule's last and next occurrences; pause, resume, trigger,
//!   delete.
//! - [`waiting`]: the delayed jobs waiting for their time; cancel one.
//! - [`now`]: what is happening now: jobs running, retrying and waiting.
//!
//! Every page needs a session (the login form sets its cookie; logging out revokes
//! it); every action is a POST carrying the session's CSRF token and a one-time token,
//! refused in read-only mode, logged, and answered with a redirect to a page that
//! shows what it did (so a reload shows it again and does nothing twice). Every answer
//! carries a Content-Security-Policy that allows nothing but the console itself and
//! no framing; pages behind the login are never cached.

mod dead_letters;
mod jobs;
pub mod login_limit;
mod now;
mod overview;
mod schedules;
mod waiting;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Form, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};
use mcp_jobs_auth::matching_key;
use serde::Deserialize;

use crate::api::Console;
use crate::ledger::Submitted;
use crate::session::{self, Session};

const STYLESHEET: &str = include_str!("../../assets/console.css");
const SCRIPT: &str = include_str!("../../assets/console.js");

/// Who is looking, and what their forms must carry.
#[derive(Clone)]
pub(crate) struct Viewer {
    /// The key's place in `CONSOLE_API_KEYS`, as the action log names it.
    pub who: String,
    /// The session's CSRF token.
    pub csrf: String,
    pub read_only: bool,
    pub session: Session,
    /// The page asked for (path and query, but `refresh`; none for a form's answer),
    /// and how often it reloads itself (`?refresh=N`), for an operator watching an
    /// incident.
    pub page: Option<String>,
    pub refresh: Option<u32>,
}

/// The reload intervals a page offers, in seconds.
const REFRESH_EVERY: [u32; 4] = [2, 5, 10, 30];

/// A page's address without its `refresh`, and the interval it asks for (one of
/// [`REFRESH_EVERY`]; any other is ignored).
fn page_and_refresh(uri: &axum::http::Uri) -> (String, Option<u32>) {
    let mut refresh = None;
    let kept: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| match pair.strip_prefix("refresh=") {
            Some(seconds) => {
                refresh = seconds.parse().ok().filter(|s| REFRESH_EVERY.contains(s));
                false
            }
            None => true,
        })
        .collect();
    let page = match kept.is_empty() {
        true => uri.path().to_owned(),
        false => format!("{}?{}", uri.path(), kept.join("&")),
    };
    (page, refresh)
}

/// `page` reloading every `seconds`.
fn with_refresh(page: &str, seconds: u32) -> String {
    let joiner = if page.contains('?') { '&' } else { '?' };
    format!("{page}{joiner}refresh={seconds}")
}

pub fn router(console: Arc<Console>) -> Router {
    let pages = Router::new()
        .route("/", get(overview::page))
        .route("/now", get(now::page))
        .route("/jobs", get(jobs::page))
        .route("/dlq", get(dead_letters::list))
        .route("/dlq/{partition}/{offset}", get(dead_letters::one))
        .route("/dlq/replay/preview", post(dead_letters::preview))
        .route("/dlq/replay", post(dead_letters::replay))
        .route("/dlq/replays/{token}", get(dead_letters::replays))
        .route("/dlq/selected", post(dead_letters::selected))
        .route("/dlq/resolutions/{token}", get(dead_letters::resolutions))
        .route("/schedules", get(schedules::page))
        .route(
            "/schedules/{name}/delete",
            get(schedules::confirm_delete).post(schedules::delete),
        )
        .route("/schedules/{name}/{action}", post(schedules::act))
        .route("/waiting", get(waiting::page))
        .route("/waiting/{job_id}/cancel", post(waiting::cancel))
        .route("/logout", post(logout))
        .layer(middleware::from_fn_with_state(
            console.clone(),
            require_session,
        ));
    Router::new()
        .merge(pages)
        .route("/login", get(login_form).post(login))
        .route("/assets/console.css", get(stylesheet))
        .route("/assets/console.js", get(script))
        .fallback(not_found)
        .with_state(console)
}

/// The headers every answer carries: nothing but the console itself may be loaded or
/// frame it, nothing is sniffed, no address leaks to other sites, and nothing behind
/// the login is kept by the browser (Back after logout shows no page).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn not_found(request: Request) -> Response {
    refused(
        StatusCode::NOT_FOUND,
        &format!(
            "There is no page at {}: the console has Overview, Now, Jobs, Waiting, Dead letters and Schedules.",
            request.uri().path()
        ),
    )
}

/// Lets a request with a valid session cookie through (as a [`Viewer`]); a page asked
/// for without one answers 401 with the login form. An action is checked for its CSRF
/// token by its handler, and for coming from this console's own pages here.
async fn require_session(
    State(console): State<Arc<Console>>,
    mut request: Request,
    next: Next,
) -> Response {
    let cookie = request
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(session::from_header)
        .map(str::to_owned);
    let session = cookie
        .as_deref()
        .and_then(|c| session::verify(&console.api_keys, c, Utc::now()))
        .filter(|session| !console.ledger.is_revoked(&session.id));
    let (Some(cookie), Some(session)) = (cookie, session) else {
        let next_page = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        return (StatusCode::UNAUTHORIZED, login_page(None, &next_page)).into_response();
    };
    if request.method() == axum::http::Method::POST && !same_origin(request.headers()) {
        return refused(
            StatusCode::FORBIDDEN,
            "this action did not come from the console's own pages",
        );
    }
    let (page, refresh) = match *request.method() {
        axum::http::Method::GET => {
            let (page, refresh) = page_and_refresh(request.uri());
            (Some(page), refresh)
        }
        _ => (None, None),
    };
    request.extensions_mut().insert(Viewer {
        who: format!("key #{}", session.index + 1),
        csrf: session::csrf_token(&console.api_keys, session.index, &cookie),
        read_only: console.read_only,
        session,
        page,
        refresh,
    });
    next.run(request).await
}

/// Whether a POST's `Origin` (sent by every current browser) is this console.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    host.is_some() && origin_host == host
}

/// What every form that acts sends besides its own fields.
#[derive(Deserialize)]
pub(crate) struct Csrf {
    pub csrf: String,
    /// The form's one-time token.
    #[serde(default)]
    pub once: String,
}

/// An action admitted: its one-time token is claimed until [`Admitted::done`].
pub(crate) struct Admitted {
    pub token: String,
    until: DateTime<Utc>,
}

impl Admitted {
    /// Records what the action did (the page showing it) and answers with a redirect
    /// there.
    pub async fn done(self, console: &Console, result: &str) -> Response {
        if let Err(e) = console
            .ledger
            .submitted(&self.token, self.until, result)
            .await
        {
            tracing::warn!(error = %e, "console: recording a submitted form");
        }
        Redirect::to(result).into_response()
    }

    /// The action failed before doing anything: its form may be sent again.
    pub fn failed(self, console: &Console, status: StatusCode, why: &str) -> Response {
        console.ledger.release(&self.token);
        refused(status, why)
    }
}

/// Admits an action, or answers why not: refused in read-only mode or without the
/// viewer's CSRF token; a form submitted before is sent to the page of what it did.
pub(crate) fn admit(
    console: &Console,
    viewer: &Viewer,
    form: &Csrf,
) -> Result<Admitted, Box<Response>> {
    if let Some(refusal) = refusal(viewer, &form.csrf) {
        return Err(Box::new(refusal));
    }
    if form.once.len() != 32 || !form.once.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Box::new(refused(
            StatusCode::BAD_REQUEST,
            "the form carries no one-time token: reload the page and try again",
        )));
    }
    let until = viewer.session.expires;
    match console.ledger.claim(&form.once, until) {
        Submitted::First => Ok(Admitted {
            token: form.once.clone(),
            until,
        }),
        Submitted::Done(result) => Err(Box::new(Redirect::to(&result).into_response())),
        Submitted::InProgress => Err(Box::new(refused(
            StatusCode::CONFLICT,
            "this form is being submitted already: wait for it, then reload the page",
        ))),
    }
}

/// Why an action is refused, if it is: in read-only mode, or without the viewer's
/// CSRF token.
pub(crate) fn refusal(viewer: &Viewer, presented: &str) -> Option<Response> {
    if viewer.read_only {
        return Some(refused(
            StatusCode::FORBIDDEN,
            "the console is read-only (CONSOLE_READ_ONLY=true): actions are refused",
        ));
    }
    (!csrf_matches(viewer, presented)).then(|| {
        refused(
            StatusCode::FORBIDDEN,
            "the form's CSRF token is not this session's: reload the page and try again",
        )
    })
}

/// Whether `presented` is the viewer's CSRF token (compared in constant time).
fn csrf_matches(viewer: &Viewer, presented: &str) -> bool {
    let expected = viewer.csrf.as_bytes();
    expected.len() == presented.len()
        && subtle::ConstantTimeEq::ct_eq(expected, presented.as_bytes()).into()
}

/// A bare page saying why something was refused.
pub(crate) fn refused(status: StatusCode, why: &str) -> Response {
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Refused · mcp-jobs" } link rel="stylesheet" href="/assets/console.css"; }
            body { main { h1 { "Refused" } p.problem { (why) } p { a href="/" { "Back to the console" } } } }
        }
    };
    (status, body).into_response()
}

/// What a page cost: records read from Kafka (when the page counts them) and time
/// taken, shown at its foot.
pub(crate) struct Cost {
    started: Instant,
    pub records: Option<usize>,
}

impl Cost {
    pub fn start() -> Self {
        Self {
            started: Instant::now(),
            records: None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Overview,
    Now,
    Jobs,
    Waiting,
    DeadLetters,
    Schedules,
}

/// A page: the navigation, `body`, and what it cost.
pub(crate) fn layout(
    viewer: &Viewer,
    section: Section,
    title: &str,
    cost: &Cost,
    body: Markup,
) -> Markup {
    let nav = [
        (Section::Overview, "/", "Overview"),
        (Section::Now, "/now", "Now"),
        (Section::Jobs, "/jobs", "Jobs"),
        (Section::Waiting, "/waiting", "Waiting"),
        (Section::DeadLetters, "/dlq", "Dead letters"),
        (Section::Schedules, "/schedules", "Schedules"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · mcp-jobs" }
                @if let Some(seconds) = viewer.refresh { meta http-equiv="refresh" content=(seconds); }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                header {
                    strong.brand { "mcp-jobs" }
                    nav {
                        @for (place, href, name) in nav {
                            a href=(href) class=[(place == section).then_some("current")] { (name) }
                        }
                    }
                    span.who {
                        @if viewer.read_only { span.badge { "read-only" } " " }
                        (viewer.who)
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            input type="hidden" name="once" value=(session::form_token());
                            button.link type="submit" { "Log out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
                footer {
                    "This page "
                    @if let Some(records) = cost.records { "read " (records) " records and " }
                    "took " (cost.started.elapsed().as_millis()) " ms. "
                    @if let Some(page) = &viewer.page {
                        span.refresh {
                            @match viewer.refresh {
                                Some(seconds) => { "Reloads every " (seconds) " s (" a href=(page) { "stop" } ")." }
                                None => {
                                    "Reload every"
                                    @for seconds in REFRESH_EVERY { " " a href=(with_refresh(page, seconds)) { (seconds) " s" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The alarm on the pages of what only a dispatcher moves (schedules, waiting jobs),
/// while no dispatcher is active.
pub(crate) fn no_dispatcher(console: &Console) -> Markup {
    html! {
        @if let Some(why) = console.activity.no_dispatcher() { p.problem { (why) } }
    }
}

/// A form button that acts: hidden in read-only mode.
pub(crate) fn action_button(viewer: &Viewer, action: &str, label: &str, fields: Markup) -> Markup {
    html! {
        @if !viewer.read_only {
            form.inline method="post" action=(action) {
                input type="hidden" name="csrf" value=(viewer.csrf);
                input type="hidden" name="once" value=(session::form_token());
                (fields)
                button type="submit" { (label) }
            }
        }
    }
}

/// A time as operators read it: UTC, to the second.
pub(crate) fn when(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(
        || "—".to_owned(),
        |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// How long ago (or ahead) `at` is from `now`, as a person says it: "12 s ago",
/// "in 3 min".
pub(crate) fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    let span = span(seconds.unsigned_abs());
    if seconds >= 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

/// A number of seconds as a person says it: `40 s`, `3 min`, `2 h 5 min`, `3 d 4 h`.
pub(crate) fn span(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3_600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h {} min", s / 3_600, s % 3_600 / 60),
        s => format!("{} d {} h", s / 86_400, s % 86_400 / 3_600),
    }
}

/// A moment as the pages show it: in UTC, to the second, which the pages' script turns
/// into the viewer's own zone and how long ago.
pub(crate) fn moment(at: Option<DateTime<Utc>>) -> Markup {
    match at {
        Some(at) => html! { time datetime=(at.to_rfc3339()) { (when(Some(at))) } },
        None => html! { "—" },
    }
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        SCRIPT,
    )
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLESHEET,
    )
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn login_form(Query(query): Query<LoginQuery>) -> Markup {
    login_page(None, query.next.as_deref().unwrap_or("/"))
}

fn login_page(problem: Option<&str>, next: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Log in · mcp-jobs" }
                link rel="stylesheet" href="/assets/console.css";
            }
            body.login {
                main {
                    h1 { "mcp-jobs console" }
                    @if let Some(problem) = problem { p.problem { (problem) } }
                    form method="post" action="/login" {
                        label for="key" { "API key (one of CONSOLE_API_KEYS)" }
                        input #key type="password" name="key" autocomplete="current-password" required autofocus;
                        input type="hidden" name="next" value=(next);
                        button type="submit" { "Log in" }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct Login {
    key: String,
    next: Option<String>,
}

/// Trades a valid key for a session cookie and goes on to the page asked for (only
/// ever a path of this console). Attempts are limited per client address and overall.
async fn login(
    State(console): State<Arc<Console>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Form(form): Form<Login>,
) -> Response {
    let next = form
        .next
        .filter(|n| is_own_path(n))
        .unwrap_or_else(|| "/".to_owned());
    if let Err(wait) = console.logins.attempt(client.ip()) {
        let seconds = wait.as_secs().max(1);
        tracing::warn!(client = %client.ip(), retry_after_s = seconds, "console login refused: too many attempts");
        let page = login_page(
            Some(&format!(
                "Too many login attempts: try again in {seconds} s."
            )),
            &next,
        );
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, seconds.to_string())],
            page,
        )
            .into_response();
    }
    let issued = matching_key(&console.api_keys, &form.key)
        .and_then(|index| session::issue(&console.api_keys, index, Utc::now()).map(|c| (index, c)));
    match issued {
        Some((index, cookie)) => {
            tracing::info!(who = %format!("key #{}", index + 1), client = %client.ip(), "console login");
            (
                [(
                    header::SET_COOKIE,
                    session::set_cookie(&cookie, console.cookie_secure),
                )],
                Redirect::to(&next),
            )
                .into_response()
        }
        None => {
            tracing::warn!(client = %client.ip(), "console login refused: not one of CONSOLE_API_KEYS");
            (
                StatusCode::UNAUTHORIZED,
                login_page(Some("That is not one of the console's API keys."), &next),
            )
                .into_response()
        }
    }
}

/// Whether `next` is a path of this console, not a way elsewhere: browsers read
/// `//host` and `/\host` as another site.
fn is_own_path(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(char::is_control)
}

/// Ends the session on every replica (its id is revoked in the ledger until it would
/// have expired) and clears the cookie.
async fn logout(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Form(form): Form<Csrf>,
) -> Response {
    // Logging out is allowed in read-only mode: only the token is checked.
    if !csrf_matches(&viewer, &form.csrf) {
        return refused(
            StatusCode::FORBIDDEN,
            "the form's CSRF token is not this session's",
        );
    }
    if let Err(e) = console
        .ledger
        .revoke(&viewer.session.id, viewer.session.expires)
        .await
    {
        tracing::error!(error = %e, who = %viewer.who, "console logout: the session could not be revoked on other replicas");
    }
    tracing::info!(who = %viewer.who, "console logout");
    (
        [(header::SET_COOKIE, session::clear_cookie())],
        Redirect::to("/login"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_login_only_the_consoles_own_pages() {
        assert!(is_own_path("/dlq?kind=refused"));
        for elsewhere in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "evil",
            "/\n/x",
        ] {
            assert!(!is_own_path(elsewhere), "{elsewhere}");
        }
    }

    #[test]
    fn relative_times_read_as_spoken() {
        let now = Utc::now();
        let ago = |seconds: i64| relative(now - chrono::Duration::seconds(seconds), now);
        assert_eq!(ago(12), "12 s ago");
        assert_eq!(ago(-190), "in 3 min");
        assert_eq!(ago(3_700), "1 h 1 min ago");
        assert_eq!(span(2 * 86_400 + 7_300), "2 d 2 h");
    }

    #[test]
    fn a_page_keeps_its_query_and_reloads_only_at_an_offered_interval() {
        let uri = |text: &str| text.parse::<axum::http::Uri>().expect("a URI");
        assert_eq!(
            page_and_refresh(&uri("/dlq?kind=refused&refresh=5&since=2h")),
            ("/dlq?kind=refused&since=2h".to_owned(), Some(5))
        );
        assert_eq!(
            page_and_refresh(&uri("/waiting?refresh=1")),
            ("/waiting".to_owned(), None)
        );
        assert_eq!(page_and_refresh(&uri("/")), ("/".to_owned(), None));
        assert_eq!(with_refresh("/waiting", 2), "/waiting?refresh=2");
        assert_eq!(with_refresh("/dlq?kind=x", 30), "/dlq?kind=x&refresh=30");
    }
}
