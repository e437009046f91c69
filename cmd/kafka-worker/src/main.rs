//! kafka-worker: consumes scheduled MCP jobs from Kafka and runs them through mcp-server.
//! Configuration comes from the environment (see the README's table).

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mcp_jobs_console::api::Console;
use mcp_jobs_console::config::ConsoleSettings;
use mcp_jobs_console::dead_letters::{self, DeadLetters};
use mcp_jobs_console::ledger::Ledger;
use mcp_jobs_contract::ScheduledJobEnvelope;
use mcp_jobs_engine::servers::{missing_named_servers, named_by};
use mcp_jobs_kafka::{admin, group, publish, topic, KafkaSettings};
use mcp_jobs_scheduler::delayed::DelayedJobs;
use mcp_jobs_scheduler::manage::Schedules;
use mcp_jobs_scheduler::schedule::{rfc3339, Schedule};
use mcp_jobs_scheduler::{dispatcher, presence};
use mcp_jobs_worker::{consumer, health, lag, redis_source, JobSource, WorkerSettings};
use tokio_util::sync::CancellationToken;

mod tables;

#[derive(Parser)]
#[command(name = "kafka-worker", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// How long a command (publish, schedules, dlq, lag, create-topics) waits to reach
    /// Kafka before it gives up with one error.
    #[arg(long, global = true, env = "KAFKA_CLI_TIMEOUT", default_value = "10s")]
    kafka_timeout: humantime::Duration,
}

