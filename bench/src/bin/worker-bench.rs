//! worker-bench: kafka-worker's throughput, latency and memory against its ceilings,
//! with broker, mcp-server and worker all on this machine (release builds).
//!
//! Each scenario publishes a backlog, starts a worker on it and measures the drain
//! rate (jobs/s, from the first outcome to the last); then, with the same worker
//! caught up, it publishes at half that rate and measures latency from publish to the
//! outcome record. The ceilings are the raw consume rate of the same messages and
//! mcp-server's own `call_tool` rate at the worker's concurrency, through the same client.
//!
//! The latency part runs jobs one at a time on a warm child, as a user running
//! scheduled jobs one after another does: a one-call job and a 50-call job, job
//! duration (startedAt → finishedAt) and publish → outcome record, next to the same
//! call made straight to mcp-server through the worker's own client, as ratios.
//! Run with `bash bench/worker.sh` (`--part latency` for that part alone).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;
use mcp_jobs_bench::{percentile, rss_kb};
use mcp_jobs_e2e::{enqueue, fixture, fixture_job, start_worker, Broker, McpServer, API_KEY};
use mcp_jobs_engine::tool_client::ToolClient;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::Message;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "kafka-worker throughput, latency and memory against its ceilings")]
struct Args {
    /// Backlog of the fast-job scenario (and of the ceilings).
    #[arg(long, default_value_t = 20_000)]
    fast_jobs: usize,
    /// Backlog of the slow-job scenarios at concurrency 128 and 256.
    #[arg(long, default_value_t = 20_000)]
    slow_jobs: usize,
    /// Seconds of paced publishing for the latency measurement.
    #[arg(long, default_value_t = 5)]
    paced_seconds: u64,
    /// Partitions of every benchmark topic.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Jobs run one at a time in the latency part, for each job shape.
    #[arg(long, default_value_t = 200)]
    latency_jobs: usize,
    /// Which part to run.
    #[arg(long, value_enum, default_value_t = Part::All)]
    part: Part,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    All,
    Throughput,
    Latency,
}

/// A scenario's backlog.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backlog {
    /// On the topic already (the ceilings read it first).
    Published,
    /// Published on topics with a status topic: the worker reports every job in flight.
    Reported,
    /// Published on topics without one: the worker reports nothing.
    Unreported,
}

/// Calls in the long job of the latency part.
const LONG_JOB_CALLS: usize = 50;

const SLOW_MS: u64 = 50;

struct Row {
    name: String,
    jobs_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    peak_rss_mb: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let broker = Broker::start();
    // The production log level: per-request rmcp logs would measure the terminal.
    let server = McpServer::start(&[("RUST_LOG", "info,rmcp=warn")]);
    eprintln!("broker {} · mcp-server {}", broker.address, server.url());

    let mut missed = Vec::new();
    if args.part != Part::Throughput {
        missed.extend(latency(&broker, &server, args.latency_jobs)?);
    }
    if args.part != Part::Latency {
        missed.extend(throughput(&broker, &server, &args)?);
    }
    if !missed.is_empty() {
        bail!("targets missed: {}", missed.join(", "));
    }
    Ok(())
}

