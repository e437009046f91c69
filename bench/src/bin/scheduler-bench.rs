//! scheduler-bench: the dispatcher's figures on this machine, against a real broker.
//!
//! 1. Firing: N schedules that each fire every second (N occurrences due per second),
//!    for a while; occurrences fired per second, and how late they were.
//! 2. The price of a transaction: one occurrence (its job and its state record)
//!    published in a transaction against the same two records produced and
//!    acknowledged without one, one at a time; and batches.
//! 3. Delayed jobs: memory of a dispatcher holding 100,000 waiting jobs against the
//!    same dispatcher holding none; its load time on takeover; how fast it sends a
//!    burst due at once; and, one at a time, how late a due job is sent.
//!
//! Run with `bash bench/scheduler.sh` (`--help` for the sizes).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::Parser;
use mcp_jobs_bench::{percentile, rss_kb};
use mcp_jobs_e2e::{
    enqueue, free_port, headers, scrape, start_dispatcher, worker_cli, Broker, Process, Sample,
};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer};
use serde_json::json;

#[derive(Parser)]
#[command(
    about = "The schedule dispatcher: occurrences per second, transaction cost, delayed jobs held"
)]
struct Args {
    /// Schedules firing every second, in each firing run (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000")]
    schedules: Vec<usize>,
    /// How long each firing run lasts, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Delayed jobs held for the memory figure.
    #[arg(long, default_value_t = 100_000)]
    delayed: usize,
    /// Delayed jobs made due at once for the send rate.
    #[arg(long, default_value_t = 20_000)]
    burst: usize,
    /// Transactions (and plain sends) timed one at a time.
    #[arg(long, default_value_t = 300)]
    transactions: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let broker = Broker::start();
    println!("scheduler-bench on Apache Kafka at {}\n", broker.address);
    println!("## Firing: N schedules, each every second");
    println!("| schedules | due per s | fired per s | fired / due | lateness p50 | p99 | max |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (run, &count) in args.schedules.iter().enumerate() {
        firing(&broker, run, count, args.seconds)?;
    }
    println!("\n## The price of a transaction (one at a time)");
    transaction_cost(&broker, args.transactions)?;
    println!("\n## Delayed jobs");
    delayed(&broker, args.delayed, args.burst)?;
    Ok(())
}

fn job() -> serde_json::Value {
    json!({"jobType": "list-tools", "payload": {"mcpServers": {"t": {"command": "mcp-server-time"}}}})
}

/// The sum of every sample called `name`, whatever its labels.
fn total(samples: &[Sample], name: &str) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.value)
        .sum()
}

fn metrics(port: u16) -> Vec<Sample> {
    scrape(&format!("http://127.0.0.1:{port}/metrics"))
}

/// [`total`] of a process that may not serve its metrics yet (0 until it does).
fn total_when_up(port: u16, name: &str) -> f64 {
    let served = reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics"))
        .is_ok_and(|r| r.status().is_success());
    if served {
        total(&metrics(port), name)
    } else {
        0.0
    }
}

