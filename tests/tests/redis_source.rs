//! The Redis Streams job source (`JOB_SOURCE=redis`) against a real Redis and real
//! kafka-worker and mcp-server processes: 500 jobs with a worker SIGKILLed twice while
//! another claims what it abandoned (every job gets an outcome, none is lost), and a
//! poison entry that is dead-lettered after the maximum deliveries; `kafka-worker lag`
//! for a stream group.

use std::collections::HashSet;
use std::process::{Command, Output};
use std::time::Duration;

use mcp_jobs_e2e::{
    bin, fixture_job, free_port, wait_for, McpServer, Outcome, Process, RedisServer, Status,
    API_KEY,
};
use redis::streams::{
    StreamPendingCountReply, StreamRangeReply, StreamReadOptions, StreamReadReply,
};
use redis::{Commands, Connection};
use serde_json::{json, Value};

const JOBS: &str = "jobs:queue:main";

fn redis_worker(redis: &RedisServer, server: &McpServer, env: &[(&str, &str)]) -> Process {
    let mut command = Command::new(bin("kafka-worker"));
    command
        .env("JOB_SOURCE", "redis")
        .env("REDIS_URL", redis.url())
        .env("REDIS_STREAM", JOBS)
        .env("MCP_CONSUMER_GROUP", "workers")
        .env("MCP_SERVER_URL", server.url())
        .env("MCP_API_KEY", API_KEY)
        .env("METRICS_PORT", free_port().to_string())
        .env("RETRY_MAX_BACKOFF_MS", "1000");
    for (key, value) in env {
        command.env(key, value);
    }
    Process::spawn("kafka-worker-redis", &mut command)
}

fn connect(redis: &RedisServer) -> Connection {
    redis::Client::open(redis.url())
        .and_then(|client| client.get_connection())
        .expect("Redis connection")
}

fn publish(connection: &mut Connection, job: &Value) {
    let _: String = connection
        .xadd(JOBS, "*", &[("job", job.to_string())])
        .expect("XADD");
}

/// Every entry of `stream`, as field maps.
fn entries(
    connection: &mut Connection,
    stream: &str,
) -> Vec<std::collections::HashMap<String, String>> {
    let reply: StreamRangeReply = connection.xrange_all(stream).expect("XRANGE");
    reply
        .ids
        .into_iter()
        .map(|entry| {
            entry
                .map
                .into_iter()
                .filter_map(|(k, v)| redis::from_redis_value::<String>(v).ok().map(|v| (k, v)))
                .collect()
        })
        .collect()
}

fn outcomes(connection: &mut Connection) -> Vec<Outcome> {
    entries(connection, &format!("{JOBS}.results"))
        .iter()
        .filter_map(|fields| Outcome::from_record(fields.get("record")?.as_bytes()).ok())
        .collect()
}

/// The group's pending entries; none before a worker has created the group.
fn pending(connection: &mut Connection) -> StreamPendingCountReply {
    let reply = redis::cmd("XPENDING")
        .arg(JOBS)
        .arg("workers")
        .arg("-")
        .arg("+")
        .arg(1000)
        .query(connection);
    match reply {
        Ok(pending) => pending,
        Err(e) if e.code() == Some("NOGROUP") => StreamPendingCountReply::default(),
        Err(e) => panic!("XPENDING: {e}"),
    }
}

#[test]
fn failover_loses_no_job() {
    let redis = RedisServer::start();
    let server = McpServer::start(&[]);
    let env = [
        ("REDIS_CLAIM_IDLE_MS", "1500"),
        ("WORKER_CONCURRENCY", "16"),
    ];
    let mut doomed = redis_worker(&redis, &server, &env);
    let survivor = redis_worker(&redis, &server, &env);
    let mut connection = connect(&redis);
    for n in 0..500 {
        publish(
            &mut connection,
            &fixture_job(&format!("job-{n}"), "sleep", json!({ "ms": 30 })),
        );
    }
    let distinct = |connection: &mut Connection| -> usize {
        outcomes(connection)
            .iter()
            .filter_map(|o| o.job_id.as_deref().map(str::to_owned))
            .collect::<HashSet<_>>()
            .len()
    };
    for (round, after) in [100, 250].into_iter().enumerate() {
        wait_for(
            &format!("{after} outcomes"),
            Duration::from_secs(120),
            || (distinct(&mut connection) >= after).then_some(()),
        );
        doomed.kill9();
        assert!(
            pending(&mut connection)
                .ids
                .iter()
                .any(|p| p.times_delivered >= 1),
            "round {round}: the killed worker left entries pending"
        );
        doomed = redis_worker(&redis, &server, &env);
    }
    wait_for("outcomes of all 500 jobs", Duration::from_secs(180), || {
        (distinct(&mut connection) == 500).then_some(())
    });
    let all = outcomes(&mut connection);
    let succeeded: HashSet<&str> = all
        .iter()
        .filter(|o| o.status == Status::Succeeded)
        .filter_map(|o| o.job_id.as_deref())
        .collect();
    assert_eq!(succeeded.len(), 500, "every job succeeded at least once");
    wait_for("every entry acknowledged", Duration::from_secs(30), || {
        pending(&mut connection).ids.is_empty().then_some(())
    });
    assert!(entries(&mut connection, &format!("{JOBS}.dlq")).is_empty());
    let claimed = format!("{}{}", survivor.output(), doomed.output());
    assert!(
        claimed.contains("claimed entries abandoned by a dead worker"),
        "a live worker claimed the dead one's entries"
    );
}