/// The drain-rate scenarios against their ceilings; the names of missed targets.
fn throughput(broker: &Broker, server: &McpServer, args: &Args) -> anyhow::Result<Vec<String>> {
    let echo = |id: &str| fixture_job(id, "echo", json!({ "text": "hi" }));
    let sleep = |id: &str| fixture_job(id, "sleep", json!({ "ms": SLOW_MS }));

    broker.create_job_topics("fast", args.partitions);
    publish_backlog(broker, "fast", "fast", args.fast_jobs, &echo)?;
    let consume_ceiling = raw_consume_rate(broker, "fast", args.fast_jobs)?;
    let server_ceiling = server_call_rate(
        &server.url(),
        64,
        Duration::from_secs(5),
        "echo",
        json!({ "text": "hi" }),
    )?;
    let slow_ceiling = server_call_rate(
        &server.url(),
        128,
        Duration::from_secs(5),
        "sleep",
        json!({ "ms": SLOW_MS }),
    )?;
    eprintln!("slow ceiling {slow_ceiling:.0}/s");
    eprintln!(
        "ceilings: consume {consume_ceiling:.0}/s, mcp-server call_tool {server_ceiling:.0}/s"
    );

    let scenario = Scenario {
        broker,
        server_url: server.url(),
        paced: Duration::from_secs(args.paced_seconds),
        partitions: args.partitions,
    };
    let fast = scenario.run("fast", 64, args.fast_jobs, Backlog::Published, &echo)?;
    let fast_unreported = scenario.run(
        "fast-no-status",
        64,
        args.fast_jobs,
        Backlog::Unreported,
        &echo,
    )?;
    let slow_1 = scenario.run("slow-c1", 1, 100, Backlog::Reported, &sleep)?;
    let slow_1_unreported =
        scenario.run("slow-c1-no-status", 1, 100, Backlog::Unreported, &sleep)?;
    let slow_128 = scenario.run("slow-c128", 128, args.slow_jobs, Backlog::Reported, &sleep)?;
    let slow_256 = scenario.run("slow-c256", 256, args.slow_jobs, Backlog::Reported, &sleep)?;

    println!();
    println!("| scenario | concurrency | jobs/s | p50 ms | p99 ms | peak worker RSS MB |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (row, concurrency) in [
        (&fast, 64),
        (&fast_unreported, 64),
        (&slow_1, 1),
        (&slow_1_unreported, 1),
        (&slow_128, 128),
        (&slow_256, 256),
    ] {
        println!(
            "| {} | {concurrency} | {:.0} | {:.1} | {:.1} | {:.1} |",
            row.name, row.jobs_per_s, row.p50_ms, row.p99_ms, row.peak_rss_mb
        );
    }
    println!();
    println!(
        "status topic (every job in flight reported): {:.2}× the jobs/s, {:.2}× the p50 at concurrency 64; {:.2}× the p50 one at a time",
        fast.jobs_per_s / fast_unreported.jobs_per_s,
        fast.p50_ms / fast_unreported.p50_ms,
        slow_1.p50_ms / slow_1_unreported.p50_ms,
    );
    let lower_ceiling = consume_ceiling.min(server_ceiling);
    let ideal_128 = 128.0 * 1000.0 / SLOW_MS as f64;
    println!();
    println!("| check | measured | target | |");
    println!("|---|---:|---:|---|");
    let checks = [
        (
            "fast job / lower ceiling",
            fast.jobs_per_s / lower_ceiling,
            0.5,
            format!(
                "ceilings: raw consume {consume_ceiling:.0}/s, mcp-server call_tool {server_ceiling:.0}/s at 64"
            ),
        ),
        (
            "slow job @128 / ideal 2560 jobs/s",
            slow_128.jobs_per_s / ideal_128,
            0.8,
            format!(
                "{:.0}× the one-at-a-time design ({:.1} jobs/s); {:.2} of mcp-server's own sleep-tool rate at 128 ({slow_ceiling:.0}/s)",
                slow_128.jobs_per_s / slow_1.jobs_per_s,
                slow_1.jobs_per_s,
                slow_128.jobs_per_s / slow_ceiling,
            ),
        ),
        (
            "worker RSS @256 ≤ 64 MB (as fraction of 64)",
            slow_256.peak_rss_mb / 64.0,
            1.0,
            format!("{:.1} MB peak", slow_256.peak_rss_mb),
        ),
    ];
    let mut missed = Vec::new();
    for (name, ratio, target, note) in checks {
        let pass = if name.starts_with("worker RSS") {
            ratio <= target
        } else {
            ratio >= target
        };
        if !pass {
            missed.push(name.to_owned());
        }
        let verdict = if pass { "pass" } else { "MISS" };
        println!("| {name} | {ratio:.2} | {target:.2} | {verdict}: {note} |");
    }
    Ok(missed)
}

