//! `GET /`: the deployment at a glance, from the summary [`crate::activity`] keeps
//! (no record is read for a page view) and mcp-server's `/stats`.

use std::sync::Arc;

use axum::extract::State;
use axum::Extension;
use chrono::Utc;
use maud::{html, Markup};
use serde_json::Value;

use super::jobs::text;
use super::{layout, moment, relative, span, Cost, Section, Viewer};
use crate::activity::{self, Minute, Summary};
use crate::api::Console;
use crate::charts::{line_chart, Series};

pub(crate) async fn page(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
) -> Markup {
    let mut cost = Cost::start();
    cost.records = Some(0);
    let summary = console.activity.summary();
    let stats = server_stats(&console).await;
    let to = Utc::now().timestamp();
    let from = to - activity::WINDOW.num_seconds();
    let body = html! {
        @for (what, problem) in &summary.problems { p.problem { (what) ": " (problem) } }
        (lag_now(&summary))
        section.charts {
            (line_chart("Jobs per second, by outcome (per minute)", from, to, &outcome_series(&summary, from, to)))
            (line_chart("Consumer lag per partition (records)", from, to, &lag_series(&summary)))
        }
        (failures(&summary))
        (workers(&console, &summary))
        h2 { "mcp-server" }
        @for (url, figures) in &stats {
            h3 { code { (url) } }
            @match figures {
                Ok(figures) => (server_figures(figures)),
                Err(problem) => p.problem { (problem) },
            }
        }
        p.note {
            "Outcome records counted since the console started: " (summary.records_read)
            " (it reads the results topic from an hour back, at most "
            (activity::BACKFILL_PER_PARTITION) " records per partition, then as it grows; lag is sampled every "
            (activity::SAMPLE_EVERY.as_secs()) " s since the console started)."
        }
    };
    layout(&viewer, Section::Overview, "Overview", &cost, body)
}

/// Every minute of the window, those without an outcome at 0.
fn outcome_series(summary: &Summary, from: i64, to: i64) -> Vec<Series> {
    let minutes: Vec<(i64, Minute)> = (from / 60..=to / 60)
        .map(|minute| {
            let start = minute * 60;
            (
                start,
                summary.minutes.get(&start).cloned().unwrap_or_default(),
            )
        })
        .collect();
    let series = |name: &str, count: fn(&Minute) -> u64| Series {
        name: name.into(),
        points: minutes
            .iter()
            .map(|(start, m)| ((*start + 30).min(to), count(m) as f64 / 60.0))
            .collect(),
    };
    vec![
        series("succeeded", |m| m.succeeded),
        series("failed", Minute::failed),
    ]
}

fn lag_series(summary: &Summary) -> Vec<Series> {
    let partitions: std::collections::BTreeSet<i32> = summary
        .lag
        .iter()
        .flat_map(|sample| sample.lag.keys().copied())
        .collect();
    partitions
        .into_iter()
        .map(|partition| Series {
            name: format!("partition {partition}"),
            points: summary
                .lag
                .iter()
                .filter_map(|s| Some((s.at.timestamp(), *s.lag.get(&partition)? as f64)))
                .collect(),
        })
        .collect()
}

fn failures(summary: &Summary) -> Markup {
    let mut by_kind: std::collections::BTreeMap<&str, u64> = Default::default();
    for minute in summary.minutes.values() {
        for (kind, count) in &minute.failed {
            *by_kind.entry(kind).or_default() += count;
        }
    }
    let succeeded: u64 = summary.minutes.values().map(|m| m.succeeded).sum();
    html! {
        h2 { "Last hour" }
        table {
            thead { tr { th { "outcome" } th.num { "jobs" } } }
            tbody {
                tr { td { "succeeded" } td.num { (succeeded) } }
                @for (kind, count) in &by_kind {
                    tr { td { "failed: " a href=(format!("/dlq?kind={kind}")) { (kind) } } td.num { (count) } }
                }
            }
        }
    }
}

fn workers(console: &Console, summary: &Summary) -> Markup {
    html! {
        h2 { "Workers in group " code { (console.settings.group) } }
        @if summary.members.is_empty() {
            p { "The group's coordinator lists no member (none is running, or the group uses the consumer protocol, whose members it does not list)." }
        } @else {
            table {
                thead { tr { th { "member" } th { "host" } th { "partitions" } } }
                tbody {
                    @for member in &summary.members {
                        tr {
                            td { code { (member.client_id) } }
                            td { (member.host) }
                            td { (member.partitions.iter().map(|(t, p)| format!("{t}/{p}")).collect::<Vec<_>>().join(", ")) }
                        }
                    }
                }
            }
        }
        @if !summary.workers.is_empty() {
            h3 { "Workers that wrote outcomes in the last hour" }
            table {
                thead { tr { th { "worker" } th.num { "outcomes" } th { "last" } } }
                tbody {
                    @for (worker, (seen, count)) in &summary.workers {
                        tr { td { code { (worker) } } td.num { (count) } td { (moment(Some(*seen))) } }
                    }
                }
            }
        }
    }
}

