//! Durable MCP tasks on a real broker: the tasks topic as two mcp-server replicas (two
//! registries) and the writers of task records (the store) share it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use mcp_jobs_contract::task::{JobState, OutcomeAt, TaskEndpoint, TaskRecord};
use mcp_jobs_e2e::{fixture, start_worker, Broker, McpServer, Process, API_KEY};
use mcp_jobs_kafka::KafkaSettings;
use mcp_jobs_tasks::{new_task_id, owner_of, Registry, Task, TaskStore};
use serde_json::{json, Value};

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
        endpoint: TaskEndpoint::Named,
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

/// A JSON-RPC request of the 2026-07-28 revision to `url` with `key`, from a client
/// that declares `capabilities`; the response document.
fn request(url: &str, key: &str, method: &str, params: Value, capabilities: Value) -> Value {
    // What a request names goes in Mcp-Name: a tool, or a task.
    let name = params["name"].as_str().or(params["taskId"].as_str());
    let name = name.map(str::to_owned);
    request_named(url, key, method, params, capabilities, name.as_deref())
}

/// [`request`] with `Mcp-Name: name`, or none.
fn request_named(
    url: &str,
    key: &str,
    method: &str,
    mut params: Value,
    capabilities: Value,
    name: Option<&str>,
) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "tasks-test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    });
    // One client for every request: a blocking client starts a runtime of its own.
    static CLIENT: std::sync::LazyLock<reqwest::blocking::Client> =
        std::sync::LazyLock::new(reqwest::blocking::Client::new);
    let mut sent = CLIENT
        .post(url)
        .bearer_auth(key)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", method);
    if let Some(name) = name {
        sent = sent.header("Mcp-Name", name);
    }
    let body = sent
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .and_then(|r| r.text())
        .expect("mcp-server answers");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// What one `tasks/get` of task `id` takes, over 20.
fn get_time(url: &str, id: &str) -> Duration {
    let started = Instant::now();
    for _ in 0..20 {
        request(
            url,
            API_KEY,
            "tasks/get",
            json!({"taskId": id}),
            tasks_client(),
        );
    }
    started.elapsed() / 20
}

fn tasks_client() -> Value {
    json!({"extensions": {"io.modelcontextprotocol/tasks": {}}})
}

/// Polls `tasks/get` until the task is no longer working: its last state, and every
/// status message it gave on the way, in order.
fn watch(url: &str, key: &str, id: &str) -> (Value, Vec<String>) {
    watch_as(url, key, id, |got| got["result"]["status"] != "working")
}

/// [`watch`] with [`API_KEY`] until `done` holds of a `tasks/get` answer.
fn watch_until(url: &str, id: &str, done: impl Fn(&Value) -> bool) -> (Value, Vec<String>) {
    watch_as(url, API_KEY, id, done)
}