/// Jobs one at a time on a warm child against the same calls made straight to
/// mcp-server; the names of missed targets.
fn latency(broker: &Broker, server: &McpServer, jobs: usize) -> anyhow::Result<Vec<String>> {
    let echo_call = || json!({ "server": "fx", "tool": "echo", "arguments": { "text": "hi" } });
    let one_call = |id: &str| fixture_job(id, "echo", json!({ "text": "hi" }));
    let long = |id: &str| {
        let mut job = fixture_job(id, "echo", json!({}));
        let payload = &mut job["payload"];
        payload["calls"] = Value::Array((0..LONG_JOB_CALLS).map(|_| echo_call()).collect());
        for field in ["server", "tool", "arguments"] {
            payload.as_object_mut().map(|p| p.remove(field));
        }
        job
    };
    let direct = direct_call_latency(&server.url(), jobs)?;
    let topic = "latency";
    broker.create_job_topics(topic, 1);
    let worker = start_worker(broker, &server.url(), topic, "bench-latency", &[]);
    let mut reader = TopicReader::new(broker, &format!("{topic}.results"));
    let producer: BaseProducer = broker.client_config().set("linger.ms", "0").create()?;
    let mut run = |name: &str, job: &dyn Fn(&str) -> Value, count: usize| {
        // The first job of a shape warms the worker's session and the child.
        sequential_jobs(
            &producer,
            &mut reader,
            topic,
            &format!("{name}-warm"),
            1,
            job,
        )?;
        sequential_jobs(&producer, &mut reader, topic, name, count, job)
    };
    let one = run("one-call", &one_call, jobs)?;
    let fifty = run("fifty-call", &long, (jobs / 4).max(10))?;
    drop(worker);

    println!();
    println!("Latency, one job at a time (warm child, `echo` of mcp-fixture):");
    println!();
    println!("| what | p50 ms | p99 ms |");
    println!("|---|---:|---:|");
    println!(
        "| `call_tool` straight to mcp-server (the worker's client) | {:.2} | {:.2} |",
        direct.p50, direct.p99
    );
    println!(
        "| one-call job: duration | {:.2} | {:.2} |",
        one.duration.p50, one.duration.p99
    );
    println!(
        "| one-call job: publish → outcome record | {:.2} | {:.2} |",
        one.end_to_end.p50, one.end_to_end.p99
    );
    println!(
        "| {LONG_JOB_CALLS}-call job: duration | {:.2} | {:.2} |",
        fifty.duration.p50, fifty.duration.p99
    );
    println!(
        "| {LONG_JOB_CALLS}-call job: publish → outcome record | {:.2} | {:.2} |",
        fifty.end_to_end.p50, fifty.end_to_end.p99
    );
    let checks = [
        (
            "one-call job duration / (1.5 × direct + 2 ms)",
            one.duration.p50 / (1.5 * direct.p50 + 2.0),
            format!("{:.2}× the direct call", one.duration.p50 / direct.p50),
        ),
        (
            "50-call job duration / (1.2 × 50 direct calls)",
            fifty.duration.p50 / (1.2 * LONG_JOB_CALLS as f64 * direct.p50),
            format!(
                "{:.2}× 50 direct calls",
                fifty.duration.p50 / (LONG_JOB_CALLS as f64 * direct.p50)
            ),
        ),
        (
            "publish → outcome over the direct call / 20 ms",
            (one.end_to_end.p50 - direct.p50) / 20.0,
            format!("{:.2} ms over", one.end_to_end.p50 - direct.p50),
        ),
    ];
    println!();
    println!("| check | measured | target | |");
    println!("|---|---:|---:|---|");
    let mut missed = Vec::new();
    for (name, ratio, note) in checks {
        let pass = ratio <= 1.0;
        if !pass {
            missed.push(name.to_owned());
        }
        let verdict = if pass { "pass" } else { "MISS" };
        println!("| {name} | {ratio:.2} | ≤ 1.00 | {verdict}: {note} |");
    }
    Ok(missed)
}

