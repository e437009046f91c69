//! console-bench: what the console's pages cost on a topic of real size, against a real
//! broker and a release `kafka-worker console`: for each page, the time to answer one
//! request at a time (p50, p99) and the records it read (the figure each page prints
//! at its foot).
//!
//! The results topic is filled with `--outcomes` outcome records, the dead-letter
//! topic with `--dead-letters` dead letters (half `tool_error`, half `refused`) and the
//! delayed topic with `--waiting` jobs due tomorrow, on three partitions each, written
//! as the worker writes them.
//!
//! Run with `bash bench/console.sh` (`--help` for the sizes).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use mcp_jobs_contract::headers;
use mcp_jobs_contract::FailureKind;
use mcp_jobs_e2e::{dead_letter_headers, enqueue, free_port, start_console, Broker};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use reqwest::blocking::Client;
use serde_json::json;

#[derive(Parser)]
#[command(about = "The console's pages: time per view and records read, on big topics")]
struct Args {
    /// Outcome records on the results topic.
    #[arg(long, default_value_t = 100_000)]
    outcomes: usize,
    /// Dead letters on the dead-letter topic.
    #[arg(long, default_value_t = 20_000)]
    dead_letters: usize,
    /// Jobs waiting on the delayed topic.
    #[arg(long, default_value_t = 20_000)]
    waiting: usize,
    /// Requests per page, one at a time.
    #[arg(long, default_value_t = 30)]
    requests: usize,
}

const KEY: &str = "bench-key";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let broker = Broker::start();
    let topic = broker.name("console-bench");
    broker.create_job_topics(&topic, 3);
    fill(&broker, &topic, &args)?;
    let port = free_port();
    let _console = start_console(
        &broker,
        &topic,
        port,
        &[
            ("CONSOLE_API_KEYS", KEY),
            ("CONSOLE_COOKIE_SECURE", "false"),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let login = client
        .post(format!("{base}/login"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(format!("key={KEY}&next=%2F"))
        .send()?;
    let cookie = login
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("no session cookie")?
        .to_owned();
    // The console follows the delayed topic from its start: measure once it holds it all.
    let loaded = Instant::now();
    loop {
        let listed: serde_json::Value = client
            .get(format!("{base}/api/delayed?limit=1"))
            .bearer_auth(KEY)
            .send()?
            .json()?;
        if listed["loaded"] == true && listed["total"] == args.waiting {
            break;
        }
        if loaded.elapsed() > Duration::from_secs(120) {
            bail!("the console did not read the delayed topic within 120 s: {listed}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "the console held the delayed topic ({} waiting jobs) {:.1} s after its first page\n",
        args.waiting,
        loaded.elapsed().as_secs_f64()
    );
    let middle = args.outcomes / 2;
    let pages = [
        ("overview", "/".to_owned()),
        ("now (running, retrying, 10 waiting)", "/now".to_owned()),
        ("latest outcomes (50)", "/jobs".to_owned()),
        ("a job by jobID", format!("/jobs?jobID=job-{middle:06}")),
        ("dead letters (newest 50)", "/dlq".to_owned()),
        ("dead letters of a kind", "/dlq?kind=refused".to_owned()),
        ("one dead letter", "/dlq/1/100".to_owned()),
        ("schedules (with their last runs)", "/schedules".to_owned()),
        ("waiting jobs (100 due first)", "/waiting".to_owned()),
        (
            "a waiting job by jobID",
            format!("/jobs?jobID=later-{:06}", args.waiting / 2),
        ),
    ];
    println!(
        "console-bench: {} outcome records, {} dead letters, {} waiting jobs, 3 partitions each; {} requests per page, one at a time\n",
        args.outcomes, args.dead_letters, args.waiting, args.requests
    );
    println!("| page | p50 | p99 | records read per view |");
    println!("|---|---:|---:|---:|");
    for (name, path) in pages {
        let mut took = Vec::with_capacity(args.requests);
        let mut records = String::new();
        for _ in 0..args.requests {
            let asked = Instant::now();
            let response = client
                .get(format!("{base}{path}"))
                .header(reqwest::header::COOKIE, &cookie)
                .send()?;
            let status = response.status();
            let body = response.text()?;
            took.push(asked.elapsed());
            if !status.is_success() {
                bail!("{path} answered {status}: {body}");
            }
            records = body
                .split("This page read ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .unwrap_or("—")
                .to_owned();
        }
        took.sort();
        println!(
            "| {name} | {} | {} | {records} |",
            ms(took[took.len() / 2]),
            ms(took[(took.len() * 99 / 100).min(took.len() - 1)])
        );
    }
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Outcome records and dead letters as the worker writes them.
fn fill(broker: &Broker, topic: &str, args: &Args) -> anyhow::Result<()> {
    let producer: BaseProducer = broker
        .client_config()
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let results = format!("{topic}.results");
    let started = chrono::Utc::now() - chrono::Duration::minutes(50);
    for i in 0..args.outcomes {
        let id = format!("job-{i:06}");
        let at = started + chrono::Duration::milliseconds(i as i64 * 25);
        let outcome = json!({
            "jobID": id, "jobType": "tool-call", "status": if i % 10 == 0 { "failed" } else { "succeeded" },
            "results": {"fx": {"content": [{"type": "text", "text": "hello from the bench"}], "isError": false}},
            "attempts": 1, "startedAt": at.to_rfc3339(), "finishedAt": at.to_rfc3339(),
            "worker": "kafka-worker-bench"
        });
        let payload = serde_json::to_vec(&outcome)?;
        enqueue(
            &producer,
            BaseRecord::to(&results)
                .key(id.as_str())
                .payload(payload.as_slice())
                .timestamp(at.timestamp_millis()),
        )?;
    }
    let dlq = format!("{topic}.dlq");
    let job = serde_json::to_vec(&json!({"jobID": "x", "jobType": "tool-call", "payload": {
        "mcpServers": {"fx": {"command": "mcp-server-time", "env": {"TOKEN": "secret-value"}}},
        "server": "fx", "tool": "get_current_time", "arguments": {}}}))?;
    for i in 0..args.dead_letters {
        let id = format!("dead-{i:06}");
        let kind = if i % 2 == 0 {
            FailureKind::ToolError
        } else {
            FailureKind::Refused
        };
        let headers = dead_letter_headers(&id, kind.as_str(), "failed on purpose", topic);
        let at = started + chrono::Duration::milliseconds(i as i64 * 100);
        enqueue(
            &producer,
            BaseRecord::to(&dlq)
                .key(id.as_str())
                .payload(job.as_slice())
                .headers(headers)
                .timestamp(at.timestamp_millis()),
        )?;
    }
    let delayed = format!("{topic}.delayed");
    let due = (chrono::Utc::now() + chrono::Duration::days(1)).timestamp_millis();
    for i in 0..args.waiting {
        let id = format!("later-{i:06}");
        let due_at = (due + i as i64).to_string();
        let headers = OwnedHeaders::new().insert(Header {
            key: headers::DUE_AT,
            value: Some(&due_at),
        });
        enqueue(
            &producer,
            BaseRecord::to(&delayed)
                .key(id.as_str())
                .payload(job.as_slice())
                .headers(headers),
        )?;
    }
    producer.flush(Duration::from_secs(120))?;
    Ok(())
}
