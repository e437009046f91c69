//! wait-bench: many concurrent `send_message_and_wait` calls on one mcp-server replica,
//! answered from a second replica through the same Redis: wake latency (from sending a
//! reply to its waiter's answer), memory per waiter and Redis connections.
//! Run with `bash bench/waits.sh` (`--waiters N`, default 10,000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use futures::{stream, StreamExt};
use mcp_jobs_bench::{percentile, rss_kb};
use mcp_jobs_e2e::{sample, scrape, McpServer, RedisServer, API_KEY};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(
    about = "send_message_and_wait at scale: wake latency, memory per waiter, Redis connections"
)]
struct Args {
    /// Calls waiting at once on the first replica.
    #[arg(long, default_value_t = 10_000)]
    waiters: usize,
    /// Replies (and check-ins) in flight at once from the benchmark.
    #[arg(long, default_value_t = 100)]
    parallel: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let redis = RedisServer::start();
    let quiet = [("REDIS_URL", redis.url()), ("RUST_LOG", "warn".to_owned())];
    let env: Vec<(&str, &str)> = quiet.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let max_waiters = args.waiters.to_string();
    let mut waiting_env = env.clone();
    waiting_env.push(("MESSAGING_MAX_WAITERS", &max_waiters));
    let a = McpServer::start(&waiting_env);
    let b = McpServer::start(&env);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(&args, &redis, &a, &b))
}

async fn run(args: &Args, redis: &RedisServer, a: &McpServer, b: &McpServer) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    let ids: Vec<String> = (0..args.waiters).map(|i| format!("waiter-{i}")).collect();
    let check_ins = std::iter::once("replier".to_owned())
        .chain(ids.iter().cloned())
        .map(|id| json!({ "client_id": id, "name": id }));
    parallel(&http, b, "checkin_client", check_ins, args.parallel).await?;
    // A's own command connection, before any wait.
    parallel(
        &http,
        a,
        "checkin_client",
        [json!({ "client_id": "replier", "name": "replier" })],
        1,
    )
    .await?;
    let rss_before = rss_kb(a.process.pid()).unwrap_or(0);
    let clients_before = redis.connected_clients();

    let waits: Vec<_> = ids
        .iter()
        .map(|id| {
            let arguments = json!({ "sender_id": id, "recipient_id": "replier", "message": "?", "timeout": 600 });
            let request = call(&http, a, "send_message_and_wait", arguments);
            tokio::spawn(async move {
                let answer = request.await;
                (answer, Instant::now())
            })
        })
        .collect();
    let metrics = a.endpoint("/metrics");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let url = metrics.clone();
        let samples = tokio::task::spawn_blocking(move || scrape(&url)).await?;
        if sample(&samples, "mcp_server_messaging_waiters", &[]) >= Some(args.waiters as f64) {
            break;
        }
        if Instant::now() > deadline {
            bail!("the waits did not all start within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rss_during = rss_kb(a.process.pid()).unwrap_or(0);
    let clients_during = redis.connected_clients();

    let started = Arc::new(std::sync::Mutex::new(vec![None; ids.len()]));
    let replies = ids.iter().enumerate().map(|(i, id)| {
        let request = call(
            &http,
            b,
            "send_message",
            json!({ "sender_id": "replier", "recipient_id": id, "message": "!" }),
        );
        let started = started.clone();
        async move {
            if let Ok(mut at) = started.lock() {
                at[i] = Some(Instant::now());
            }
            request.await
        }
    });
    let sent: Vec<anyhow::Result<Value>> = stream::iter(replies)
        .buffer_unordered(args.parallel)
        .collect()
        .await;
    for reply in sent {
        reply?;
    }
    let mut latencies = Vec::with_capacity(ids.len());
    let started = started
        .lock()
        .map_err(|_| anyhow::anyhow!("a reply task panicked"))?
        .clone();
    for (wait, sent_at) in waits.into_iter().zip(started) {
        let (answer, answered_at) = wait.await?;
        let answer = answer?;
        if answer["reply"]["text"] != "!" {
            bail!("a wait ended without its reply: {answer}");
        }
        let sent_at = sent_at.context("a reply was never sent")?;
        latencies.push(answered_at.saturating_duration_since(sent_at).as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| percentile(&latencies, q);
    let per_waiter = (rss_during.saturating_sub(rss_before)) as f64 * 1024.0 / args.waiters as f64;

    println!();
    println!(
        "{} concurrent send_message_and_wait calls on replica A, answered from replica B:",
        args.waiters
    );
    println!();
    println!("| figure | value |");
    println!("|---|---:|");
    println!(
        "| wake latency p50 (reply sent → its waiter answered) | {:.2} ms |",
        at(0.5)
    );
    println!("| wake latency p99 | {:.2} ms |", at(0.99));
    println!("| wake latency max | {:.2} ms |", at(1.0));
    println!(
        "| replica A RSS before → during the waits | {:.1} → {:.1} MB |",
        rss_before as f64 / 1024.0,
        rss_during as f64 / 1024.0
    );
    println!("| memory per waiter | {:.1} KB |", per_waiter / 1024.0);
    println!("| Redis connections before → during | {clients_before} → {clients_during} |");
    Ok(())
}

/// A `tools/call` of `tool`; its structured content, or an error naming the failure.
fn call(
    http: &reqwest::Client,
    server: &McpServer,
    tool: &str,
    arguments: Value,
) -> impl std::future::Future<Output = anyhow::Result<Value>> + Send + 'static {
    let request = http
        .post(server.url())
        .bearer_auth(API_KEY)
        .header("Accept", "application/json, text/event-stream")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": { "name": tool, "arguments": arguments } }));
    let tool = tool.to_owned();
    async move {
        let response: Value = request.send().await?.json().await?;
        let result = &response["result"];
        if result["isError"] != false {
            bail!("{tool} failed: {response}");
        }
        Ok(result["structuredContent"].clone())
    }
}

async fn parallel(
    http: &reqwest::Client,
    server: &McpServer,
    tool: &str,
    calls: impl IntoIterator<Item = Value>,
    at_once: usize,
) -> anyhow::Result<()> {
    let results: Vec<anyhow::Result<Value>> = stream::iter(
        calls
            .into_iter()
            .map(|arguments| call(http, server, tool, arguments)),
    )
    .buffer_unordered(at_once)
    .collect()
    .await;
    results.into_iter().try_for_each(|r| r.map(drop))
}
