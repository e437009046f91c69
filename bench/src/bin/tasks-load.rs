//! tasks-load: a light client of durable MCP tasks for `bench/tasks.sh`, so that what is
//! measured is the server and not a Python client: N tasks of one tool at concurrency C
//! over 2026-07-28 Streamable HTTP, each created with `tools/call` and followed to its
//! end by polling `tasks/get` the way FastMCP's tasks client does (at once, then after
//! 20 ms, doubling up to the server's `pollIntervalMs`), or with `--push` by listening
//! for `notifications/tasks`. Prints one JSON line: tasks/s, create→completed p50/p99,
//! and how many failed.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use futures::{stream, StreamExt};
use mcp_jobs_bench::percentile;
use rmcp::model::TaskStatus;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "durable MCP tasks under load: tasks/s and create→completed latency")]
struct Args {
    /// The MCP endpoint.
    #[arg(long)]
    url: String,
    #[arg(long)]
    key: String,
    #[arg(long, default_value = "echo")]
    tool: String,
    #[arg(long, default_value = r#"{"text": "load"}"#)]
    arguments: String,
    #[arg(long, default_value_t = 1000)]
    tasks: usize,
    #[arg(long, default_value_t = 20)]
    concurrency: usize,
    /// Follow each task by `subscriptions/listen` instead of polling.
    #[arg(long)]
    push: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let arguments: Value = serde_json::from_str(&args.arguments).context("--arguments")?;
    let client = reqwest::Client::new();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let started = Instant::now();
        let ended: Vec<anyhow::Result<f64>> = stream::iter(0..args.tasks)
            .map(|_| one_task(&client, &args, &arguments))
            .buffer_unordered(args.concurrency)
            .collect()
            .await;
        let elapsed = started.elapsed().as_secs_f64();
        let mut latencies: Vec<f64> = ended
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .copied()
            .collect();
        latencies.sort_by(f64::total_cmp);
        let failures: Vec<String> = ended
            .iter()
            .filter_map(|r| r.as_ref().err().map(|e| format!("{e:#}")))
            .collect();
        println!(
            "{}",
            json!({
                "per_s": latencies.len() as f64 / elapsed,
                "p50": percentile(&latencies, 0.5),
                "p99": percentile(&latencies, 0.99),
                "failed": failures.len(),
                "first_failure": failures.first(),
            })
        );
        Ok(())
    })
}

/// Creates one task and follows it to its end; the milliseconds that took.
async fn one_task(client: &reqwest::Client, args: &Args, arguments: &Value) -> anyhow::Result<f64> {
    let started = Instant::now();
    let params = json!({"name": args.tool, "arguments": arguments});
    let created = call(client, args, "tools/call", params, &args.tool).await?;
    let task = &created["result"];
    let Some(id) = task["taskId"].as_str() else {
        bail!("no task: {created}");
    };
    let ceiling = task["pollIntervalMs"].as_u64().unwrap_or(1000);
    if args.push {
        listen_until_end(client, args, id).await?;
    } else {
        let mut wait = 20;
        loop {
            let got = call(client, args, "tasks/get", json!({"taskId": id}), id).await?;
            if let Some(status) = ended(&got["result"]) {
                if status != TaskStatus::Completed {
                    bail!("task {id} ended {status:?}: {got}");
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(wait)).await;
            wait = (wait * 2).min(ceiling);
        }
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}

/// Listens for task `id`'s status until it ends.
async fn listen_until_end(client: &reqwest::Client, args: &Args, id: &str) -> anyhow::Result<()> {
    let params = json!({"notifications": {"taskIds": [id]}});
    let mut response = send(client, args, "subscriptions/listen", params, None).await?;
    let mut text = String::new();
    while let Some(chunk) = response.chunk().await? {
        text.push_str(&String::from_utf8_lossy(&chunk));
        let over = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .any(|data| {
                serde_json::from_str::<Value>(data.trim()).is_ok_and(|m| {
                    m["method"] == "notifications/tasks" && ended(&m["params"]).is_some()
                })
            });
        if over {
            return Ok(());
        }
    }
    bail!("the listen stream for {id} ended without its end: {text}")
}

/// A task's status if it has ended.
fn ended(task: &Value) -> Option<TaskStatus> {
    serde_json::from_value::<TaskStatus>(task["status"].clone())
        .ok()
        .filter(TaskStatus::is_terminal)
}

async fn call(
    client: &reqwest::Client,
    args: &Args,
    method: &str,
    params: Value,
    name: &str,
) -> anyhow::Result<Value> {
    let text = send(client, args, method, params, Some(name))
        .await?
        .text()
        .await?;
    // A JSON answer, or an SSE stream whose answer is the message with an id.
    let answer = serde_json::from_str::<Value>(&text).ok().or_else(|| {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .find(|m| m.get("id").is_some())
    });
    let Some(answer) = answer else {
        bail!("{method}: not an answer: {text}");
    };
    if answer.get("error").is_some() {
        bail!("{method}: {answer}");
    }
    Ok(answer)
}

async fn send(
    client: &reqwest::Client,
    args: &Args,
    method: &str,
    mut params: Value,
    name: Option<&str>,
) -> anyhow::Result<reqwest::Response> {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "tasks-load", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities":
            {"extensions": {"io.modelcontextprotocol/tasks": {}}},
    });
    let mut request = client
        .post(&args.url)
        .bearer_auth(&args.key)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", method)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}));
    if let Some(name) = name {
        request = request.header("Mcp-Name", name);
    }
    Ok(request.send().await?.error_for_status()?)
}