/// The p50 and p99 of a set of samples, in ms.
struct Spread {
    p50: f64,
    p99: f64,
}

impl Spread {
    fn of(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        Self {
            p50: percentile(&samples, 0.5),
            p99: percentile(&samples, 0.99),
        }
    }
}

struct Sequential {
    duration: Spread,
    end_to_end: Spread,
}

/// Publishes `count` jobs one at a time, each once the previous one's outcome is read.
fn sequential_jobs(
    producer: &BaseProducer,
    reader: &mut TopicReader,
    topic: &str,
    prefix: &str,
    count: usize,
    job: &dyn Fn(&str) -> Value,
) -> anyhow::Result<Sequential> {
    let mut durations = Vec::with_capacity(count);
    let mut end_to_end = Vec::with_capacity(count);
    for i in 0..count {
        let id = format!("{prefix}-{i}");
        let payload = serde_json::to_vec(&job(&id))?;
        let sent = Instant::now();
        // Not flush(): rust-rdkafka's flush waits for delivery in 100 ms polls, a
        // fixed wait of the benchmark's own. With linger.ms=0 the record leaves at once.
        send(producer, topic, &payload)?;
        let outcome = reader.outcome_of(&id, Duration::from_secs(60))?;
        producer.poll(Duration::ZERO);
        end_to_end.push(sent.elapsed().as_secs_f64() * 1000.0);
        let time = |field: &str| {
            outcome[field]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .with_context(|| format!("{field} of {id}"))
        };
        let took = time("finishedAt")? - time("startedAt")?;
        durations.push(took.num_microseconds().unwrap_or_default() as f64 / 1000.0);
    }
    Ok(Sequential {
        duration: Spread::of(durations),
        end_to_end: Spread::of(end_to_end),
    })
}

/// `count` `call_tool` calls one at a time straight to mcp-server, warm.
fn direct_call_latency(url: &str, count: usize) -> anyhow::Result<Spread> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let client = ToolClient::new(&[url.to_owned()], Some(API_KEY.to_owned()), 1);
        let arguments = fixture_call("echo", json!({ "text": "hi" }));
        let mut samples = Vec::with_capacity(count);
        for i in 0..=count {
            let started = Instant::now();
            call_once(&client, &arguments).await?;
            // The first call starts the child.
            if i > 0 {
                samples.push(started.elapsed().as_secs_f64() * 1000.0);
            }
        }
        Ok(Spread::of(samples))
    })
}

struct Scenario<'a> {
    broker: &'a Broker,
    server_url: String,
    paced: Duration,
    partitions: i32,
}