#[test]
fn a_poison_entry_is_dead_lettered_after_the_maximum_deliveries() {
    let redis = RedisServer::start();
    let server = McpServer::start(&[]);
    let env = [
        ("REDIS_CLAIM_IDLE_MS", "1000"),
        ("REDIS_MAX_DELIVERIES", "2"),
    ];
    let mut connection = connect(&redis);
    // A job no worker lives to finish: each is killed while running it.
    let mut poison = fixture_job("poison", "sleep", json!({ "ms": 600_000 }));
    poison["timeoutMs"] = json!(900_000);
    publish(&mut connection, &poison);
    let _: String = connection
        .xadd(JOBS, "*", &[("note", "no job field")])
        .expect("XADD");

    let mut first = redis_worker(&redis, &server, &env);
    wait_for(
        "the poison to be delivered once",
        Duration::from_secs(30),
        || {
            pending(&mut connection)
                .ids
                .iter()
                .any(|p| p.times_delivered == 1)
                .then_some(())
        },
    );
    first.kill9();
    let mut second = redis_worker(&redis, &server, &env);
    wait_for(
        "the poison to be claimed: delivered twice",
        Duration::from_secs(30),
        || {
            pending(&mut connection)
                .ids
                .iter()
                .any(|p| p.times_delivered == 2)
                .then_some(())
        },
    );
    second.kill9();
    let _third = redis_worker(&redis, &server, &env);
    let dead = wait_for(
        "the poison in the dead-letter stream",
        Duration::from_secs(30),
        || {
            let dead = entries(&mut connection, &format!("{JOBS}.dlq"));
            dead.iter()
                .any(|d| d.get("jobID").map(String::as_str) == Some("poison"))
                .then_some(dead)
        },
    );
    let poisoned = dead
        .iter()
        .find(|d| d.get("jobID").map(String::as_str) == Some("poison"))
        .expect("poison dead-lettered");
    assert_eq!(poisoned["errorKind"], "max_deliveries");
    assert!(
        poisoned["error"].contains("delivered 2 times"),
        "{poisoned:?}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&poisoned["job"]).expect("the original job"),
        poison
    );
    let missing = dead
        .iter()
        .find(|d| d.get("errorKind").map(String::as_str) == Some("missing_field"))
        .unwrap_or_else(|| panic!("the entry without a job field is dead-lettered: {dead:?}"));
    assert!(missing["error"].contains("no `job` field"), "{missing:?}");
    let results = outcomes(&mut connection);
    assert!(
        results
            .iter()
            .any(|o| o.job_id.as_deref() == Some("poison")
                && o.error_kind() == Some("max_deliveries")),
        "{results:#?}"
    );
    wait_for("nothing left pending", Duration::from_secs(10), || {
        pending(&mut connection).ids.is_empty().then_some(())
    });
}

fn lag(redis: &RedisServer, group: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(bin("kafka-worker"))
        .arg("lag")
        .args(args)
        .env("JOB_SOURCE", "redis")
        .env("REDIS_URL", redis.url())
        .env("REDIS_STREAM", JOBS)
        .env("MCP_CONSUMER_GROUP", group)
        .envs(env.iter().copied())
        .output()
        .expect("run kafka-worker lag")
}

