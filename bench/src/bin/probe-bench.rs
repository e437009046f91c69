//! probe-bench: what finding out an upstream's protocol revision costs. For each kind
//! of stdio server, one at a time, side by side: a bare rmcp `initialize` + `tools/list`
//! (what mcp-server did before it spoke 2026-07-28), mcp-server's pool meeting the
//! config for the first time (`server/discover`, falling back to `initialize`), and its
//! later connections, which skip the probe because the revision is remembered.
//! Run with `bash bench/probe.sh` (`--runs N`).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use mcp_jobs_bench::percentile;
use mcp_jobs_contract::ServerConfig;
use mcp_jobs_e2e::{
    fixture, modern_only_server, python_script, server_everything, silent_on_discover,
};
use mcp_jobs_upstream::{
    Allowlist, CommandAllowlist, EnvRules, Policy, Pool, PoolSettings, Upstream,
};
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, ProtocolVersion};
use rmcp::transport::TokioChildProcess;
use rmcp::ServiceExt;

#[derive(Parser)]
#[command(
    about = "the cost of finding out an upstream's MCP revision, first and later connections"
)]
struct Args {
    /// Connections measured per server and per way of connecting.
    #[arg(long, default_value_t = 10)]
    runs: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let servers = [
        (
            "mcp-server-time (Python SDK 2.3, both eras)",
            serde_json::json!({ "command": "mcp-server-time" }),
        ),
        (
            "server-everything (TS SDK 1.x, -32601)",
            server_everything(),
        ),
        (
            "mcp-server-time, discover dropped (silent)",
            silent_on_discover(),
        ),
        (
            "mcp-fixture (rmcp 3.9, 2026-07-28)",
            serde_json::json!({ "command": fixture() }),
        ),
        ("Python MCPServer, 2026-07-28 only", modern_only_server(&[])),
    ];
    println!(
        "{:<46} {:>14} {:>14} {:>9} {:>14} {:>9}",
        "stdio server (p50 of runs)", "initialize", "first contact", "extra", "later", "extra"
    );
    for (label, config) in servers {
        let config: ServerConfig = serde_json::from_value(config.clone()).context("config")?;
        let bare = p50(bare_initialize(&config, args.runs).await);
        let first = p50(pool_connections(&config, args.runs, true).await?);
        let later = p50(pool_connections(&config, args.runs, false).await?);
        let extra = |d: Option<Duration>| match (d, bare) {
            (Some(d), Some(b)) => {
                format!("{:+.0} ms", d.as_secs_f64() * 1e3 - b.as_secs_f64() * 1e3)
            }
            _ => "-".to_owned(),
        };
        println!(
            "{label:<46} {:>14} {:>14} {:>9} {:>14} {:>9}",
            ms(bare),
            ms(first),
            extra(first),
            ms(later),
            extra(later)
        );
    }
    println!("initialize: a bare rmcp client, initialize at 2025-11-25 then tools/list (\"refused\": the server speaks only 2026-07-28)");
    println!("first contact: a new pool's server_initialize; later: the same pool once its child was reaped");
    Ok(())
}

/// Spawn, `initialize`, `tools/list`, close: a connection as mcp-server opened one
/// before it spoke 2026-07-28. Empty when the server refuses the handshake.
async fn bare_initialize(config: &ServerConfig, runs: usize) -> Vec<Duration> {
    let ServerConfig::Stdio(stdio) = config else {
        return Vec::new();
    };
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let mut command = tokio::process::Command::new(&stdio.command);
        command.args(&stdio.args);
        let Ok(child) = TokioChildProcess::new(command) else {
            return Vec::new();
        };
        let client = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("probe-bench", "1"),
        )
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE);
        let Ok(session) = client.serve(child).await else {
            return Vec::new();
        };
        if session.list_all_tools().await.is_err() {
            return Vec::new();
        }
        times.push(started.elapsed());
        let _ = session.cancel().await;
    }
    times
}

/// `server_initialize` through mcp-server's pool: with `first`, a new pool each run (the
/// config met for the first time); without, one pool whose child is reaped between runs.
async fn pool_connections(
    config: &ServerConfig,
    runs: usize,
    first: bool,
) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::new();
    let mut pool = new_pool()?;
    let reaper = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.reap_idle(Duration::from_millis(20)).await })
    };
    if !first {
        pool.initialize(Upstream::job("s", config), None)
            .await
            .context("warm-up")?;
    }
    for _ in 0..runs {
        if first {
            pool = new_pool()?;
        } else {
            let until = Instant::now() + Duration::from_secs(10);
            while pool.stats().children > 0 {
                if Instant::now() > until {
                    bail!("the idle child was not reaped");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let started = Instant::now();
        pool.initialize(Upstream::job("s", config), Some(Duration::from_secs(30)))
            .await
            .context("server_initialize")?;
        times.push(started.elapsed());
        if first {
            pool.shutdown().await;
        }
    }
    reaper.abort();
    pool.shutdown().await;
    Ok(times)
}

fn new_pool() -> anyhow::Result<Pool> {
    let allowed = format!(
        "mcp-server-time,node,{},python3 {},python3 {} mcp-server-time",
        fixture(),
        python_script("modern_only_server.py"),
        python_script("silent_on_discover.py"),
    );
    let policy = Policy {
        allowed_commands: CommandAllowlist::parse(&allowed),
        allowed_env: EnvRules::parse(None),
        env_dir: None,
        work_dir: None,
        allowed_remote_hosts: Allowlist::parse(""),
        inherited_env: vec!["PATH".to_owned(), "HOME".to_owned()],
    };
    let settings = PoolSettings {
        max_per_server: 1,
        max_total: 4,
        max_calls_per_child: 4,
        idle_timeout: Duration::ZERO,
        default_deadline: Duration::from_secs(30),
        restart_backoff: Duration::from_millis(10),
        restart_backoff_max: Duration::from_millis(10),
    };
    Ok(Pool::new(policy, settings)?)
}

fn p50(times: Vec<Duration>) -> Option<Duration> {
    let mut seconds: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
    seconds.sort_by(f64::total_cmp);
    Some(percentile(&seconds, 0.5))
        .filter(|p| !p.is_nan())
        .map(Duration::from_secs_f64)
}

fn ms(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.0} ms", d.as_secs_f64() * 1e3))
        .unwrap_or_else(|| "refused".to_owned())
}