impl Command {
    /// Whether the command is one an operator runs and waits for (not a service).
    fn is_one_off(&self) -> bool {
        !matches!(self, Command::Run | Command::Scheduler | Command::Console)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Consume and run jobs until SIGTERM/SIGINT (the default); also runs the schedule
    /// dispatcher unless SCHEDULER_ENABLED=false.
    Run,
    /// Run only the schedule dispatcher (one of any number is active at a time).
    Scheduler,
    /// Manage the schedules on KAFKA_SCHEDULES_TOPIC.
    Schedules {
        #[command(subcommand)]
        command: SchedulesCommand,
    },
    /// The delayed jobs waiting on KAFKA_DELAYED_TOPIC for their time: list, show, cancel.
    Delayed {
        #[command(subcommand)]
        command: DelayedCommand,
    },
    /// Serve the console (web pages and the JSON API) on CONSOLE_PORT (needs CONSOLE_API_KEYS).
    Console,
    /// Find and replay dead letters on KAFKA_DLQ_TOPIC.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
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
        /// Run the job at this RFC 3339 time (sets its scheduledAt).
        #[arg(long, value_name = "TIME", conflicts_with = "in_")]
        at: Option<String>,
        /// Run the job this long from now, e.g. 10m (sets its scheduledAt).
        #[arg(long = "in", value_name = "DURATION")]
        in_: Option<humantime::Duration>,
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
    /// Create KAFKA_TOPIC, its results and dead-letter topics, the scheduler's and the
    /// console's (existing ones are kept), then check every one as it is: fails, saying
    /// what is wrong and how to fix it, if one lacks what mcp-jobs relies on.
    CreateTopics {
        #[arg(long, default_value_t = 6)]
        partitions: i32,
        #[arg(long, default_value_t = 1)]
        replication_factor: i32,
    },
    /// Print, as JSON by variable name, the settings the environment gives (secrets
    /// hidden; RDKAFKA_* overrides left out); with --defaults, those of an empty one.
    Config {
        #[arg(long)]
        defaults: bool,
    },
}

#[derive(Subcommand)]
enum SchedulesCommand {
    /// Create or update the schedules of a JSON or YAML file ({"schedules": [...]}).
    /// The whole file is checked first; nothing changes if any of it is wrong.
    Apply {
        file: PathBuf,
        /// Also delete the schedules the file does not name.
        #[arg(long)]
        prune: bool,
    },
    /// Every schedule, its last and next occurrence.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stop firing a schedule (occurrences while paused never fire).
    Pause { name: String },
    /// Fire a paused schedule again, from its next occurrence.
    Resume { name: String },
    /// Fire a schedule once now, outside its cron.
    Trigger { name: String },
    /// Delete a schedule and its state; with --key, any one record of the schedules
    /// topic by its key (one that cannot be read as a schedule, say).
    Delete {
        #[arg(required_unless_present = "key")]
        name: Option<String>,
        /// The record's key, exactly (e.g. `junk`, `nightly/state`).
        #[arg(long, conflicts_with = "name")]
        key: Option<String>,
    },
}

#[derive(Subcommand)]
enum DelayedCommand {
    /// The waiting jobs, earliest due first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// One waiting job: when it is due, where it came from, and the job itself.
    Show {
        job_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a waiting job: it never runs, and its result record says it was cancelled.
    Cancel { job_id: String },
}

/// Which dead letters: a query reads each partition from `--since` (or its last 10,000
/// records), never the whole topic.
#[derive(clap::Args)]
struct DlqFilter {
    /// Only this error kind (e.g. tool_error, refused).
    #[arg(long)]
    kind: Option<String>,
    /// Only this job's.
    #[arg(long = "job-id")]
    job_id: Option<String>,
    /// Only this group's (same kind and error signature; `dlq list --json` gives each
    /// group's id).
    #[arg(long)]
    group: Option<String>,
    /// Only those written since this RFC 3339 time, or this long ago (e.g. 2h, 1h 30m).
    #[arg(long, value_parser = parse_since)]
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Take those resolved without a replay (in the console) too.
    #[arg(long)]
    include_resolved: bool,
}

impl DlqFilter {
    fn filter(self, unreplayed_only: bool) -> dead_letters::Filter {
        dead_letters::Filter {
            kind: self.kind,
            job_id: self.job_id,
            since: self.since,
            unreplayed_only,
            group: self.group,
            with_resolved: self.include_resolved,
        }
    }
}

/// `--since`, as the console's filters take it.
fn parse_since(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    dead_letters::parse_since(text)?.ok_or_else(|| "--since needs a time or a duration".to_owned())
}

#[derive(Subcommand)]
enum DlqCommand {
    /// The newest dead letters matching the filter.
    List {
        #[command(flatten)]
        filter: DlqFilter,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Send dead letters back to their source topic, with their original key and
    /// headers and a header naming the dead letter: a job's newest (--job-id), or all
    /// those of a kind (--kind, optionally --since). Dead letters replayed before
    /// are left out unless --include-replayed.
    Replay {
        #[command(flatten)]
        filter: DlqFilter,
        /// Print what would be replayed, and send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Replay dead letters that were replayed before too.
        #[arg(long)]
        include_replayed: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Held to the end: dropping it sends the last spans.
    let _telemetry = mcp_jobs_telemetry::init("kafka-worker").context("telemetry")?;
    match run(Cli::parse()).await {
        // The reader of our output went away (`schedules list | head`): nothing is wrong.
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Run);
    // The one command that needs no valid configuration: it shows it.
    if let Command::Config { defaults } = command {
        return print_config(defaults);
    }
    let settings = WorkerSettings::from_env().context("kafka-worker configuration")?;
    let uses_kafka = settings.source == JobSource::Kafka || !matches!(command, Command::Lag { .. });
    if command.is_one_off() && uses_kafka {
        let timeout: std::time::Duration = cli.kafka_timeout.into();
        tokio::task::block_in_place(|| admin::reachable(&settings.kafka, timeout)).with_context(
            || {
                format!(
                    "cannot reach Kafka at {} (KAFKA_BROKERS) within {} (KAFKA_CLI_TIMEOUT)",
                    settings.kafka.brokers, cli.kafka_timeout
                )
            },
        )?;
    }
    match command {
        Command::Run => {
            let (ready, shutdown) = serve_until_signal(&settings).await?;
            let scheduler = (settings.scheduler_enabled && settings.source == JobSource::Kafka)
                .then(|| {
                    tokio::spawn(dispatcher::run(
                        settings.kafka.clone(),
                        ready.clone(),
                        shutdown.clone(),
                    ))
                });
            if !settings.scheduler_enabled && settings.source == JobSource::Kafka {
                // No dispatcher here: say whether one runs elsewhere.
                tokio::spawn(presence::watch(
                    settings.kafka.clone(),
                    ready.clone(),
                    shutdown.clone(),
                ));
            }
            match settings.source {
                JobSource::Kafka => consumer::run(settings, ready, shutdown.clone()).await,
                JobSource::Redis => redis_source::run(settings, ready, shutdown.clone()).await,
            }
            .context("kafka-worker failed")?;
            if let Some(scheduler) = scheduler {
                // The consumer stops only at shutdown, which stops the dispatcher too.
                shutdown.cancel();
                scheduler
                    .await
                    .context("the scheduler task")?
                    .context("the scheduler failed")?;
            }
        }
        Command::Scheduler => {
            let (ready, shutdown) = serve_until_signal(&settings).await?;
            ready.set_ready(true);
            dispatcher::run(settings.kafka, ready, shutdown)
                .await
                .context("the scheduler failed")?;
        }
        Command::Schedules { command } => schedules(&settings, command).await?,
        Command::Dlq { command } => dlq(&settings.kafka, command).await?,
        Command::Delayed { command } => delayed(&settings.kafka, command).await?,
        Command::Console => {
            let console = ConsoleSettings::from_env()
                .context("console configuration")?
                .with_servers(settings.server_urls.clone(), settings.api_key.clone());
            let (ready, shutdown) = serve_until_signal(&settings).await?;
            ready.set_ready(true);
            let port = console.port;
            let console = Console::start(settings.kafka, &console, shutdown.clone())
                .await
                .context("starting the console")?;
            mcp_jobs_console::serve(console, port, shutdown)
                .await
                .with_context(|| format!("serving the console on CONSOLE_PORT={port}"))?;
        }
        Command::Publish {
            file,
            key,
            wait,
            at,
            in_,
        } => {
            let mut message = read_job(file.as_ref())?;
            let due = match (at, in_) {
                (Some(at), _) => Some(
                    chrono::DateTime::parse_from_rfc3339(&at)
                        .with_context(|| format!("--at {at:?} is not an RFC 3339 time"))?
                        .with_timezone(&chrono::Utc),
                ),
                (None, Some(wait)) => Some(
                    chrono::Duration::from_std(*wait)
                        .ok()
                        .and_then(|wait| chrono::Utc::now().checked_add_signed(wait))
                        .with_context(|| format!("--in {wait} is too far ahead"))?,
                ),
                (None, None) => None,
            };
            if let Some(due) = due {
                message = with_scheduled_at(&message, due)?;
            }
            if let Ok(job) = ScheduledJobEnvelope::from_slice(&message) {
                check_named(&settings, named_by(&job), "the job").await?;
            }
            let published = publish::publish(&settings.kafka, &message, key.as_deref())
                .await
                .context("publishing the job")?;
            eprintln!(
                "published job {} to {} (partition {}, offset {})",
                published.job_id, settings.kafka.topic, published.partition, published.offset
            );
            if due.is_some() {
                warn_without_dispatcher(&settings.kafka);
            }
            if let Some(seconds) = wait {
                let result = publish::wait_for_result(
                    &settings.kafka,
                    &published,
                    Duration::from_secs(seconds),
                )
                .await
                .context("waiting for the result")?;
                writeln!(
                    std::io::stdout(),
                    "{}",
                    serde_json::to_string_pretty(&result)?
                )
                .context("printing the result")?;
                if !result.succeeded() {
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
                    let lag = tokio::task::block_in_place(|| group::group_lag(&settings.kafka))
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
        Command::Config { .. } => {}
        Command::CreateTopics {
            partitions,
            replication_factor,
        } => {
            let created = admin::create_topics(&settings.kafka, partitions, replication_factor)
                .await
                .context("creating topics")?;
            let problems = admin::check_topics(&settings.kafka, partitions)
                .await
                .context("checking topics")?;
            if !problems.is_empty() {
                for problem in &problems {
                    eprintln!("problem: {problem}");
                }
                anyhow::bail!(
                    "{} of the topics {} not as mcp-jobs needs them ({} created)",
                    problems.len(),
                    if problems.len() == 1 { "is" } else { "are" },
                    created.len()
                );
            }
            eprintln!("topics ready ({} created)", created.len());
        }
    }
    Ok(())
}

/// Tells the operator when no dispatcher is active: what they just did waits for one.
/// `kafka-worker config`: every process's settings (the worker's, Kafka's, the
/// console's) in one object.
fn print_config(defaults: bool) -> anyhow::Result<()> {
    let vars: Vec<(String, String)> = if defaults {
        Vec::new()
    } else {
        std::env::vars().collect()
    };
    let mut all = WorkerSettings::described(vars.clone()).context("kafka-worker configuration")?;
    all.extend(KafkaSettings::described(vars.clone()).context("Kafka configuration")?);
    all.extend(ConsoleSettings::described(vars).context("console configuration")?);
    writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&all)?)
        .context("printing the configuration")
}

fn warn_without_dispatcher(settings: &KafkaSettings) {
    match tokio::task::block_in_place(|| presence::look_up(settings)) {
        presence::Presence::Unknown(why) => {
            eprintln!("note: whether a dispatcher is active cannot be told: {why}");
        }
        seen => {
            if let Some(warning) = seen.warning(settings) {
                eprintln!("warning: {warning}");
            }
        }
    }
}

/// Serves `/metrics`, `/health` and `/ready`, and cancels the returned token on
/// SIGTERM/SIGINT.
async fn serve_until_signal(
    settings: &WorkerSettings,
) -> anyhow::Result<(mcp_jobs_runtime::Readiness, CancellationToken)> {
    let metrics = mcp_jobs_telemetry::install_metrics().context("metrics recorder")?;
    let ready = mcp_jobs_runtime::Readiness::default();
    health::serve(settings.metrics_port, metrics, ready.clone())
        .await
        .with_context(|| format!("serving /metrics on METRICS_PORT={}", settings.metrics_port))?;
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            mcp_jobs_runtime::shutdown_signal().await;
            shutdown.cancel();
        }
    });
    Ok((ready, shutdown))
}

/// The servers `schedules` name without describing them.
fn named_by_schedules(schedules: &[Schedule]) -> BTreeSet<String> {
    schedules
        .iter()
        .filter_map(|schedule| schedule.sample_job().ok())
        .flat_map(|job| named_by(&job))
        .collect()
}

/// Refuses a job naming servers it does not describe and that mcp-server does not have;
/// when mcp-server cannot be asked, says so and goes on.
async fn check_named(
    settings: &WorkerSettings,
    names: BTreeSet<String>,
    what: &str,
) -> anyhow::Result<()> {
    let Some(url) = settings.server_urls.first().filter(|_| !names.is_empty()) else {
        return Ok(());
    };
    match missing_named_servers(url, settings.api_key.as_deref(), &names).await {
        Ok(missing) if missing.is_empty() => Ok(()),
        Ok(missing) => anyhow::bail!(
            "{what} names servers that are not in its mcpServers and that mcp-server ({url}) \
             does not have: {missing:?} (GET /servers lists those it has)"
        ),
        Err(e) => {
            eprintln!(
                "warning: could not ask mcp-server ({url}) whether it has the named servers \
                 {names:?}: {e}; going on"
            );
            Ok(())
        }
    }
}

async fn schedules(worker: &WorkerSettings, command: SchedulesCommand) -> anyhow::Result<()> {
    let settings = &worker.kafka;
    let schedules = Schedules::new(settings).context("connecting to Kafka")?;
    let mut out = std::io::stdout();
    match command {
        SchedulesCommand::Apply { file, prune } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let parsed = schedules
                .parse(&text)
                .with_context(|| format!("reading {}", file.display()))?;
            check_named(worker, named_by_schedules(&parsed), "the schedules file").await?;
            let applied = schedules
                .apply(parsed, prune)
                .await
                .with_context(|| format!("applying {}", file.display()))?;
            writeln!(
                out,
                "created {}, updated {}, unchanged {}, deleted {}",
                applied.created.len(),
                applied.updated.len(),
                applied.unchanged.len(),
                applied.deleted.len()
            )?;
            for (what, names) in [
                ("created", &applied.created),
                ("updated", &applied.updated),
                ("deleted", &applied.deleted),
            ] {
                for name in names {
                    writeln!(out, "  {what} {name}")?;
                }
            }
            for warning in &applied.warnings {
                eprintln!("warning: {warning}");
            }
        }
        SchedulesCommand::List { json } => {
            let listed = schedules.list().context("listing schedules")?;
            warn_without_dispatcher(settings);
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&listed)?)?;
            } else {
                writeln!(out, "{}", tables::schedules(&listed))?;
            }
        }
        SchedulesCommand::Pause { name } => {
            let changed = schedules.set_paused(&name, true).await?;
            writeln!(
                out,
                "{name} {}",
                if changed {
                    "paused"
                } else {
                    "was paused already"
                }
            )?;
        }
        SchedulesCommand::Resume { name } => {
            let changed = schedules.set_paused(&name, false).await?;
            writeln!(
                out,
                "{name} {}",
                if changed { "resumed" } else { "was not paused" }
            )?;
        }
        SchedulesCommand::Trigger { name } => {
            let published = schedules.trigger(&name).await?;
            writeln!(
                out,
                "triggered {}: job {} (partition {}, offset {})",
                name, published.job_id, published.partition, published.offset
            )?;
        }
        SchedulesCommand::Delete { name, key } => match (name, key) {
            (_, Some(key)) => {
                schedules.delete_record(&key).await?;
                writeln!(out, "deleted the record with key {key:?}")?;
            }
            (Some(name), None) => {
                schedules.delete(&name).await?;
                writeln!(out, "deleted {name}")?;
            }
            (None, None) => anyhow::bail!("say which schedule, or --key"),
        },
    }
    Ok(())
}