#[test]
fn lag_counts_undelivered_and_pending_entries() {
    let redis = RedisServer::start();
    let mut connection = connect(&redis);
    let refused = |group: &str| {
        let output = lag(&redis, group, &["--replicas"], &[]);
        assert!(!output.status.success(), "lag of {group} should fail");
        assert!(output.stdout.is_empty(), "nothing for kubectl to read");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = refused("workers");
    assert!(
        stderr.contains(&format!("stream \"{JOBS}\" does not exist")),
        "{stderr}"
    );

    for n in 0..7 {
        publish(&mut connection, &json!({ "n": n }));
    }
    let stderr = refused("workers");
    assert!(
        stderr.contains("consumer group \"workers\" does not exist"),
        "{stderr}"
    );

    let _: () = connection
        .xgroup_create(JOBS, "workers", "0")
        .expect("XGROUP CREATE");
    // Two entries delivered and not acknowledged: running, as far as Redis knows.
    let _: StreamReadReply = connection
        .xread_options(
            &[JOBS],
            &[">"],
            &StreamReadOptions::default().group("workers", "w1").count(2),
        )
        .expect("XREADGROUP");
    let output = lag(&redis, "workers", &[], &[]);
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{:?}", output);
    for line in ["undelivered 5", "pending 2", "total lag 7"] {
        assert!(report.lines().any(|l| l == line), "{line:?} in {report}");
    }
    let replicas = |env: &[(&str, &str)]| {
        let output = lag(&redis, "workers", &["--replicas"], env);
        assert!(output.status.success(), "{:?}", output);
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    assert_eq!(replicas(&[("LAG_PER_REPLICA", "3")]), "3", "ceil(7 / 3)");
    assert_eq!(
        replicas(&[("LAG_PER_REPLICA", "1")]),
        "7",
        "no partitions to cap a stream"
    );
    assert_eq!(
        replicas(&[("LAG_PER_REPLICA", "1"), ("MAX_REPLICAS", "4")]),
        "4",
        "capped at MAX_REPLICAS"
    );
}

#[test]
fn large_results_and_dead_letters_are_cut_to_fit_on_redis_too() {
    let redis = RedisServer::start();
    let server = McpServer::start(&[]);
    let _worker = redis_worker(
        &redis,
        &server,
        &[
            ("RESULT_MAX_BYTES", "50000"),
            ("MAX_MESSAGE_BYTES", "300000"),
        ],
    );
    let mut connection = connect(&redis);
    publish(
        &mut connection,
        &fixture_job("big-echo", "echo", json!({ "text": "z".repeat(200_000) })),
    );
    let oversized = fixture_job("oversized", "echo", json!({ "text": "o".repeat(400_000) }));
    publish(&mut connection, &oversized);
    publish(
        &mut connection,
        &fixture_job("small", "echo", json!({ "text": "ok" })),
    );

    let results = wait_for("three outcomes", Duration::from_secs(60), || {
        let all = entries(&mut connection, &format!("{JOBS}.results"));
        (all.len() >= 3).then_some(all)
    });
    for fields in &results {
        assert!(
            fields["record"].len() <= 50_000,
            "{} bytes",
            fields["record"].len()
        );
    }
    let by_id = |id: &str| {
        outcomes(&mut connect(&redis))
            .into_iter()
            .find(|o| o.job_id.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("no outcome of {id}"))
    };
    let big = by_id("big-echo");
    assert_eq!(big.status, Status::Succeeded);
    assert_eq!(
        big.result("fx").expect("fx answered")["truncated"],
        true,
        "{big:#?}"
    );
    assert_eq!(by_id("small").status, Status::Succeeded);
    assert_eq!(by_id("oversized").error_kind(), Some("too_large"));

    let letters = entries(&mut connection, &format!("{JOBS}.dlq"));
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert!(letter["job"].len() <= 50_000);
    assert_eq!(letter["truncated"], "true");
    assert_eq!(
        letter["originalBytes"],
        oversized.to_string().len().to_string()
    );
    assert_eq!(letter["originalSha256"].len(), 64);
}

/// `scheduledAt` on a stream: a job due within DELAY_MIN_MS waits in its slot and
/// starts once due, never early; one due later is refused as `delay_refused` (and
/// dead-lettered), with the reason, instead of running early as it once did.
#[test]
fn scheduled_at_is_honoured_within_the_delay_minimum_and_refused_beyond() {
    let redis = RedisServer::start();
    let server = McpServer::start(&[]);
    let _worker = redis_worker(&redis, &server, &[("DELAY_MIN_MS", "5000")]);
    let mut connection = connect(&redis);
    let due = chrono::Utc::now() + chrono::Duration::milliseconds(2500);
    let mut soon = fixture_job("soon", "echo", json!({ "text": "due soon" }));
    soon["scheduledAt"] = json!(due.to_rfc3339());
    let mut later = fixture_job("later", "echo", json!({ "text": "due later" }));
    later["scheduledAt"] = json!((chrono::Utc::now() + chrono::Duration::minutes(10)).to_rfc3339());
    publish(&mut connection, &soon);
    publish(&mut connection, &later);

    let all = wait_for("both outcomes", Duration::from_secs(60), || {
        let all = outcomes(&mut connection);
        (all.len() >= 2).then_some(all)
    });
    let by_id = |id: &str| {
        all.iter()
            .find(|o| o.job_id.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("no outcome of {id}: {all:#?}"))
    };
    let soon = by_id("soon");
    assert_eq!(soon.status, Status::Succeeded, "{soon:#?}");
    // Timestamps are written at millisecond precision.
    assert!(
        soon.started_at >= due - chrono::Duration::milliseconds(1),
        "started at {} before it was due at {due}",
        soon.started_at
    );
    let later = by_id("later");
    assert_eq!(later.error_kind(), Some("delay_refused"), "{later:#?}");
    assert_eq!(later.attempts, 0, "never run");
    let reason = later.error_message().unwrap_or_default();
    assert!(reason.contains("Redis Streams"), "{reason}");
    assert!(reason.contains("DELAY_MIN_MS"), "{reason}");
    let letters = entries(&mut connection, &format!("{JOBS}.dlq"));
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["errorKind"], "delay_refused");
    assert_eq!(letters[0]["jobID"], "later");
}
