//! The ceiling of the proxy benchmark: an rmcp client driving a stdio MCP server
//! directly, `--connections` calls in flight, for `--seconds`. Prints one JSON line:
//! `{"rps":…,"p50_ms":…,"p99_ms":…,"errors":…,"requests":…,"cpu_ticks":…,"child_cpu_ticks":…}`,
//! the last two being the CPU time (in clock ticks) this client and the server spent
//! during the measurement, read from `/proc`.

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
    let transport = TokioChildProcess::new(command)?;
    let child = transport
        .id()
        .ok_or_else(|| anyhow::anyhow!("the server exited at once"))?;
    let client = Arc::new(().serve(transport).await?);
    let cpu_before = (cpu_ticks("self")?, cpu_ticks(&child.to_string())?);
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
    let cpu_after = (cpu_ticks("self")?, cpu_ticks(&child.to_string())?);
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
            "requests": latencies.len(),
            "cpu_ticks": cpu_after.0 - cpu_before.0,
            "child_cpu_ticks": cpu_after.1 - cpu_before.1,
        })
    );
    Ok(())
}

/// User plus system CPU time of a process (`self` or a pid) so far, in clock ticks.
fn cpu_ticks(pid: &str) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| -> anyhow::Result<u64> {
        let value = fields
            .get(n)
            .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/stat is short"))?;
        Ok(value.parse()?)
    };
    // utime and stime: fields 14 and 15 of proc_pid_stat(5); the first field after the
    // name is field 3.
    Ok(field(11)? + field(12)?)
}