/// `GET /stats` of every `MCP_SERVER_URL`, with the worker's API key.
async fn server_stats(console: &Console) -> Vec<(String, Result<Value, String>)> {
    let mut all = Vec::new();
    for server in &console.servers {
        let stats = match url::Url::parse(server).and_then(|u| u.join("/stats")) {
            Ok(url) => fetch(console, url).await,
            Err(e) => Err(format!("MCP_SERVER_URL is not a URL: {e}")),
        };
        all.push((server.clone(), stats));
    }
    all
}

async fn fetch(console: &Console, url: url::Url) -> Result<Value, String> {
    let mut request = console.http.get(url.clone());
    if let Some(key) = &console.server_api_key {
        request = request.bearer_auth(key);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("{url} did not answer: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    response
        .json()
        .await
        .map_err(|e| format!("{url} did not answer JSON: {e}"))
}

/// The group's lag at its last sample, in all and per partition.
fn lag_now(summary: &Summary) -> Markup {
    let now = Utc::now();
    html! {
        @if let Some(sample) = summary.lag.back() {
            p.figure {
                "Lag now: " strong { (sample.lag.values().sum::<i64>()) " records" }
                @if sample.lag.len() > 1 {
                    " ("
                    @for (i, (partition, lag)) in sample.lag.iter().enumerate() {
                        @if i > 0 { ", " }
                        "partition " (partition) ": " (lag)
                    }
                    ")"
                }
                ", sampled " (relative(sample.at, now)) "."
            }
        }
    }
}

/// An mcp-server's `/stats` as a person reads them: its pool in a sentence, each
/// upstream's children and failures, each tool's calls by outcome. Figures of another
/// shape (another version) are listed as they come.
fn server_figures(stats: &Value) -> Markup {
    let (pool, requests) = (&stats["pool"], &stats["requests"]);
    if !pool.is_object() || !requests.is_object() {
        return figures_table(stats);
    }
    let n = |value: &Value| value.as_u64().unwrap_or_default();
    let upstreams = pool["servers"].as_array().cloned().unwrap_or_default();
    let by_tool = requests["byTool"].as_object().cloned().unwrap_or_default();
    html! {
        p {
            strong { (n(&pool["children"])) } " children running of at most " (n(&pool["maxTotal"])) ", "
            strong { (n(&pool["inFlight"])) } " calls in flight. Since it started "
            (span(n(&requests["uptimeSeconds"]))) " ago: " (n(&requests["total"])) " calls; "
            (n(&pool["spawned"])) " children started, " (n(&pool["spawnFailures"])) " failed to start, "
            (n(&pool["crashed"])) " crashed, " (n(&pool["hung"])) " hung, "
            (n(&pool["evicted"])) " evicted, " (n(&pool["reaped"])) " reaped when idle."
        }
        @if !upstreams.is_empty() {
            table {
                thead { tr { th { "upstream" } th { "runs" } th.num { "children" } th.num { "starting" } th.num { "in flight" } th.num { "failures in a row" } th { "restarts" } } }
                tbody {
                    @for upstream in &upstreams {
                        tr {
                            td { (text(&upstream["server"])) }
                            td { code { (text(&upstream["target"])) } }
                            td.num { (n(&upstream["children"])) }
                            td.num { (n(&upstream["starting"])) }
                            td.num { (n(&upstream["inFlight"])) }
                            td.num { (n(&upstream["consecutiveFailures"])) }
                            td { @match upstream["restartInMs"].as_u64() { Some(ms) => { "in " (ms) " ms" } None => "—" } }
                        }
                    }
                }
            }
        }
        @if !by_tool.is_empty() {
            table {
                thead { tr { th { "tool" } th { "calls by outcome" } } }
                tbody {
                    @for (tool, outcomes) in &by_tool {
                        tr {
                            td { code { (tool) } }
                            td {
                                @for (i, (outcome, count)) in outcomes.as_object().into_iter().flatten().enumerate() {
                                    @if i > 0 { ", " }
                                    (outcome) " " (n(count))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A JSON object as rows of `path: value` (nested objects flattened with dots).
fn figures_table(figures: &Value) -> Markup {
    let mut rows = Vec::new();
    flatten("", figures, &mut rows);
    html! {
        table.figures {
            tbody {
                @for (name, value) in &rows { tr { td { (name) } td.num { (value) } } }
            }
        }
    }
}

fn flatten(prefix: &str, value: &Value, rows: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields {
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                flatten(&path, field, rows);
            }
        }
        Value::String(text) => rows.push((prefix.to_owned(), text.clone())),
        other => rows.push((prefix.to_owned(), other.to_string())),
    }
}
