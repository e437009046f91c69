//! The worker engine under real conditions: many jobs in flight, retries, key
//! ordering, poison messages, mcp-server outages, replicas, graceful shutdown and
//! SIGKILL chaos. Real broker, real mcp-server and kafka-worker processes, and the
//! workspace's own stdio MCP server (`mcp-fixture`) as the upstream.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use mcp_jobs_e2e::{
    distinct_jobs, fixture_job, headers, outcomes_of, start_worker, wait_for, Broker, Deployment,
    McpServer, Outcome, Process, Running, Status,
};
use serde_json::{json, Value};

const MINUTE: Duration = Duration::from_secs(60);

fn bytes(job: &Value) -> Vec<u8> {
    serde_json::to_vec(job).expect("json")
}

/// Publishes `count` fixture jobs `<prefix>-<i>` sleeping `ms` each, keyless.
fn publish_sleepers(broker: &Broker, topic: &str, prefix: &str, count: usize, ms: u64) {
    let jobs: Vec<(Option<&str>, Vec<u8>)> = (0..count)
        .map(|i| {
            let job = fixture_job(&format!("{prefix}-{i}"), "sleep", json!({ "ms": ms }));
            (None, bytes(&job))
        })
        .collect();
    let records: Vec<(Option<&str>, &[u8])> =
        jobs.iter().map(|(k, m)| (*k, m.as_slice())).collect();
    broker.produce(topic, &records);
}

#[test]
fn job_failures_are_retried_with_the_job_identity_in_meta() {
    let deployment = Deployment::new("retry")
        .partitions(2)
        .worker_env(&[("JOB_RETRY_BACKOFF_MS", "100")])
        .start();
    let mut slow = fixture_job("too-slow", "sleep", json!({ "ms": 5000 }));
    slow["timeoutMs"] = json!(300);
    let jobs = [
        fixture_job("flaky", "fail", json!({ "succeed_from_attempt": 3 })),
        fixture_job("hopeless", "fail", json!({})),
        fixture_job("meta", "meta", json!({})),
        slow,
        json!({ "jobID": "refused", "jobType": "server-init",
                "payload": { "mcpServers": { "sh": { "command": "sh" } } } }),
    ];
    let messages: Vec<(Option<&str>, Vec<u8>)> = jobs.iter().map(|j| (None, bytes(j))).collect();
    deployment.publish(&messages);

    let outcomes = deployment.outcomes_by_job(jobs.len());
    let flaky = &outcomes["flaky"];
    assert_eq!(flaky.status, Status::Succeeded, "{flaky:#?}");
    assert_eq!(flaky.attempts, 3);
    let hopeless = &outcomes["hopeless"];
    assert_eq!(hopeless.status, Status::Failed);
    assert_eq!(hopeless.attempts, 3, "JOB_MAX_ATTEMPTS defaults to 3");
    assert_eq!(hopeless.error_kind(), Some("tool_error"));
    let too_slow = &outcomes["too-slow"];
    assert_eq!(
        too_slow.error_kind(),
        Some("upstream_timeout"),
        "{too_slow:#?}"
    );
    assert_eq!(too_slow.attempts, 3);
    let refused = &outcomes["refused"];
    assert_eq!(refused.error_kind(), Some("refused"));
    assert_eq!(refused.attempts, 1, "a refusal is never retried");
    let meta = &outcomes["meta"].result("fx").expect("fx answered")["structuredContent"]["meta"];
    assert_eq!(meta["mcp-jobs/jobId"], "meta", "{meta:#}");
    assert_eq!(meta["mcp-jobs/attempt"], 1);

    let dead = deployment.dead_letters(3);
    let hopeless_copy = dead
        .iter()
        .find(|r| r.header(headers::JOB_ID) == Some("hopeless"))
        .expect("hopeless dead-lettered");
    assert_eq!(hopeless_copy.header(headers::ATTEMPTS), Some("3"));
}