async fn delayed(settings: &KafkaSettings, command: DelayedCommand) -> anyhow::Result<()> {
    let jobs = DelayedJobs::new(settings).context("connecting to Kafka")?;
    let mut out = std::io::stdout();
    match command {
        DelayedCommand::List { limit, json } => {
            let listing = tokio::task::block_in_place(|| jobs.list(limit))
                .context("reading the delayed jobs")?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&listing.jobs)?)?;
            } else {
                writeln!(out, "{}", tables::delayed(&listing.jobs))?;
                eprintln!("{} shown of {} waiting", listing.jobs.len(), listing.total);
            }
            warn_without_dispatcher(settings);
        }
        DelayedCommand::Show { job_id, json } => {
            let (job, envelope) = tokio::task::block_in_place(|| jobs.show(&job_id))?;
            let shown = serde_json::json!({ "waiting": job, "job": envelope });
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&shown)?)?;
            } else {
                writeln!(out, "{}", tables::delayed(std::slice::from_ref(&job)))?;
                writeln!(out, "{}", serde_json::to_string_pretty(&envelope)?)?;
            }
        }
        DelayedCommand::Cancel { job_id } => {
            let job = jobs.cancel(&job_id).await?;
            let due = job.due_text();
            writeln!(
                out,
                "cancelled {job_id} (was due {due}); its result record says so"
            )?;
        }
    }
    Ok(())
}