fn wait_until(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> bool,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while !check() {
        if started.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(started.elapsed())
}

fn active(port: u16, dispatcher: &mut Process) -> anyhow::Result<Duration> {
    let url = format!("http://127.0.0.1:{port}/ready");
    wait_until(
        "the dispatcher to be active",
        Duration::from_secs(120),
        || {
            assert!(
                dispatcher.is_running(),
                "the dispatcher exited: {}",
                dispatcher.output()
            );
            reqwest::blocking::get(&url)
                .and_then(|r| r.text())
                .is_ok_and(|body| body.contains("scheduler: active"))
        },
    )
}

fn apply(broker: &Broker, topic: &str, schedules: Vec<serde_json::Value>) -> anyhow::Result<()> {
    let file = tempfile::Builder::new().suffix(".json").tempfile()?;
    std::fs::write(file.path(), json!({ "schedules": schedules }).to_string())?;
    let output = worker_cli(
        broker,
        topic,
        &["schedules", "apply", file.path().to_str().context("path")?],
    );
    if !output.status.success() {
        bail!(
            "schedules apply: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// For each job on `topic` whose jobID `due` knows the due time of (ms since the
/// epoch), how long after it the job was published, in ms; sorted.
fn lateness_ms(broker: &Broker, topic: &str, due: impl Fn(&str) -> Option<i64>) -> Vec<f64> {
    let mut lateness: Vec<f64> = broker
        .read_all(topic)
        .iter()
        .filter_map(|record| {
            let due = due(record.json()["jobID"].as_str()?)?;
            Some((record.timestamp_ms? - due) as f64)
        })
        .collect();
    lateness.sort_by(f64::total_cmp);
    lateness
}

fn firing(broker: &Broker, run: usize, count: usize, seconds: u64) -> anyhow::Result<()> {
    let topic = broker.name(&format!("bench-fire-{run}"));
    broker.create_job_topics(&topic, 6);
    let schedules = (0..count)
        .map(|i| json!({"name": format!("s{i}"), "cron": "* * * * * *", "overlap": "allow", "job": job()}))
        .collect();
    apply(broker, &topic, schedules)?;
    let port = free_port();
    let mut dispatcher = start_dispatcher(broker, &topic, &broker.name("bench"), port, "bench");
    active(port, &mut dispatcher)?;
    // Past the first seconds (loading, the first catch-up), measure a steady window.
    std::thread::sleep(Duration::from_secs(3));
    let before = total(&metrics(port), "mcp_jobs_scheduler_fired_total");
    let window_start = Utc::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let after = total(&metrics(port), "mcp_jobs_scheduler_fired_total");
    let window_end = Utc::now();
    dispatcher.terminate(Duration::from_secs(60));
    let lateness = lateness_ms(broker, &topic, |id| {
        let nominal = DateTime::parse_from_rfc3339(id.split_once('@')?.1)
            .ok()?
            .with_timezone(&Utc);
        (nominal >= window_start && nominal < window_end).then(|| nominal.timestamp_millis())
    });
    let seconds_of = |ms: f64| ms / 1000.0;
    let rate = (after - before) / seconds as f64;
    println!(
        "| {count} | {count} | {rate:.0} | {:.2} | {:.3} s | {:.3} s | {:.3} s |",
        rate / count as f64,
        seconds_of(percentile(&lateness, 0.5)),
        seconds_of(percentile(&lateness, 0.99)),
        seconds_of(lateness.last().copied().unwrap_or(f64::NAN)),
    );
    Ok(())
}

/// One job record and one state record, in a transaction (as the dispatcher publishes
/// them: begin, send, await every acknowledgement, commit) or plainly, each
/// acknowledged (`acks=all`, idempotent, the delivery futures awaited).
fn transaction_cost(broker: &Broker, rounds: usize) -> anyhow::Result<()> {
    let topic = broker.name("bench-txn");
    broker.create_job_topics(&topic, 6);
    let state_topic = format!("{topic}.schedules");
    let plain: FutureProducer = broker
        .client_config()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "0")
        .create()?;
    let transactional: FutureProducer = broker
        .client_config()
        .set("acks", "all")
        .set("transactional.id", broker.name("bench-txn"))
        .set("linger.ms", "5")
        .create()?;
    transactional.init_transactions(Duration::from_secs(60))?;
    let payload = serde_json::to_vec(&job())?;
    let state = br#"{"lastHandled":"2026-12-02T03:00:00Z","lastFired":"2026-12-02T03:00:00Z"}"#;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Both records of each occurrence, through `producer`, every acknowledgement awaited.
    let publish = |producer: &FutureProducer, batch: usize, round: usize| -> anyhow::Result<()> {
        let keys: Vec<String> = (0..batch)
            .map(|i| format!("s{}", (round * batch + i) % 100))
            .collect();
        runtime.block_on(async {
            let sends = keys.iter().flat_map(|key| {
                [
                    producer.send(
                        FutureRecord::to(&topic)
                            .key(key)
                            .payload(payload.as_slice()),
                        Duration::from_secs(30),
                    ),
                    producer.send(
                        FutureRecord::to(&state_topic)
                            .key(key)
                            .payload(state.as_slice()),
                        Duration::from_secs(30),
                    ),
                ]
            });
            for delivered in futures::future::join_all(sends).await {
                delivered.map_err(|(e, _)| e)?;
            }
            Ok(())
        })
    };
    let plain_round = |batch: usize, round: usize| publish(&plain, batch, round);
    let transactional_round = |batch: usize, round: usize| -> anyhow::Result<()> {
        transactional.begin_transaction()?;
        publish(&transactional, batch, round)?;
        transactional.commit_transaction(Duration::from_secs(30))?;
        Ok(())
    };
    println!("| publish | occurrences per round | p50 | p99 | occurrences/s at p50 |");
    println!("|---|---:|---:|---:|---:|");
    for batch in [1, 100] {
        let plain_p50 = timed("plain, each acknowledged", batch, rounds, |round| {
            plain_round(batch, round)
        })?;
        let txn_p50 = timed("in one transaction", batch, rounds, |round| {
            transactional_round(batch, round)
        })?;
        println!(
            "| transaction / plain | {batch} | {:.2}× | | |",
            txn_p50 / plain_p50
        );
    }
    Ok(())
}

/// Runs `once` for `rounds / batch` rounds, prints a row; returns the p50 in ms.
fn timed(
    label: &str,
    batch: usize,
    rounds: usize,
    mut once: impl FnMut(usize) -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    let mut took: Vec<f64> = Vec::new();
    for round in 0..(rounds / batch).max(10) {
        let started = Instant::now();
        once(round)?;
        took.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    took.sort_by(f64::total_cmp);
    let p50 = percentile(&took, 0.5);
    println!(
        "| {label} | {batch} | {p50:.2} ms | {:.2} ms | {:.0} |",
        percentile(&took, 0.99),
        batch as f64 * 1000.0 / p50
    );
    Ok(p50)
}

/// Puts `count` delayed records on `topic`, due at `due(i)` (ms since the epoch).
fn produce_delayed(
    broker: &Broker,
    topic: &str,
    count: usize,
    prefix: &str,
    due: impl Fn(usize) -> i64,
) -> anyhow::Result<()> {
    let producer: BaseProducer = broker
        .client_config()
        .set("linger.ms", "20")
        .set("enable.idempotence", "true")
        .create()?;
    for i in 0..count {
        let id = format!("{prefix}-{i}");
        let payload = serde_json::to_vec(&json!({"jobID": id, "jobType": "list-tools",
            "payload": {"mcpServers": {"t": {"command": "mcp-server-time"}}}}))?;
        let due = due(i).to_string();
        let headers = OwnedHeaders::new().insert(Header {
            key: headers::DUE_AT,
            value: Some(due.as_str()),
        });
        enqueue(
            &producer,
            BaseRecord::to(topic)
                .key(id.as_str())
                .payload(payload.as_slice())
                .headers(headers),
        )?;
    }
    producer.flush(Duration::from_secs(120))?;
    Ok(())
}

fn delayed(broker: &Broker, count: usize, burst: usize) -> anyhow::Result<()> {
    let topic = broker.name("bench-delayed");
    broker.create_job_topics(&topic, 6);
    let delayed_topic = format!("{topic}.delayed");
    let group = broker.name("bench-delayed");
    let port = free_port();
    let mut dispatcher = start_dispatcher(broker, &topic, &group, port, "bench");
    active(port, &mut dispatcher)?;
    std::thread::sleep(Duration::from_secs(2));
    let rss_empty = rss_kb(dispatcher.pid()).context("rss")?;
    let tomorrow = Utc::now().timestamp_millis() + 86_400_000;
    produce_delayed(broker, &delayed_topic, count, "far", |_| tomorrow)?;
    let waiting = |port: u16| total_when_up(port, "mcp_jobs_scheduler_delayed_waiting");
    wait_until("the jobs to be held", Duration::from_secs(300), || {
        waiting(port) >= count as f64
    })?;
    std::thread::sleep(Duration::from_secs(2));
    let rss_full = rss_kb(dispatcher.pid()).context("rss")?;
    println!(
        "- held: {count} waiting jobs: RSS {:.1} MB against {:.1} MB with none: {:.1} MB per 100,000 ({:.0} bytes each)",
        rss_full as f64 / 1024.0,
        rss_empty as f64 / 1024.0,
        (rss_full.saturating_sub(rss_empty)) as f64 / 1024.0 * 100_000.0 / count as f64,
        (rss_full.saturating_sub(rss_empty)) as f64 * 1024.0 / count as f64,
    );
    dispatcher.terminate(Duration::from_secs(60));

    // A takeover: a new dispatcher reads the whole delayed topic before it fires.
    let port = free_port();
    let started = Instant::now();
    let mut dispatcher = start_dispatcher(broker, &topic, &group, port, "bench-2");
    wait_until("the takeover to load", Duration::from_secs(300), || {
        waiting(port) >= count as f64
    })?;
    println!(
        "- takeover: a new dispatcher holds all {count} again {:.1} s after its start",
        started.elapsed().as_secs_f64()
    );

    // A burst due at once, then one at a time.
    let due = Utc::now().timestamp_millis() + 5_000;
    produce_delayed(broker, &delayed_topic, burst, "burst", |_| due)?;
    let sent = |port: u16| total_when_up(port, "mcp_jobs_scheduler_delayed_sent_total");
    wait_until("the burst to be held", Duration::from_secs(120), || {
        waiting(port) >= (count + burst) as f64
    })?;
    let wait_due =
        Duration::from_millis(u64::try_from(due - Utc::now().timestamp_millis()).unwrap_or(0));
    std::thread::sleep(wait_due);
    let took = wait_until("the burst to be sent", Duration::from_secs(300), || {
        sent(port) >= burst as f64
    })?;
    println!(
        "- burst: {burst} jobs due at once sent in {:.2} s ({:.0} jobs/s), each with its tombstone, in transactions of up to 500",
        took.as_secs_f64(),
        burst as f64 / took.as_secs_f64()
    );

    let singles = 50;
    let start = Utc::now().timestamp_millis() + 3_000;
    produce_delayed(broker, &delayed_topic, singles, "single", |i| {
        start + i as i64 * 200
    })?;
    wait_until(
        "the single jobs to be sent",
        Duration::from_secs(120),
        || sent(port) >= (burst + singles) as f64,
    )?;
    dispatcher.terminate(Duration::from_secs(60));
    let lateness = lateness_ms(broker, &topic, |id| {
        let i: i64 = id.strip_prefix("single-")?.parse().ok()?;
        Some(start + i * 200)
    });
    println!(
        "- one at a time ({} jobs due 200 ms apart): sent {:.0} ms after due at p50, {:.0} ms at p99, {:.0} ms at most",
        lateness.len(),
        percentile(&lateness, 0.5),
        percentile(&lateness, 0.99),
        lateness.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}