#[test]
fn jobs_sharing_a_key_run_in_order_while_keyless_jobs_overlap() {
    let deployment = Deployment::new("ordered")
        .worker_env(&[("WORKER_CONCURRENCY", "16")])
        .start();
    let mut jobs: Vec<(Option<String>, Value)> = Vec::new();
    for i in 0..8 {
        for key in ["a", "b"] {
            // Earlier jobs sleep longer: run freely, they would finish out of order.
            let ms = 80 - i * 10;
            let id = format!("{key}-{i}");
            jobs.push((
                Some(key.to_owned()),
                fixture_job(&id, "sleep", json!({ "ms": ms })),
            ));
        }
        jobs.push((
            None,
            fixture_job(&format!("free-{i}"), "sleep", json!({ "ms": 300 })),
        ));
    }
    let messages: Vec<(Option<&str>, Vec<u8>)> =
        jobs.iter().map(|(k, j)| (k.as_deref(), bytes(j))).collect();
    deployment.publish(&messages);

    let outcomes = deployment.outcomes_by_job(jobs.len());
    for key in ["a", "b"] {
        for i in 1..8 {
            let before = &outcomes[&format!("{key}-{}", i - 1)];
            let after = &outcomes[&format!("{key}-{i}")];
            assert!(
                before.finished_at <= after.started_at,
                "{key:?}-{i:?} started before {key:?}-{:?} finished:\n{before:#?}\n{after:#?}",
                i - 1
            );
        }
    }
    let keyless: Vec<(DateTime<Utc>, DateTime<Utc>)> = (0..8)
        .map(|i| {
            let o = &outcomes[&format!("free-{i}")];
            (o.started_at, o.finished_at)
        })
        .collect();
    let most_at_once = keyless
        .iter()
        .map(|(start, _)| {
            keyless
                .iter()
                .filter(|(s, f)| s <= start && start < f)
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(
        most_at_once >= 4,
        "keyless 300 ms jobs should overlap; at most {most_at_once} ran at once"
    );
}

#[test]
fn a_poison_message_never_blocks_the_partition_behind_it() {
    let deployment = Deployment::new("poison")
        .worker_env(&[
            ("WORKER_CONCURRENCY", "4"),
            ("JOB_MAX_ATTEMPTS", "2"),
            ("JOB_RETRY_BACKOFF_MS", "500"),
        ])
        .start();
    let mut hang = fixture_job("hang", "sleep", json!({ "ms": 60000 }));
    hang["timeoutMs"] = json!(1000);
    let mut encoded: Vec<Vec<u8>> = vec![b"{ not json".to_vec(), bytes(&hang)];
    encoded.extend((0..20).map(|i| {
        bytes(&fixture_job(
            &format!("after-{i}"),
            "echo",
            json!({ "text": "hi" }),
        ))
    }));
    let messages: Vec<(Option<&str>, Vec<u8>)> = encoded.into_iter().map(|m| (None, m)).collect();
    deployment.publish(&messages);

    let outcomes = deployment.outcomes(21);
    let outcomes_by_id = deployment.outcomes_by_job(21);
    let hang_outcome = &outcomes_by_id["hang"];
    assert_eq!(hang_outcome.status, Status::Failed);
    assert_eq!(hang_outcome.attempts, 2);
    for i in 0..20 {
        let after = &outcomes_by_id[&format!("after-{i}")];
        assert_eq!(after.status, Status::Succeeded, "{after:#?}");
        assert!(
            after.finished_at < hang_outcome.finished_at,
            "after-{i} waited for the hanging job"
        );
    }
    assert!(
        outcomes
            .iter()
            .any(|o| o.error_kind() == Some("malformed_json")),
        "the malformed message has its failed record"
    );
    wait_for("the commit to pass the poison", MINUTE, || {
        (deployment.committed(1) == [Some(22)]).then_some(())
    });
}

#[test]
fn an_mcp_server_outage_pauses_the_worker_and_dead_letters_nothing() {
    // By value: the server is stopped and started again on its port.
    let Running {
        broker,
        topic,
        group: _,
        server,
        worker,
    } = Deployment::new("outage")
        .partitions(3)
        .worker_env(&[("WORKER_CONCURRENCY", "8")])
        .start();
    let port = server.port;
    publish_sleepers(&broker, &topic, "job", 400, 100);
    outcomes_of(&broker, &topic, 40, MINUTE);
    drop(server);
    let stopped = Instant::now();
    worker.wait_for_output("pausing consumption", 1, MINUTE);
    std::thread::sleep(Duration::from_secs(10).saturating_sub(stopped.elapsed()));
    let _restarted = McpServer::start_on(port, &[]);
    worker.wait_for_output("resuming consumption", 1, MINUTE);

    let outcomes = outcomes_of(&broker, &topic, 400, 2 * MINUTE);
    let failed: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.status != Status::Succeeded)
        .collect();
    assert!(failed.is_empty(), "jobs failed by the outage: {failed:#?}");
    assert!(broker.read_all(&format!("{topic}.dlq")).is_empty());
}

#[test]
fn calls_fail_over_when_one_of_two_replicas_dies() {
    let broker = Broker::start();
    let topic = broker.name("replicas");
    let group = broker.name("g-replicas");
    broker.create_job_topics(&topic, 3);
    let first = McpServer::start(&[]);
    let second = McpServer::start(&[]);
    let urls = format!("{},{}", first.url(), second.url());
    let _worker = start_worker(
        &broker,
        &urls,
        &topic,
        &group,
        &[("WORKER_CONCURRENCY", "8")],
    );
    publish_sleepers(&broker, &topic, "job", 400, 100);
    outcomes_of(&broker, &topic, 40, MINUTE);
    for replica in [&first, &second] {
        // rmcp logs each stateless request it serves.
        let served = replica
            .process
            .output()
            .matches("Service initialized as server")
            .count();
        assert!(
            served > 10,
            "replica on port {} served {served} requests",
            replica.port
        );
    }
    let mut second = second;
    second.process.kill9();

    let outcomes = outcomes_of(&broker, &topic, 400, 2 * MINUTE);
    let failed: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.status != Status::Succeeded)
        .collect();
    assert!(
        failed.is_empty(),
        "jobs failed by the lost replica: {failed:#?}"
    );
    assert!(broker.read_all(&format!("{topic}.dlq")).is_empty());
}

