//! kafka-worker: consumes scheduled MCP jobs from Kafka and runs them through mcp-server.
//! Configuration comes from the environment (see the README's table).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mcp_jobs_worker::{
    admin, consumer, health, lag, publish, redis_source, JobSource, WorkerSettings,
};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "kafka-worker", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Consume and run jobs until SIGTERM/SIGINT (the default).
    Run,
    /// Send a job envelope (a JSON file, or stdin) to KAFKA_TOPIC.
    Publish {
        /// The job file; `-` or nothing reads stdin.
        file: Option<PathBuf>,
        /// Message key (jobs with the same key keep their order).
        #[arg(long)]
        key: Option<String>,
        /// Wait this many seconds for the job's result record and print it.
        #[arg(long, value_name = "SECONDS")]
        wait: Option<u64>,
    },
    /// Print the group's lag per partition and in total (with JOB_SOURCE=redis: the
    /// stream group's undelivered and pending entries); with --replicas, only the
    /// number of worker replicas it calls for (for `kubectl scale --replicas=$(...)`).
    Lag {
        /// Print only clamp(ceil(total lag / LAG_PER_REPLICA), MIN_REPLICAS, min(MAX_REPLICAS, partitions));
        /// a Redis stream has no partitions to cap it.
        #[arg(long)]
        replicas: bool,
        #[arg(long, env = "LAG_PER_REPLICA", default_value_t = 1000)]
        lag_per_replica: u64,
        #[arg(long, env = "MIN_REPLICAS", default_value_t = 1)]
        min_replicas: u32,
        #[arg(long, env = "MAX_REPLICAS", default_value_t = 10)]
        max_replicas: u32,
    },
    /// Create KAFKA_TOPIC and its results and dead-letter topics (existing ones are kept).
    CreateTopics {
        #[arg(long, default_value_t = 6)]
        partitions: i32,
        #[arg(long, default_value_t = 1)]
        replication_factor: i32,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Held to the end: dropping it sends the last spans.
    let _telemetry = mcp_jobs_telemetry::init("kafka-worker").context("telemetry")?;
    let cli = Cli::parse();
    let settings = WorkerSettings::from_env().context("kafka-worker configuration")?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            let metrics = mcp_jobs_telemetry::install_metrics().context("metrics recorder")?;
            let ready = health::Readiness::default();
            health::serve(settings.metrics_port, metrics, ready.clone())
                .await
                .with_context(|| {
                    format!("serving /metrics on METRICS_PORT={}", settings.metrics_port)
                })?;
            let shutdown = CancellationToken::new();
            tokio::spawn({
                let shutdown = shutdown.clone();
                async move {
                    mcp_jobs_runtime::shutdown_signal().await;
                    shutdown.cancel();
                }
            });
            match settings.source {
                JobSource::Kafka => consumer::run(settings, ready, shutdown).await,
                JobSource::Redis => redis_source::run(settings, ready, shutdown).await,
            }
            .context("kafka-worker failed")?;
        }
        Command::Publish { file, key, wait } => {
            let message = read_job(file.as_ref())?;
            let published = publish::publish(&settings, &message, key.as_deref())
                .await
                .context("publishing the job")?;
            eprintln!(
                "published job {} to {} (partition {}, offset {})",
                published.job_id, settings.topic, published.partition, published.offset
            );
            if let Some(seconds) = wait {
                let result =
                    publish::wait_for_result(&settings, &published, Duration::from_secs(seconds))
                        .await
                        .context("waiting for the result")?;
                writeln!(
                    std::io::stdout(),
                    "{}",
                    serde_json::to_string_pretty(&result)?
                )
                .context("printing the result")?;
                if result["status"] != "succeeded" {
                    anyhow::bail!("job {} failed", published.job_id);
                }
            }
        }
        Command::Lag {
            replicas,
            lag_per_replica,
            min_replicas,
            max_replicas,
        } => {
            let (report, total, partitions) = match settings.source {
                JobSource::Kafka => {
                    // The admin calls block: keep them off the async workers.
                    let lag = tokio::task::block_in_place(|| lag::group_lag(&settings))
                        .context("reading the consumer group's lag")?;
                    (lag.to_string(), lag.total(), Some(lag.partitions.len()))
                }
                JobSource::Redis => {
                    let backlog = lag::stream_backlog(&settings)
                        .await
                        .context("reading the stream group's lag")?;
                    (backlog.to_string(), backlog.total(), None)
                }
            };
            let policy = lag::ScalePolicy {
                lag_per_replica,
                min_replicas,
                max_replicas,
            };
            let wanted = policy.replicas(total, partitions);
            let mut out = std::io::stdout();
            if replicas {
                writeln!(out, "{wanted}")
            } else {
                writeln!(out, "{report}\nreplicas {wanted} (LAG_PER_REPLICA={lag_per_replica}, MIN_REPLICAS={min_replicas}, MAX_REPLICAS={max_replicas})")
            }
            .context("printing the lag")?;
        }
        Command::CreateTopics {
            partitions,
            replication_factor,
        } => {
            let created = admin::create_topics(&settings, partitions, replication_factor)
                .await
                .context("creating topics")?;
            eprintln!("topics ready ({} created)", created.len());
        }
    }
    Ok(())
}

fn read_job(file: Option<&PathBuf>) -> anyhow::Result<Vec<u8>> {
    match file.filter(|f| f.as_os_str() != "-") {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display())),
        None => {
            let mut message = Vec::new();
            std::io::stdin()
                .read_to_end(&mut message)
                .context("reading the job from stdin")?;
            Ok(message)
        }
    }
}
