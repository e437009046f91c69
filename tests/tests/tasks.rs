//! Durable MCP tasks on a real broker: the tasks topic as two mcp-server replicas (two
//! registries) and the writers of task records (the store) share it.

use std::time::{Duration, Instant};

use chrono::Utc;
use mcp_jobs_contract::task::{JobState, OutcomeAt, TaskRecord};
use mcp_jobs_e2e::Broker;
use mcp_jobs_kafka::KafkaSettings;
use mcp_jobs_tasks::{new_task_id, owner_of, Registry, Task, TaskStore};

fn settings(broker: &Broker, topic: &str) -> KafkaSettings {
    KafkaSettings::from_vars([
        ("KAFKA_BROKERS".to_owned(), broker.address.clone()),
        ("KAFKA_TOPIC".to_owned(), topic.to_owned()),
    ])
    .expect("settings")
}

fn created(owner: &str, ttl_ms: u64) -> TaskRecord {
    TaskRecord::Created {
        owner: owner.to_owned(),
        server: "time".into(),
        tool: "get_current_time".into(),
        created_at: Utc::now(),
        ttl_ms,
        poll_interval_ms: 500,
    }
}

/// `get` again until `done` holds of the task (an update is read by every replica soon,
/// not at once), or panics after 10 s.
async fn until(registry: &Registry, id: &str, owner: &str, done: impl Fn(&Task) -> bool) -> Task {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let task = registry.get(id, owner).await.expect("get");
        if let Some(task) = task.filter(&done) {
            return task;
        }
        assert!(Instant::now() < deadline, "task {id} never got there");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_created_through_one_replica_is_found_at_once_through_another() {
    let broker = Broker::start();
    let topic = broker.name("tasks");
    broker.create_topic_with(
        &format!("{topic}.tasks"),
        3,
        &[("cleanup.policy", "compact")],
    );
    let settings = settings(&broker, &topic);
    let store = TaskStore::new(&settings).expect("store");
    let (a, b) = (
        Registry::follow(&settings).expect("replica A"),
        Registry::follow(&settings).expect("replica B"),
    );
    let owner = owner_of("key-a");

    // Created (acknowledged) through A, asked of B at once: found every time.
    let started = Instant::now();
    let mut ids = Vec::new();
    let (mut writing, mut getting) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..1_000 {
        let id = new_task_id();
        let t0 = Instant::now();
        store
            .write(&id, &created(&owner, 600_000))
            .await
            .expect("create");
        let t1 = Instant::now();
        let found = b.get(&id, &owner).await.expect("get on B");
        (writing, getting) = (writing + (t1 - t0), getting + t1.elapsed());
        assert!(
            found.is_some(),
            "task {id} created through A is unknown to B"
        );
        ids.push(id);
    }
    println!(
        "1,000 create-then-get-elsewhere in {:?} (writing {writing:?}, getting {getting:?})",
        started.elapsed()
    );
    assert_eq!(
        a.get(&ids[0], &owner)
            .await
            .expect("get on A")
            .map(|t| t.id),
        Some(ids[0].clone())
    );

    // Another key's get finds nothing, as for an id that does not exist.
    assert_eq!(b.get(&ids[1], &owner_of("key-b")).await.expect("get"), None);
    assert_eq!(b.get(&new_task_id(), &owner).await.expect("get"), None);

    // Where its job is and whether it was cancelled reach every replica.
    let status = TaskRecord::Status {
        state: JobState::Succeeded,
        worker: "worker-1".into(),
        attempt: 2,
        error: None,
        outcome: Some(OutcomeAt {
            partition: 1,
            offset: 42,
        }),
        at: Utc::now(),
    };
    store.write(&ids[2], &status).await.expect("status");
    let done = until(&a, &ids[2], &owner, |t| t.status.is_some()).await;
    assert_eq!(done.status, Some(status));
    store
        .write(&ids[3], &TaskRecord::Cancelled { at: Utc::now() })
        .await
        .expect("cancel");
    until(&b, &ids[3], &owner, |t| t.cancelled_at.is_some()).await;

    // A task whose TTL passed is gone, then swept and tombstoned.
    let short = new_task_id();
    store
        .write(&short, &created(&owner, 300))
        .await
        .expect("create");
    assert!(b.get(&short, &owner).await.expect("get").is_some());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(b.get(&short, &owner).await.expect("get"), None);
    assert_eq!(b.sweep(Utc::now()), vec![short.clone()]);
    store.forget(&short).await.expect("forget");

    // A replica that starts now reads every live task and no forgotten one.
    let started = Instant::now();
    let c = Registry::follow(&settings).expect("replica C");
    let last = ids.last().expect("ids");
    assert!(c.get(last, &owner).await.expect("get on C").is_some());
    println!(
        "a new replica answered for the newest task after {:?}",
        started.elapsed()
    );
    assert_eq!(c.get(&short, &owner).await.expect("get"), None);
    until(&c, &ids[3], &owner, |t| t.cancelled_at.is_some()).await;
}