/// The worker settings that select the KIP-848 consumer group protocol.
const CONSUMER_PROTOCOL: (&str, &str) = ("RDKAFKA_GROUP_PROTOCOL", "consumer");
/// The classic protocol: the worker's default, set explicitly so both runs set one.
const CLASSIC_PROTOCOL: (&str, &str) = ("RDKAFKA_GROUP_PROTOCOL", "classic");

#[test]
fn sigterm_under_load_exits_cleanly_and_the_next_worker_repeats_nothing() {
    graceful_handover(CLASSIC_PROTOCOL);
}

#[test]
fn sigterm_handover_under_the_consumer_protocol() {
    graceful_handover(CONSUMER_PROTOCOL);
}

fn graceful_handover(protocol: (&str, &str)) {
    let env = [
        ("WORKER_CONCURRENCY", "16"),
        ("SHUTDOWN_GRACE_SECONDS", "10"),
        protocol,
    ];
    let mut deployment = Deployment::new("drain")
        .partitions(3)
        .worker_env(&env)
        .start();
    let Running {
        broker,
        topic,
        group,
        server,
        worker,
        ..
    } = &mut deployment;
    publish_sleepers(broker, topic, "job", 600, 100);
    outcomes_of(broker, topic, 100, MINUTE);

    let asked = Instant::now();
    let status = worker.terminate(Duration::from_secs(15));
    assert!(status.success(), "worker exit status {status:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "exit took {:?}, beyond the grace period",
        asked.elapsed()
    );
    let _next = start_worker(broker, &server.url(), topic, group, &env);
    let outcomes = outcomes_of(broker, topic, 600, 2 * MINUTE);
    assert_eq!(
        outcomes.len(),
        600,
        "{} jobs were run twice",
        outcomes.len() - distinct_jobs(&outcomes)
    );
}

#[test]
fn sigkilled_workers_lose_no_job_and_repeat_at_most_the_in_flight_window() {
    sigkill_chaos(CLASSIC_PROTOCOL);
}

#[test]
fn sigkilled_workers_lose_no_job_under_the_consumer_protocol() {
    sigkill_chaos(CONSUMER_PROTOCOL);
}

