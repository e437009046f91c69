//! Broker faults on a three-node Apache Kafka cluster (topics with three replicas,
//! `min.insync.replicas=2`): under 1,000 jobs, SIGKILL the leader of a jobs partition
//! and restart it, then the node coordinating the group and restart it. Every job gets
//! an outcome, none fails, nothing is dead-lettered for it, and repeats stay within
//! the README's bound.

use std::time::{Duration, Instant};

use mcp_jobs_e2e::{
    distinct_jobs, fixture_job, outcomes_of, start_worker, Broker, McpServer, Status,
};
use serde_json::json;

const JOBS: usize = 1000;
const WORKERS: usize = 2;
const CONCURRENCY: usize = 8;
const TOOL_MS: u64 = 20;
const COMMIT_INTERVAL_MS: u64 = 200;
const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn killing_the_partition_leader_and_the_group_coordinator_loses_no_job() {
    let cluster = Broker::start_cluster();
    let topic = cluster.name("faults");
    let group = cluster.name("g-faults");
    cluster.create_topic_with(&topic, 3, &[("min.insync.replicas", "2")]);
    cluster.create_topic_with(
        &format!("{topic}.results"),
        3,
        &[("min.insync.replicas", "2")],
    );
    cluster.create_topic_with(&format!("{topic}.dlq"), 3, &[("min.insync.replicas", "2")]);
    let server = McpServer::start(&[]);
    let concurrency = CONCURRENCY.to_string();
    let interval = COMMIT_INTERVAL_MS.to_string();
    let _workers: Vec<_> = (0..WORKERS)
        .map(|n| {
            start_worker(
                &cluster,
                &server.url(),
                &topic,
                &group,
                &[
                    ("WORKER_CONCURRENCY", concurrency.as_str()),
                    ("RDKAFKA_AUTO_COMMIT_INTERVAL_MS", interval.as_str()),
                    ("WORKER_ID", &format!("worker-{n}")),
                ],
            )
        })
        .collect();
    let jobs: Vec<Vec<u8>> = (0..JOBS)
        .map(|i| {
            serde_json::to_vec(&fixture_job(
                &format!("job-{i}"),
                "sleep",
                json!({ "ms": TOOL_MS }),
            ))
            .expect("json")
        })
        .collect();
    let records: Vec<(Option<&str>, &[u8])> = jobs.iter().map(|j| (None, j.as_slice())).collect();
    cluster.produce(&topic, &records);
    let started = Instant::now();

    outcomes_of(&cluster, &topic, JOBS / 5, 2 * MINUTE);
    let leader = cluster.leader(&topic, 0);
    cluster.kill_node(leader);
    eprintln!(
        "faults: SIGKILLed node {leader}, the leader of {topic}[0], at {:?}",
        started.elapsed()
    );
    outcomes_of(&cluster, &topic, 2 * JOBS / 5, 2 * MINUTE);
    cluster.restart_node(leader);
    eprintln!("faults: node {leader} back at {:?}", started.elapsed());

    // With one offsets partition, its leader coordinates every group.
    let coordinator = cluster.leader("__consumer_offsets", 0);
    outcomes_of(&cluster, &topic, 3 * JOBS / 5, 2 * MINUTE);
    cluster.kill_node(coordinator);
    eprintln!(
        "faults: SIGKILLed node {coordinator}, the group coordinator, at {:?}",
        started.elapsed()
    );
    outcomes_of(&cluster, &topic, 4 * JOBS / 5, 2 * MINUTE);
    cluster.restart_node(coordinator);
    eprintln!("faults: node {coordinator} back at {:?}", started.elapsed());

    let outcomes = outcomes_of(&cluster, &topic, JOBS, 4 * MINUTE);
    let distinct = distinct_jobs(&outcomes);
    let repeated = outcomes.len() - distinct;
    let failed = outcomes
        .iter()
        .filter(|o| o.status != Status::Succeeded)
        .count();
    let dead = cluster.read_all(&format!("{topic}.dlq")).len();
    // Each fault may cost every worker what it held (≤ 2 × concurrency) and what it
    // finished since its last commit (≤ its rate × the commit interval).
    let per_worker = 2 * CONCURRENCY + CONCURRENCY * COMMIT_INTERVAL_MS as usize / TOOL_MS as usize;
    let bound = 2 * WORKERS * per_worker;
    eprintln!(
        "faults: {JOBS} jobs, 2 nodes SIGKILLed and restarted, {} outcome records, {distinct} distinct, {repeated} repeated (bound {bound}), {failed} failed, {dead} dead-lettered, in {:?}",
        outcomes.len(),
        started.elapsed()
    );
    assert_eq!(distinct, JOBS, "every job has an outcome");
    assert_eq!(failed, 0, "no job failed for a broker fault");
    assert_eq!(dead, 0, "nothing was dead-lettered for a broker fault");
    assert!(
        repeated <= bound,
        "{repeated} repeats exceed the bound {bound}"
    );
}