impl Scenario<'_> {
    /// Drains a backlog of `backlog` jobs with one worker at `concurrency`, then
    /// measures latency at half the drain rate.
    fn run(
        &self,
        topic: &str,
        concurrency: usize,
        backlog: usize,
        published: Backlog,
        job: &dyn Fn(&str) -> Value,
    ) -> anyhow::Result<Row> {
        if published != Backlog::Published {
            let status = published == Backlog::Reported;
            self.broker
                .create_job_topics_reporting(topic, self.partitions, status);
            publish_backlog(self.broker, topic, topic, backlog, job)?;
        }
        let mut results = TopicReader::new(self.broker, &format!("{topic}.results"));
        let concurrency_var = concurrency.to_string();
        let worker = start_worker(
            self.broker,
            &self.server_url,
            topic,
            &format!("bench-{topic}"),
            &[("WORKER_CONCURRENCY", &concurrency_var)],
        );
        let rss = RssSampler::start(worker.pid());
        let drained = results.collect(backlog, Duration::from_secs(600))?;
        let (first, last) = drained
            .values()
            .fold((i64::MAX, i64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
        let jobs_per_s = (backlog - 1) as f64 * 1000.0 / (last - first).max(1) as f64;

        let rate = (jobs_per_s / 2.0).max(1.0);
        let sent = publish_paced(self.broker, topic, rate, self.paced, job)?;
        let finished = results.collect(sent.len(), Duration::from_secs(600))?;
        let mut latencies: Vec<f64> = sent
            .iter()
            .filter_map(|(id, at)| Some((finished.get(id)? - at) as f64))
            .collect();
        latencies.sort_by(f64::total_cmp);
        let peak_rss_mb = rss.stop();
        drop(worker);
        let row = Row {
            name: topic.to_owned(),
            jobs_per_s,
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
            peak_rss_mb,
        };
        eprintln!(
            "{topic}: {:.0} jobs/s draining {backlog}; at {rate:.0}/s p50 {:.1} ms p99 {:.1} ms; RSS {:.1} MB",
            row.jobs_per_s, row.p50_ms, row.p99_ms, row.peak_rss_mb
        );
        Ok(row)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn producer(broker: &Broker) -> anyhow::Result<BaseProducer> {
    Ok(broker
        .client_config()
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()?)
}

fn send(producer: &BaseProducer, topic: &str, payload: &[u8]) -> anyhow::Result<()> {
    enqueue(producer, BaseRecord::<(), [u8]>::to(topic).payload(payload)).context("producing a job")
}

fn publish_backlog(
    broker: &Broker,
    topic: &str,
    prefix: &str,
    count: usize,
    job: &dyn Fn(&str) -> Value,
) -> anyhow::Result<()> {
    let producer = producer(broker)?;
    for i in 0..count {
        send(
            &producer,
            topic,
            &serde_json::to_vec(&job(&format!("{prefix}-{i}")))?,
        )?;
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(())
}

/// Publishes at `rate` jobs/s for `duration`; returns each job's id and send time.
fn publish_paced(
    broker: &Broker,
    topic: &str,
    rate: f64,
    duration: Duration,
    job: &dyn Fn(&str) -> Value,
) -> anyhow::Result<Vec<(String, i64)>> {
    let producer = producer(broker)?;
    let total = (rate * duration.as_secs_f64()).ceil() as usize;
    let started = Instant::now();
    let mut sent = Vec::with_capacity(total);
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let id = format!("{topic}-paced-{i}");
        sent.push((id.clone(), now_ms()));
        send(&producer, topic, &serde_json::to_vec(&job(&id))?)?;
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(sent)
}

/// Reads a topic from the beginning as records arrive (outcomes, or the raw backlog).
struct TopicReader {
    consumer: BaseConsumer,
}

impl TopicReader {
    fn new(broker: &Broker, topic: &str) -> Self {
        Self {
            consumer: broker.reader(topic).0,
        }
    }

    /// The next record, skipping the end-of-partition events the reader reports.
    fn next(&self, wait: Duration) -> anyhow::Result<Option<BorrowedMessage<'_>>> {
        match self.consumer.poll(wait) {
            Some(Ok(message)) => Ok(Some(message)),
            Some(Err(KafkaError::PartitionEOF(_))) | None => Ok(None),
            Some(Err(e)) => Err(e.into()),
        }
    }

    /// The outcome record of job `id`, read as it arrives (earlier records skipped).
    fn outcome_of(&mut self, id: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let Some(message) = self.next(Duration::from_millis(100))? else {
                continue;
            };
            let outcome: Value = serde_json::from_slice(message.payload().unwrap_or_default())?;
            if outcome["jobID"] == id {
                if outcome["status"] != "succeeded" {
                    bail!("a benchmark job failed: {outcome}");
                }
                return Ok(outcome);
            }
        }
        bail!("no outcome of {id} within {timeout:?}")
    }

    /// The next `count` distinct jobs' outcome record timestamps (ms), by job id.
    fn collect(&mut self, count: usize, timeout: Duration) -> anyhow::Result<HashMap<String, i64>> {
        let deadline = Instant::now() + timeout;
        let mut seen = HashMap::with_capacity(count);
        while seen.len() < count {
            if Instant::now() > deadline {
                bail!("only {} of {count} outcomes within {timeout:?}", seen.len());
            }
            let Some(message) = self.next(Duration::from_millis(100))? else {
                continue;
            };
            let outcome: Value = serde_json::from_slice(message.payload().unwrap_or_default())?;
            if outcome["status"] != "succeeded" {
                bail!("a benchmark job failed: {outcome}");
            }
            let id = outcome["jobID"].as_str().unwrap_or_default().to_owned();
            let at = message.timestamp().to_millis().unwrap_or_else(now_ms);
            seen.entry(id).or_insert(at);
        }
        Ok(seen)
    }
}

/// Reads the backlog with a bare rdkafka consumer, doing nothing with it.
fn raw_consume_rate(broker: &Broker, topic: &str, count: usize) -> anyhow::Result<f64> {
    let reader = TopicReader::new(broker, topic);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut received = 0;
    let mut first = None;
    while received < count {
        if Instant::now() > deadline {
            bail!("raw consumer stalled after {received} of {count}");
        }
        if reader.next(Duration::from_millis(100))?.is_some() {
            first.get_or_insert_with(Instant::now);
            received += 1;
        }
    }
    let elapsed = first.map(|f| f.elapsed()).unwrap_or_default();
    Ok((count - 1) as f64 / elapsed.as_secs_f64().max(1e-6))
}

/// mcp-server's `call_tool` rate at `concurrency`, through the worker's own client,
/// with the arguments a fast job sends.
fn server_call_rate(
    url: &str,
    concurrency: usize,
    duration: Duration,
    tool: &str,
    tool_arguments: Value,
) -> anyhow::Result<f64> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let client = Arc::new(ToolClient::new(
            &[url.to_owned()],
            Some(API_KEY.to_owned()),
            concurrency,
        ));
        let arguments = fixture_call(tool, tool_arguments);
        // Warm up: the first call starts the stdio child.
        call_once(&client, &arguments).await?;
        let calls = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (client, arguments, calls, stop) = (
                    client.clone(),
                    arguments.clone(),
                    calls.clone(),
                    stop.clone(),
                );
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let meta = Default::default();
                        if client
                            .call(
                                "call_tool",
                                arguments.clone(),
                                meta,
                                Duration::from_secs(30),
                            )
                            .await
                            .is_ok()
                        {
                            calls.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(duration).await;
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await?;
        }
        Ok(calls.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
    })
}

/// `call_tool` arguments for `tool` of mcp-fixture.
fn fixture_call(tool: &str, arguments: Value) -> rmcp::model::JsonObject {
    rmcp::object!({
        "serverName": "fx",
        "config": { "command": fixture() },
        "tool": tool,
        "arguments": arguments,
        "timeoutMs": 60000,
    })
}

/// One `call_tool` through the worker's client.
async fn call_once(client: &ToolClient, arguments: &rmcp::model::JsonObject) -> anyhow::Result<()> {
    client
        .call(
            "call_tool",
            arguments.clone(),
            Default::default(),
            Duration::from_secs(30),
        )
        .await
        .map(drop)
        .context("a call to mcp-server")
}

/// Samples a process's resident set size until stopped; reports the peak in MB.
struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak_kb = 0;
            while !flag.load(Ordering::Relaxed) {
                peak_kb = peak_kb.max(rss_kb(pid).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(50));
            }
            peak_kb
        });
        Self { stop, handle }
    }

    fn stop(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or(0) as f64 / 1024.0
    }
}