fn sigkill_chaos(protocol: (&str, &str)) {
    const JOBS: usize = 1200;
    const CONCURRENCY: usize = 4;
    const TOOL_MS: u64 = 50;
    const COMMIT_INTERVAL_MS: u64 = 100;
    const KILLS: usize = 3;
    let broker = Broker::start();
    let topic = broker.name("chaos");
    let group = broker.name("g-chaos");
    broker.create_job_topics(&topic, 6);
    let server = McpServer::start(&[]);
    let concurrency = CONCURRENCY.to_string();
    let interval = COMMIT_INTERVAL_MS.to_string();
    let env = [
        ("WORKER_CONCURRENCY", concurrency.as_str()),
        ("RDKAFKA_AUTO_COMMIT_INTERVAL_MS", interval.as_str()),
    ];
    let start = |name: &str| -> Process {
        start_worker(
            &broker,
            &server.url(),
            &topic,
            &group,
            &[env[0], env[1], protocol, ("WORKER_ID", name)],
        )
    };
    let _steady = start("steady");
    let mut victim = start("victim");
    publish_sleepers(&broker, &topic, "job", JOBS, TOOL_MS);

    for kill in 1..=KILLS {
        let seen = distinct_jobs(&outcomes_of(
            &broker,
            &topic,
            kill * JOBS / (KILLS + 2),
            2 * MINUTE,
        ));
        wait_until_settled(&broker, &group, &victim, protocol);
        // A few commit intervals: what the victim finished so far is committed.
        std::thread::sleep(Duration::from_millis(3 * COMMIT_INTERVAL_MS));
        victim.kill9();
        eprintln!("kill {kill}: SIGKILLed the victim with {seen} jobs done");
        victim = start("victim");
    }

    let outcomes = outcomes_of(&broker, &topic, JOBS, 4 * MINUTE);
    let distinct = distinct_jobs(&outcomes);
    let repeated = outcomes.len() - distinct;
    // A crash repeats what the victim held (≤ 2 × concurrency) and what it finished
    // since its last commit (≤ its rate × the commit interval); each rebalance may
    // also cost the steady worker what it held of the partitions it gave up. This holds
    // for a victim killed in a settled group: killed mid-rebalance, while the group
    // refuses every commit (for as long as it waits out the last victim's session),
    // it would also repeat everything it finished since the rebalance began, which no
    // bound in jobs describes.
    let finished_per_interval = CONCURRENCY * COMMIT_INTERVAL_MS as usize / TOOL_MS as usize;
    let per_kill = 2 * CONCURRENCY + finished_per_interval + 2 * CONCURRENCY;
    let bound = KILLS * per_kill;
    eprintln!("chaos: {JOBS} jobs, {KILLS} SIGKILLs, {} outcome records, {repeated} repeated (bound {bound})", outcomes.len());
    assert_eq!(distinct, JOBS, "every job has an outcome");
    assert!(
        outcomes.iter().all(|o| o.status == Status::Succeeded),
        "no job failed"
    );
    assert!(
        repeated <= bound,
        "{repeated} repeats exceed the in-flight bound {bound}"
    );
}

/// Each member's id and assigned partitions (as the group protocol encodes them).
type Assignment = Vec<(String, Vec<u8>)>;

/// Waits until the victim has joined and, under the classic protocol, the group has
/// settled: `Stable`, both workers in it, and the same assignment for a second. (The
/// first "partitions assigned" of a cooperative rebalance may be an empty round, and the
/// group is `Stable` for a moment between the two rounds.) A settled group takes
/// commits; a victim that holds nothing in it repeats nothing when it dies.
fn wait_until_settled(broker: &Broker, group: &str, victim: &Process, protocol: (&str, &str)) {
    victim.wait_for_output("partitions assigned", 1, MINUTE);
    if protocol != CLASSIC_PROTOCOL {
        return;
    }
    use rdkafka::consumer::Consumer;
    let admin: rdkafka::consumer::BaseConsumer = broker.client_config().create().expect("client");
    let assignment = || -> Option<Assignment> {
        let groups = admin
            .fetch_group_list(Some(group), Duration::from_secs(5))
            .ok()?;
        let found = groups.groups().iter().find(|g| g.name() == group)?;
        if found.state() != "Stable" || found.members().len() != 2 {
            return None;
        }
        let mut members: Assignment = found
            .members()
            .iter()
            .map(|m| {
                (
                    m.id().to_owned(),
                    m.assignment().unwrap_or_default().to_vec(),
                )
            })
            .collect();
        members.sort();
        Some(members)
    };
    let mut seen: Option<(Assignment, Instant)> = None;
    wait_for("the group to settle", MINUTE, || {
        let now = assignment();
        std::thread::sleep(Duration::from_millis(200));
        match (now, &seen) {
            (Some(now), Some((before, since))) if now == *before => {
                (since.elapsed() >= Duration::from_secs(1)).then_some(())
            }
            (now, _) => {
                seen = now.map(|now| (now, Instant::now()));
                None
            }
        }
    });
}