async fn dlq(settings: &KafkaSettings, command: DlqCommand) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let _stop_following = stop.clone().drop_guard();
    admin::create_console_topic(settings)
        .await
        .context("the console's ledger topic")?;
    let ledger = tokio::task::block_in_place(|| Ledger::open(settings, stop))
        .context("reading the console's ledger (which dead letters were replayed)")?;
    let letters = DeadLetters::new(settings, &ledger);
    let reader = topic::reader(settings, "kafka-worker-dlq").context("a Kafka consumer")?;
    let mut out = std::io::stdout();
    match command {
        DlqCommand::List {
            filter,
            limit,
            json,
        } => {
            let found =
                tokio::task::block_in_place(|| letters.find(&reader, &filter.filter(false), limit))
                    .context("reading dead letters")?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&found)?)?;
            } else {
                writeln!(out, "{}", tables::dead_letters(&found.dead_letters))?;
                eprintln!(
                    "{} shown of {} matching ({} records read)",
                    found.dead_letters.len(),
                    found.matched,
                    found.scanned
                );
            }
        }
        DlqCommand::Replay {
            filter,
            dry_run,
            include_replayed,
        } => {
            let filter = filter.filter(!include_replayed);
            let Some(limit) = filter.replay_limit() else {
                anyhow::bail!("say which dead letters: --job-id ID, or --kind KIND")
            };
            let found = tokio::task::block_in_place(|| letters.find(&reader, &filter, limit))
                .context("reading dead letters")?;
            let how = dead_letters::Replay {
                who: "cli",
                dry_run,
                again: include_replayed,
                action: None,
            };
            let replayed = letters
                .replay(&found.dead_letters, &how)
                .await
                .context("replaying dead letters")?;
            let verb = if dry_run { "would replay" } else { "replayed" };
            tracing::info!(
                dry_run, kind = ?filter.kind, job_id = ?filter.job_id, since = ?filter.since,
                replayed = replayed.replayed.len(), refused = replayed.refused.len(),
                "dead-letter replay"
            );
            for dead_letter in &replayed.replayed {
                writeln!(out, "{verb} {dead_letter}")?;
            }
            for (dead_letter, why) in &replayed.refused {
                writeln!(out, "refused {dead_letter}: {why}")?;
            }
            writeln!(
                out,
                "{verb} {}, refused {}",
                replayed.replayed.len(),
                replayed.refused.len()
            )?;
        }
    }
    Ok(())
}

/// The job with its `scheduledAt` set to `due`.
fn with_scheduled_at(
    message: &[u8],
    due: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Vec<u8>> {
    let mut job: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(message).context("the job is not a JSON object")?;
    job.insert("scheduledAt".into(), rfc3339(due).into());
    Ok(serde_json::to_vec(&job)?)
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