fn watch_as(url: &str, key: &str, id: &str, done: impl Fn(&Value) -> bool) -> (Value, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut said: Vec<String> = Vec::new();
    loop {
        let got = request(url, key, "tasks/get", json!({"taskId": id}), tasks_client());
        if done(&got) {
            return (got, said);
        }
        let message = got["result"]["statusMessage"].as_str().unwrap_or_default();
        if said.last().map(String::as_str) != Some(message) {
            said.push(message.to_owned());
        }
        assert!(Instant::now() < deadline, "task {id}: {got:#}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// mcp-server with Kafka in front of the fixture as named server `fx` (every call a
/// task), `quick` (a task when not answered within 1.5 s) and `inline` (no tasks), `/mcp`'s
/// `call_tool` a task for tasks clients, keys [`API_KEY`] and `other-key`, and a worker.
struct Tasks {
    broker: Broker,
    topic: String,
    server: McpServer,
    worker: Option<Process>,
    _dir: tempfile::TempDir,
}

impl Tasks {
    fn start(name: &str) -> Self {
        let broker = Broker::start();
        let topic = broker.name(name);
        broker.create_job_topics(&topic, 2);
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("servers.json");
        let servers = json!({"mcpServers": {
            "fx": {"command": fixture(), "mcpJobs": {"tasks": "required"}},
            "inline": {"command": fixture()},
            "quick": {"command": fixture(), "mcpJobs": {"tasks": {"afterMs": 1500}}},
        }});
        std::fs::write(&file, servers.to_string()).expect("servers file");
        let keys = format!("{API_KEY}, other-key");
        let server = McpServer::start(&[
            ("MCP_SERVERS_FILE", &file.display().to_string()),
            ("MCP_API_KEYS", &keys),
            ("KAFKA_BROKERS", &broker.address),
            ("KAFKA_TOPIC", &topic),
            ("MCP_TASK_POLL_MS", "200"),
            ("MCP_META_TASKS", "optional"),
        ]);
        let mut tasks = Self {
            broker,
            topic,
            server,
            worker: None,
            _dir: dir,
        };
        tasks.start_worker();
        tasks
    }

    fn start_worker(&mut self) {
        let group = self.broker.name("g-tasks");
        self.worker = Some(start_worker(
            &self.broker,
            &self.server.url(),
            &self.topic,
            &group,
            &[],
        ));
    }

    /// The tasks server's endpoint.
    fn url(&self) -> String {
        self.server.endpoint("/servers/fx/mcp")
    }

    /// Creates a task calling `tool` with `arguments`; its id.
    fn create(&self, tool: &str, arguments: Value) -> String {
        let call = json!({"name": tool, "arguments": arguments});
        let created = request(&self.url(), API_KEY, "tools/call", call, tasks_client());
        let id = created["result"]["taskId"].as_str();
        id.unwrap_or_else(|| panic!("no task: {created:#}"))
            .to_owned()
    }

    fn cancel(&self, id: &str) -> Value {
        request(
            &self.url(),
            API_KEY,
            "tasks/cancel",
            json!({"taskId": id}),
            tasks_client(),
        )
    }
}

/// Cancelled before its job starts, a task's tool never runs; while it runs, the call
/// to the upstream is cancelled (its pooled child's slot freed at once) and the task
/// ends cancelled, with no dead letter; after it finished, nothing changes.
#[test]
fn a_cancellation_reaches_the_work() {
    let mut tasks = Tasks::start("task-cancel");
    let url = tasks.url();

    let slow = tasks.create("sleep", json!({"ms": 30_000}));
    let (_, said) = watch_until(&url, &slow, |got| {
        got["result"]["statusMessage"]
            .as_str()
            .is_some_and(|m| m.starts_with("running on "))
    });
    println!("before cancelling: {said:?}");
    let cancelled_at = Instant::now();
    assert!(tasks.cancel(&slow)["result"].is_object());
    let (done, _) = watch(&url, API_KEY, &slow);
    assert_eq!(done["result"]["status"], "cancelled", "{done:#}");
    let pool_idle = || {
        let stats = tasks.server.stats();
        (stats["pool"]["inFlight"] == 0).then_some(())
    };
    mcp_jobs_e2e::wait_for(
        "the upstream call cancelled",
        Duration::from_secs(10),
        pool_idle,
    );
    println!(
        "cancelled while running: the call ended after {:?}",
        cancelled_at.elapsed()
    );

    let finished = tasks.create("echo", json!({"text": "kept"}));
    let (done, _) = watch(&url, API_KEY, &finished);
    assert_eq!(done["result"]["status"], "completed", "{done:#}");
    assert!(tasks.cancel(&finished)["result"].is_object());
    let (again, _) = watch(&url, API_KEY, &finished);
    assert_eq!(
        again["result"]["result"]["content"][0]["text"], "kept",
        "{again:#}"
    );

    // No worker: the job waits; cancelled meanwhile, it never runs once one comes.
    drop(tasks.worker.take());
    let never = tasks.create("echo", json!({"text": "never"}));
    assert!(tasks.cancel(&never)["result"].is_object());
    let got = request(
        &url,
        API_KEY,
        "tasks/get",
        json!({"taskId": never}),
        tasks_client(),
    );
    assert_eq!(got["result"]["status"], "cancelled", "{got:#}");
    tasks.start_worker();
    let outcomes =
        mcp_jobs_e2e::outcomes_of(&tasks.broker, &tasks.topic, 3, Duration::from_secs(60));
    let outcome = outcomes
        .iter()
        .find(|o| o.job_id.as_deref() == Some(never.as_str()))
        .unwrap_or_else(|| panic!("no outcome for {never}: {outcomes:#?}"));
    assert_eq!(outcome.error_kind(), Some("cancelled"), "{outcome:#?}");
    assert_eq!(outcome.attempts, 0, "it never ran: {outcome:#?}");
    let dead = tasks.broker.read_all(&format!("{}.dlq", tasks.topic));
    assert!(
        dead.is_empty(),
        "a cancelled task is no dead letter: {} found",
        dead.len()
    );
}

/// A tool call at a named endpoint marked `"tasks": "required"` becomes a job on Kafka
/// that a worker runs; the client polls it to its result, another key cannot see it,
/// and a client that did not declare tasks support is refused.
#[test]
fn a_tool_call_becomes_a_durable_task_that_a_worker_runs() {
    let tasks = Tasks::start("task-jobs");
    let (server, url) = (&tasks.server, tasks.url());

    let call = json!({"name": "echo", "arguments": {"text": "durably"}});
    let created = request(&url, API_KEY, "tools/call", call.clone(), tasks_client());
    let task = &created["result"];
    assert_eq!(task["resultType"], "task", "{created:#}");
    assert_eq!(task["status"], "working", "{created:#}");
    assert_eq!(task["pollIntervalMs"], 200, "{created:#}");
    let id = task["taskId"].as_str().expect("a task id");
    assert_eq!(id.len(), 32, "128 bits: {id}");

    let (done, _) = watch(&url, API_KEY, id);
    assert_eq!(done["result"]["status"], "completed", "{done:#}");
    assert_eq!(
        done["result"]["result"]["content"][0]["text"], "durably",
        "{done:#}"
    );

    // Another key and an id that does not exist: unknown alike (-32602). An endpoint
    // whose server runs no tasks has no tasks methods (-32601).
    let inline_url = server.endpoint("/servers/inline/mcp");
    for (url, key, id, code) in [
        (url.as_str(), "other-key", id, -32602),
        (
            url.as_str(),
            API_KEY,
            "0123456789abcdef0123456789abcdef",
            -32602,
        ),
        (inline_url.as_str(), API_KEY, id, -32601),
    ] {
        for method in ["tasks/get", "tasks/cancel"] {
            let got = request(url, key, method, json!({"taskId": id}), tasks_client());
            assert_eq!(got["error"]["code"], code, "{method}: {got:#}");
        }
    }

    // A client that did not declare tasks support cannot call a tasks-only server.
    let refused = request(&url, API_KEY, "tools/call", call.clone(), json!({}));
    assert_eq!(refused["error"]["code"], -32021, "{refused:#}");
    // A server without tasks answers inline, as ever.
    let inline = request(&inline_url, API_KEY, "tools/call", call, tasks_client());
    assert_eq!(
        inline["result"]["content"][0]["text"], "durably",
        "{inline:#}"
    );

    // While it runs, the task says where: which worker, which attempt; and a retry says
    // after which error.
    let flaky = json!({"name": "fail", "arguments": {"succeed_from_attempt": 2}});
    let created = request(&url, API_KEY, "tools/call", flaky, tasks_client());
    let id = created["result"]["taskId"].as_str().expect("a task id");
    let (done, said) = watch(&url, API_KEY, id);
    println!("the task said: {said:?}");
    assert_eq!(done["result"]["status"], "completed", "{done:#}");
    assert_eq!(
        done["result"]["result"]["content"][0]["text"], "succeeded on attempt 2",
        "{done:#}"
    );
    assert!(
        said.iter()
            .any(|m| m.starts_with("attempt 1 failed (tool_error: fx.fail returned an error")),
        "{said:?}"
    );
    let slow = json!({"name": "sleep", "arguments": {"ms": 1500}});
    let created = request(&url, API_KEY, "tools/call", slow, tasks_client());
    let id = created["result"]["taskId"].as_str().expect("a task id");
    let (_, said) = watch(&url, API_KEY, id);
    assert!(
        said.iter()
            .any(|m| m.starts_with("running on ") && m.ends_with(", attempt 1")),
        "{said:?}"
    );

    // Operators count them: by the state of their job, as this replica reads the topic.
    let samples = mcp_jobs_e2e::scrape(&server.endpoint("/metrics"));
    let created = mcp_jobs_e2e::sample(
        &samples,
        "mcp_server_tasks_created_total",
        &[("server", "fx")],
    );
    assert!(created.is_some_and(|n| n >= 3.0), "{created:?}");
    let succeeded = mcp_jobs_e2e::sample(&samples, "mcp_server_tasks", &[("state", "succeeded")]);
    assert!(succeeded.is_some_and(|n| n >= 2.0), "{succeeded:?}");

    // A failing tool's task completes with its isError result.
    let failing = json!({"name": "fail", "arguments": {}});
    let created = request(&url, API_KEY, "tools/call", failing, tasks_client());
    let id = created["result"]["taskId"].as_str().expect("a task id");
    let (done, _) = watch(&url, API_KEY, id);
    assert_eq!(done["result"]["status"], "completed", "{done:#}");
    assert_eq!(done["result"]["result"]["isError"], true, "{done:#}");
}

/// A server whose calls become tasks only when they take long: every call from a
/// tasks client is a job, answered inline when it ends within the bound; a slower one is
/// answered with its task; a client without tasks support is answered inline, as ever.
#[test]
fn a_quick_call_is_answered_inline_and_a_slow_one_becomes_a_task() {
    let tasks = Tasks::start("task-quick");
    let url = tasks.server.endpoint("/servers/quick/mcp");
    let quick = json!({"name": "echo", "arguments": {"text": "at once"}});
    let answered = request(&url, API_KEY, "tools/call", quick.clone(), tasks_client());
    assert_eq!(answered["result"]["resultType"], "complete", "{answered:#}");
    assert_eq!(
        answered["result"]["content"][0]["text"], "at once",
        "{answered:#}"
    );
    let outcomes =
        mcp_jobs_e2e::outcomes_of(&tasks.broker, &tasks.topic, 1, Duration::from_secs(30));
    assert!(outcomes[0].succeeded(), "it ran as a job: {outcomes:#?}");
    let started = Instant::now();
    for _ in 0..20 {
        let again = request(&url, API_KEY, "tools/call", quick.clone(), tasks_client());
        assert_eq!(again["result"]["resultType"], "complete", "{again:#}");
    }
    println!(
        "a quick call through a job, answered inline: {:?} each",
        started.elapsed() / 20
    );

    let slow = json!({"name": "sleep", "arguments": {"ms": 3000}});
    let created = request(&url, API_KEY, "tools/call", slow, tasks_client());
    assert_eq!(created["result"]["resultType"], "task", "{created:#}");
    let id = created["result"]["taskId"].as_str().expect("a task id");
    println!("tasks/get of a working task: {:?} each", get_time(&url, id));
    let (done, _) = watch(&url, API_KEY, id);
    assert_eq!(
        done["result"]["result"]["content"][0]["text"], "slept 3000 ms",
        "{done:#}"
    );
    println!(
        "tasks/get of a completed task: {:?} each",
        get_time(&url, id)
    );

    let plain = request(&url, API_KEY, "tools/call", quick, json!({}));
    assert_eq!(
        plain["result"]["content"][0]["text"], "at once",
        "{plain:#}"
    );
}

/// Two mcp-server replicas answering alternately and two workers; 1,000 tasks of a
/// slow tool created half through each replica; then the replica that created half of
/// them and one worker are killed (SIGKILL) mid-run. Every task reaches its end, seen
/// through the surviving replica; none is lost; a job runs again only if its worker died
/// with it unfinished.
#[test]
fn a_thousand_tasks_survive_a_replica_and_a_worker_killed_mid_run() {
    let broker = Broker::start();
    let topic = broker.name("task-crash");
    broker.create_job_topics(&topic, 4);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("servers.json");
    let servers = json!({"mcpServers": {
        "fx": {"command": fixture(), "mcpJobs": {"tasks": "required"}},
    }});
    std::fs::write(&file, servers.to_string()).expect("servers file");
    let path = file.display().to_string();
    let env = [
        ("MCP_SERVERS_FILE", path.as_str()),
        ("KAFKA_BROKERS", broker.address.as_str()),
        ("KAFKA_TOPIC", topic.as_str()),
    ];
    let (mut a, b) = (McpServer::start(&env), McpServer::start(&env));
    let urls = format!("{},{}", a.url(), b.url());
    let group = broker.name("g-task-crash");
    let mut doomed = start_worker(&broker, &urls, &topic, &group, &[]);
    let _survivor = start_worker(&broker, &urls, &topic, &group, &[]);
    let endpoints = [a.endpoint("/servers/fx/mcp"), b.endpoint("/servers/fx/mcp")];

    let started = Instant::now();
    let slow = json!({"name": "sleep", "arguments": {"ms": 100}});
    let ids: Vec<String> = (0..1_000)
        .map(|i| {
            let url = &endpoints[i % 2];
            let created = request(url, API_KEY, "tools/call", slow.clone(), tasks_client());
            let id = created["result"]["taskId"].as_str();
            id.unwrap_or_else(|| panic!("no task: {created:#}"))
                .to_owned()
        })
        .collect();
    println!(
        "1,000 tasks created through two replicas in {:?}",
        started.elapsed()
    );
    a.process.kill9();
    doomed.kill9();

    let survivor = &endpoints[1];
    let mut ended = 0;
    for id in &ids {
        let (done, _) = watch_as(survivor, API_KEY, id, |got| {
            got["result"]["status"] != "working"
        });
        assert_eq!(done["result"]["status"], "completed", "{done:#}");
        ended += 1;
    }
    println!("{ended} of 1,000 tasks completed, seen through the surviving replica, {:?} after the first was created", started.elapsed());
    let outcomes = mcp_jobs_e2e::outcomes_of(&broker, &topic, 1_000, Duration::from_secs(60));
    let mut runs: std::collections::HashMap<&str, usize> = Default::default();
    for outcome in &outcomes {
        *runs
            .entry(outcome.job_id.as_deref().unwrap_or_default())
            .or_default() += 1;
    }
    let repeated = runs.values().filter(|n| **n > 1).count();
    println!("{repeated} jobs ran twice (their worker was killed before committing them)");
    assert!(
        ids.iter().all(|id| runs.contains_key(id.as_str())),
        "every task's job has an outcome"
    );
    // The README's bound for a killed worker: what it held (2 × WORKER_CONCURRENCY, 64
    // by default) plus what it finished in one commit interval (200 ms here: at most 2 ×
    // 64 jobs of 100 ms).
    assert!(repeated <= 4 * 64, "{repeated} repeats");
}

/// mcp-server may start before `kafka-worker create-topics` (the quick start does): it
/// serves at once, refuses a task call with why, and offers tasks once the topic is there.
#[test]
fn a_server_started_before_the_tasks_topic_offers_tasks_once_it_exists() {
    let broker = Broker::start();
    let topic = broker.name("task-late");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("servers.json");
    let servers =
        json!({"mcpServers": {"fx": {"command": fixture(), "mcpJobs": {"tasks": "required"}}}});
    std::fs::write(&file, servers.to_string()).expect("servers file");
    let path = file.display().to_string();
    let server = McpServer::start(&[
        ("MCP_SERVERS_FILE", &path),
        ("KAFKA_BROKERS", &broker.address),
        ("KAFKA_TOPIC", &topic),
    ]);
    let url = server.endpoint("/servers/fx/mcp");
    let call = json!({"name": "echo", "arguments": {"text": "later"}});
    let refused = request(&url, API_KEY, "tools/call", call.clone(), tasks_client());
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("create-topics"), "{refused:#}");

    broker.create_job_topics(&topic, 1);
    let _worker = start_worker(&broker, &server.url(), &topic, &broker.name("g-late"), &[]);
    let id = mcp_jobs_e2e::wait_for("tasks offered", Duration::from_secs(30), || {
        let created = request(&url, API_KEY, "tools/call", call.clone(), tasks_client());
        created["result"]["taskId"].as_str().map(str::to_owned)
    });
    let (done, _) = watch(&url, API_KEY, &id);
    assert_eq!(
        done["result"]["result"]["content"][0]["text"], "later",
        "{done:#}"
    );
}

/// `/mcp`'s `call_tool` meta-tool runs as a task for a client that declared tasks support
/// (`MCP_META_TASKS=optional`): its job carries the config the call describes, or names
/// the servers file's server. Its tasks live at `/mcp` only, as a named endpoint's live
/// at that endpoint only. A `tasks/*` request without `Mcp-Name` is named by its taskId (the
/// Python SDK's tasks clients send none); one whose name disagrees is refused.
#[test]
fn the_call_tool_meta_tool_runs_as_a_task_at_mcp() {
    let tasks = Tasks::start("task-meta");
    let (mcp, named) = (tasks.server.url(), tasks.url());

    let discovered = request(&mcp, API_KEY, "server/discover", json!({}), tasks_client());
    let extensions = &discovered["result"]["capabilities"]["extensions"];
    assert_eq!(
        extensions["io.modelcontextprotocol/tasks"],
        json!({}),
        "{discovered:#}"
    );

    let described = json!({"name": "call_tool", "arguments": {
        "serverName": "described", "config": {"command": fixture()},
        "tool": "echo", "arguments": {"text": "described"}}});
    let created = request(
        &mcp,
        API_KEY,
        "tools/call",
        described.clone(),
        tasks_client(),
    );
    assert_eq!(created["result"]["resultType"], "task", "{created:#}");
    let id = created["result"]["taskId"].as_str().expect("a task id");
    let (done, _) = watch(&mcp, API_KEY, id);
    assert_eq!(done["result"]["status"], "completed", "{done:#}");
    assert_eq!(
        done["result"]["result"]["resultType"], "complete",
        "{done:#}"
    );
    assert_eq!(
        done["result"]["result"]["content"][0]["text"], "described",
        "{done:#}"
    );
    // Found at /mcp only.
    let elsewhere = request(
        &named,
        API_KEY,
        "tasks/get",
        json!({"taskId": id}),
        tasks_client(),
    );
    assert_eq!(elsewhere["error"]["code"], -32602, "{elsewhere:#}");

    // Named by its taskId when the client sends no Mcp-Name; refused when it disagrees.
    let unnamed = request_named(
        &mcp,
        API_KEY,
        "tasks/get",
        json!({"taskId": id}),
        tasks_client(),
        None,
    );
    assert_eq!(unnamed["result"]["status"], "completed", "{unnamed:#}");
    let misnamed = request_named(
        &mcp,
        API_KEY,
        "tasks/get",
        json!({"taskId": id}),
        tasks_client(),
        Some("another-task"),
    );
    assert_eq!(misnamed["error"]["code"], -32020, "{misnamed:#}");

    // A call naming the servers file's server: its job names it too.
    let by_name = json!({"name": "call_tool", "arguments": {
        "serverName": "fx", "tool": "echo", "arguments": {"text": "by name"}}});
    let created = request(&mcp, API_KEY, "tools/call", by_name, tasks_client());
    let id = created["result"]["taskId"].as_str().expect("a task id");
    let (done, _) = watch(&mcp, API_KEY, id);
    assert_eq!(
        done["result"]["result"]["content"][0]["text"], "by name",
        "{done:#}"
    );
    let job = mcp_jobs_e2e::outcomes_of(&tasks.broker, &tasks.topic, 2, Duration::from_secs(30));
    assert!(job.iter().all(|o| o.succeeded()), "{job:#?}");

    // A server nobody describes is refused at once, not left to fail on a worker.
    let unknown = json!({"name": "call_tool", "arguments": {
        "serverName": "nowhere", "tool": "echo", "arguments": {}}});
    let refused = request(&mcp, API_KEY, "tools/call", unknown, tasks_client());
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("nowhere"), "{refused:#}");

    // A client without tasks support (kafka-worker is one) is answered inline.
    let inline = request(&mcp, API_KEY, "tools/call", described, json!({}));
    assert_eq!(
        inline["result"]["content"][0]["text"], "described",
        "{inline:#}"
    );
}

/// A peer's tasks client run as its users run it: its JSON lines, one per event.
fn peer_client(program: &str, script: &str, args: &[&str]) -> Vec<Value> {
    let output = Command::new(program)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/install-deps.sh installs it)"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The last event a client printed, and every status message it saw.
fn ending(events: &[Value]) -> (&Value, Vec<&str>) {
    let said = events
        .iter()
        .filter(|e| e["event"] == "status")
        .filter_map(|e| e["statusMessage"].as_str())
        .collect();
    (events.last().expect("events"), said)
}

/// The tasks clients nobody here wrote: FastMCP's (`fastmcp-tasks` 4.1.4, stock: it sends
/// no Mcp-Name on tasks/*) and the TypeScript `@modelcontextprotocol/ext-tasks` 0.2.2 on
/// the SDK v2 client. Each creates a task, follows it to its result, and cancels one
/// mid-run; FastMCP's also through `/mcp`'s `call_tool`.
#[test]
fn the_peers_tasks_clients_create_follow_and_cancel_tasks() {
    let tasks = Tasks::start("task-peers");
    let (url, mcp) = (tasks.url(), tasks.server.url());
    let fastmcp = format!(
        "{}/python/.venv-fastmcp/bin/python",
        env!("CARGO_MANIFEST_DIR")
    );
    let fastmcp = |args: &[&str]| peer_client(&fastmcp, "python/fastmcp_tasks_client.py", args);
    let ext_tasks = |args: &[&str]| peer_client("node", "node/tasks-client.mjs", args);

    let slow = r#"{"ms": 1500}"#;
    for (client, events) in [
        ("fastmcp", fastmcp(&[&url, API_KEY, "sleep", slow])),
        ("ext-tasks", ext_tasks(&[&url, API_KEY, "sleep", slow])),
        (
            "ext-tasks listening",
            ext_tasks(&[&url, API_KEY, "sleep", slow, "--listen"]),
        ),
    ] {
        let (ended, said) = ending(&events);
        println!("{client}: {said:?}");
        assert_eq!(ended["status"], "completed", "{client}: {events:#?}");
        assert_eq!(
            ended["result"]["content"][0]["text"], "slept 1500 ms",
            "{client}: {events:#?}"
        );
        assert!(
            said.iter().any(|m| m.starts_with("running on ")),
            "{client}: {said:?}"
        );
    }

    let meta = json!({"serverName": "fx", "tool": "echo", "arguments": {"text": "meta"}});
    let events = fastmcp(&[&mcp, API_KEY, "call_tool", &meta.to_string()]);
    let (ended, _) = ending(&events);
    assert_eq!(ended["result"]["content"][0]["text"], "meta", "{events:#?}");

    let long = r#"{"ms": 30000}"#;
    for (client, events) in [
        (
            "fastmcp",
            fastmcp(&[&url, API_KEY, "sleep", long, "--cancel-after", "1.5"]),
        ),
        (
            "ext-tasks",
            ext_tasks(&[&url, API_KEY, "sleep", long, "--cancel-after-ms", "1500"]),
        ),
    ] {
        let (ended, _) = ending(&events);
        assert_eq!(ended["status"], "cancelled", "{client}: {events:#?}");
    }
}

/// `subscriptions/listen` for task ids: acknowledged with the tasks this caller may
/// follow at this endpoint, then each change of their status pushed as `tasks/get` would
/// answer it, the last with the result; the stream ends once they all have.
#[test]
fn a_listening_client_is_pushed_each_status_until_its_tasks_end() {
    let tasks = Tasks::start("task-listen");
    let url = tasks.url();
    let id = tasks.create("sleep", json!({"ms": 1500}));
    let quick = tasks.create("echo", json!({"text": "pushed"}));
    let listen = |capabilities: Value| {
        let params = json!({"notifications": {"taskIds": [id, quick, "0123456789abcdef"]}});
        let mut params = params;
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "tasks-test", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": capabilities,
        });
        reqwest::blocking::Client::new()
            .post(&url)
            .bearer_auth(API_KEY)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2026-07-28")
            .header("Mcp-Method", "subscriptions/listen")
            .json(&json!({"jsonrpc": "2.0", "id": "listen-1", "method": "subscriptions/listen", "params": params}))
            .timeout(Duration::from_secs(60))
            .send()
            .and_then(|r| r.text())
            .expect("mcp-server answers")
    };

    let refused: Value = serde_json::from_str(&listen(json!({}))).expect("a JSON answer");
    assert_eq!(refused["error"]["code"], -32021, "{refused:#}");

    let started = Instant::now();
    let events: Vec<Value> = mcp_jobs_e2e::sse_events(&listen(tasks_client()))
        .into_iter()
        .map(|(_, data)| data)
        .collect();
    println!("the stream ended after {:?}", started.elapsed());
    let acknowledged = &events[0];
    assert_eq!(
        acknowledged["method"], "notifications/subscriptions/acknowledged",
        "{events:#?}"
    );
    assert_eq!(
        acknowledged["params"]["notifications"]["taskIds"],
        json!([id, quick]),
        "the unknown task is not followed: {events:#?}"
    );
    let pushed: Vec<&Value> = events
        .iter()
        .filter(|e| e["method"] == "notifications/tasks")
        .map(|e| &e["params"])
        .collect();
    assert!(
        pushed
            .iter()
            .all(|p| p["_meta"]["io.modelcontextprotocol/subscriptionId"] == "listen-1"),
        "{pushed:#?}"
    );
    let of = |task: &str| -> Vec<&Value> {
        pushed
            .iter()
            .copied()
            .filter(|p| p["taskId"] == task)
            .collect()
    };
    let slow = of(&id);
    assert!(
        slow.iter().any(|p| p["status"] == "working"
            && p["statusMessage"]
                .as_str()
                .is_some_and(|m| m.starts_with("running on "))),
        "{slow:#?}"
    );
    let last = slow.last().expect("pushed");
    assert_eq!(last["status"], "completed", "{slow:#?}");
    assert_eq!(
        last["result"]["content"][0]["text"], "slept 1500 ms",
        "{slow:#?}"
    );
    let last = of(&quick).last().copied().expect("pushed");
    assert_eq!(last["result"]["content"][0]["text"], "pushed", "{last:#?}");
    let ended = events.last().expect("events");
    assert_eq!(ended["id"], "listen-1", "{events:#?}");
    assert_eq!(ended["result"]["resultType"], "complete", "{events:#?}");
}
