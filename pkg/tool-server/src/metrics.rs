//! mcp-server's Prometheus metrics (names documented in the README):
//!
//! - `mcp_server_http_requests_total{path, status}` and
//!   `mcp_server_http_request_duration_seconds{path}`: every request, by route.
//! - `mcp_server_tool_calls_total{tool, outcome}` and
//!   `mcp_server_tool_call_duration_seconds{tool}`: our tools, `outcome` = ok |
//!   tool_error | a failure kind; the duration is mostly the upstream's.
//! - `mcp_server_pool_children`, `mcp_server_pool_calls_in_flight` (gauges) and
//!   `mcp_server_pool_{spawns,spawn_failures,crashes,hangs,evictions,reaps}_total`.
//! - `mcp_server_tasks{state}` (gauge): live durable tasks by the state of their job
//!   (queued, running, retrying, succeeded, failed, cancelled), as this replica reads
//!   the tasks topic; `mcp_server_tasks_created_total{server}`: tasks it created.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use mcp_jobs_tasks::TaskStates;
use mcp_jobs_upstream::Pool;
use metrics::{counter, gauge, histogram};

/// Counts and times every request by route (the route pattern, so `/tools/{name}`
/// stays one series however many names callers try).
pub async fn track_http(request: Request, next: Next) -> Response {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    counter!("mcp_server_http_requests_total", "path" => path.clone(), "status" => status)
        .increment(1);
    histogram!("mcp_server_http_request_duration_seconds", "path" => path)
        .record(started.elapsed().as_secs_f64());
    response
}

pub fn tool_call(tool: &'static str, outcome: &'static str, started: Instant) {
    counter!("mcp_server_tool_calls_total", "tool" => tool, "outcome" => outcome).increment(1);
    histogram!("mcp_server_tool_call_duration_seconds", "tool" => tool)
        .record(started.elapsed().as_secs_f64());
}

/// Copies the pool's figures into the registry, just before a scrape renders it.
pub fn record_pool(pool: &Pool) {
    let stats = pool.stats();
    gauge!("mcp_server_pool_children").set(stats.children as f64);
    gauge!("mcp_server_pool_calls_in_flight").set(stats.in_flight as f64);
    for (name, value) in [
        ("mcp_server_pool_spawns_total", stats.spawned),
        ("mcp_server_pool_spawn_failures_total", stats.spawn_failures),
        ("mcp_server_pool_crashes_total", stats.crashed),
        ("mcp_server_pool_hangs_total", stats.hung),
        ("mcp_server_pool_evictions_total", stats.evicted),
        ("mcp_server_pool_reaps_total", stats.reaped),
    ] {
        counter!(name).absolute(value);
    }
}

/// Copies the tasks' states into the registry, just before a scrape renders it.
pub fn record_tasks(states: TaskStates) {
    for (state, count) in states.named() {
        gauge!("mcp_server_tasks", "state" => state).set(count as f64);
    }
}

pub fn task_created(server: &str) {
    counter!("mcp_server_tasks_created_total", "server" => server.to_owned()).increment(1);
}
