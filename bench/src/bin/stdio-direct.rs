//! The ceiling of the proxy benchmark: an rmcp client driving a stdio MCP server
//! directly, `--connections` calls in flight, for `--seconds`. Prints one JSON line:
//! `{"rps":…,"p50_ms":…,"p99_ms":…,"errors":…}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use rmcp::ServiceExt;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 50)]
    connections: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The tool to call and its arguments as JSON.
    #[arg(long, default_value = "echo")]
    tool: String,
    #[arg(long, default_value = r#"{"message":"hi"}"#)]
    arguments: String,
    /// The server's command line.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let arguments: rmcp::model::JsonObject = serde_json::from_str(&args.arguments)?;
    let mut command = tokio::process::Command::new(&args.command[0]);
    command.args(&args.command[1..]);
    let client = Arc::new(().serve(TokioChildProcess::new(command)?).await?);
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let callers = (0..args.connections).map(|_| {
        let client = client.clone();
        let params =
            CallToolRequestParams::new(args.tool.clone()).with_arguments(arguments.clone());
        tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0u64);
            while Instant::now() < until {
                let started = Instant::now();
                match client.call_tool(params.clone()).await {
                    Ok(result) if result.is_error != Some(true) => {
                        latencies.push(started.elapsed())
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        })
    });
    let started = Instant::now();
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for caller in futures::future::join_all(callers).await {
        let (l, e) = caller?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{}",
        serde_json::json!({
            "rps": latencies.len() as f64 / elapsed,
            "p50_ms": percentile(0.50),
            "p99_ms": percentile(0.99),
            "errors": errors,
        })
    );
    Ok(())
}
