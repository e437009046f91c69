//! The end-to-end harness: a real Apache Kafka broker, real `mcp-server` and
//! `kafka-worker` processes built from this workspace, real Redis servers, talked to over
//! real sockets. Tests share the run's broker but nothing on it (topics and groups
//! of their own) and get ports of their own; every process is stopped when its handle
//! drops.

pub use mcp_jobs_contract::headers;
use mcp_jobs_contract::headers::DeadLetterMeta;
pub use mcp_jobs_contract::outcome::{Outcome, Status};
use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// A built binary of this workspace (`cargo build --workspace --bins` puts them there).
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Polls `check` until it returns `Some`, or panics naming `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where test processes write their logs: `target/<profile>/e2e-logs/`.
fn log_path(name: &str) -> PathBuf {
    let dir = bin_dir().join("e2e-logs");
    std::fs::create_dir_all(&dir).expect("log dir");
    dir.join(format!("{name}-{}-{}.log", std::process::id(), free_port()))
}

/// `target/<profile>/`: test binaries live in its `deps/`, other binaries in it.
fn bin_dir() -> PathBuf {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .expect("the running binary has a directory");
    match exe_dir.file_name() {
        Some(name) if name == "deps" => exe_dir.parent().map(Path::to_path_buf).unwrap_or(exe_dir),
        _ => exe_dir,
    }
}

/// A child process that is killed (with SIGTERM, then SIGKILL) when dropped.
pub struct Process {
    child: Child,
    name: String,
    /// stdout and stderr, together.
    log: PathBuf,
}

impl Process {
    /// Starts `command` with its output going to a log file under `target/`.
    pub fn spawn(name: &str, command: &mut Command) -> Self {
        let log = log_path(name);
        let file = std::fs::File::create(&log).expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file handle"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Self {
            child,
            name: name.to_owned(),
            log,
        }
    }

    /// Everything the process has printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the process has printed `needle` at least `times` times.
    pub fn wait_for_output(&self, needle: &str, times: usize, timeout: Duration) {
        wait_for(
            &format!("{} to print {needle:?} {times} times", self.name),
            timeout,
            || (self.output().matches(needle).count() >= times).then_some(()),
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn signal(&self, signal: Signal) {
        // The child may have exited already; then there is nothing to signal.
        let _ = kill(Pid::from_raw(self.child.id() as i32), signal);
    }

    /// SIGKILL, as a crash would: no cleanup, no commit.
    pub fn kill9(&mut self) {
        self.signal(Signal::SIGKILL);
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the exit status, failing the test after `within`.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        let name = self.name.clone();
        wait_for(&format!("{name} to exit after SIGTERM"), within, || {
            self.child.try_wait().ok().flatten()
        })
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.is_running() {
            self.signal(Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.is_running() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An Apache Kafka broker for the tests: the run's shared one when `KAFKA_TEST_BROKERS`
/// names it (scripts/test.sh starts one per run), else one of the handle's own, started
/// with scripts/kafka.sh and stopped on drop. Tests share the broker and nothing else:
/// each handle gives its topics and groups names of their own ([`Broker::name`]).
pub struct Broker {
    /// Held for its drop, which stops the broker.
    _own: Option<OwnBroker>,
    pub address: String,
    namespace: String,
    /// Replicas of the topics the tests create: one per node, at most three.
    replicas: i32,
}

/// A broker this handle started: its data directory, removed with it.
struct OwnBroker {
    dir: tempfile::TempDir,
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(kafka_script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

fn kafka_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka.sh")
}

impl Broker {
    pub fn start() -> Self {
        static HANDLES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let namespace = format!(
            "{}-{}",
            std::process::id(),
            HANDLES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        if let Ok(address) = std::env::var("KAFKA_TEST_BROKERS") {
            return Self {
                _own: None,
                address,
                namespace,
                replicas: 1,
            };
        }
        Self::start_own("start", namespace, 1)
    }

    /// Three Apache Kafka nodes on loopback, of this handle's own (scripts/kafka.sh
    /// cluster): internal topics replicated three times with `min.insync.replicas=2`.
    /// Topics created through [`Broker::create_topic`] get three replicas too.
    pub fn start_cluster() -> Self {
        Self::start_own("cluster", "cluster".into(), 3)
    }

    /// Runs `scripts/kafka.sh <command> DIR` for a broker (or cluster) of this handle's own.
    fn start_own(command: &str, namespace: String, replicas: i32) -> Self {
        let dir = tempfile::tempdir().expect("broker dir");
        let started = Command::new("bash")
            .arg(kafka_script())
            .arg(command)
            .arg(dir.path())
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("scripts/kafka.sh {command}: {e}"));
        assert!(
            started.status.success(),
            "starting Apache Kafka failed (scripts/kafka.sh {command})"
        );
        let address = String::from_utf8_lossy(&started.stdout).trim().to_owned();
        Self {
            _own: Some(OwnBroker { dir }),
            address,
            namespace,
            replicas,
        }
    }

    /// SIGKILL to node `id` of a cluster this handle started, as a crash would.
    pub fn kill_node(&self, id: i32) {
        self.node_command("node-kill", id);
    }

    /// Starts node `id` again (same data, same ports) and waits until it listens.
    pub fn restart_node(&self, id: i32) {
        self.node_command("node-start", id);
    }

    fn node_command(&self, command: &str, id: i32) {
        let own = self._own.as_ref().expect("a broker of this handle's own");
        let status = Command::new("bash")
            .arg(kafka_script())
            .arg(command)
            .arg(own.dir.path())
            .arg(id.to_string())
            .status()
            .expect("scripts/kafka.sh");
        assert!(status.success(), "kafka.sh {command} {id}");
    }

    /// The node that leads `partition` of `topic` now.
    pub fn leader(&self, topic: &str, partition: i32) -> i32 {
        let consumer: BaseConsumer = self.client_config().create().expect("consumer");
        wait_for(
            &format!("a leader of {topic}[{partition}]"),
            Duration::from_secs(60),
            || {
                let metadata = consumer
                    .fetch_metadata(Some(topic), Duration::from_secs(5))
                    .ok()?;
                let partitions = metadata.topics().first()?.partitions();
                let leader = partitions.iter().find(|p| p.id() == partition)?.leader();
                (leader >= 0).then_some(leader)
            },
        )
    }

    /// `base` made unique to this handle: a topic or group name no other test uses.
    pub fn name(&self, base: &str) -> String {
        format!("{base}-{}", self.namespace)
    }

    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.address);
        config
    }

    pub fn create_topic(&self, topic: &str, partitions: i32) {
        self.create_topic_with(topic, partitions, &[]);
    }

    /// Creates `topic` with topic-level `config` (e.g. `max.message.bytes`).
    pub fn create_topic_with(&self, topic: &str, partitions: i32, config: &[(&str, &str)]) {
        let admin: AdminClient<DefaultClientContext> =
            self.client_config().create().expect("admin client");
        let topics = [config.iter().fold(
            NewTopic::new(topic, partitions, TopicReplication::Fixed(self.replicas)),
            |new, (key, value)| new.set(key, value),
        )];
        // librdkafka's own threads drive admin futures: any executor will do.
        let results =
            futures::executor::block_on(admin.create_topics(&topics, &AdminOptions::new()))
                .expect("create_topics");
        for result in results {
            result.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
        }
    }

    /// Creates the jobs topic and its results and dead-letter topics, and the
    /// scheduler's compacted topics (schedules: one partition; delayed jobs).
    pub fn create_job_topics(&self, topic: &str, partitions: i32) {
        self.create_topic(topic, partitions);
        self.create_topic(&format!("{topic}.results"), partitions);
        self.create_topic(&format!("{topic}.dlq"), partitions);
        let compacted = [("cleanup.policy", "compact")];
        self.create_topic_with(&format!("{topic}.schedules"), 1, &compacted);
        self.create_topic_with(&format!("{topic}.delayed"), partitions, &compacted);
    }

    /// Produces the records in order (the idempotent producer keeps it) and waits
    /// until the broker has them all. Records up to 16 MB leave the producer; the
    /// topic's own `max.message.bytes` decides what the broker takes.
    pub fn produce(&self, topic: &str, records: &[(Option<&str>, &[u8])]) {
        let producer: BaseProducer = self
            .client_config()
            .set("linger.ms", "0")
            .set("enable.idempotence", "true")
            .set("message.max.bytes", "16777216")
            .create()
            .expect("producer");
        for (key, payload) in records {
            let mut record = BaseRecord::<str, [u8]>::to(topic).payload(payload);
            if let Some(key) = key {
                record = record.key(key);
            }
            while let Err((e, returned)) = producer.send(record) {
                assert!(
                    matches!(
                        e,
                        rdkafka::error::KafkaError::MessageProduction(
                            rdkafka::types::RDKafkaErrorCode::QueueFull
                        )
                    ),
                    "enqueue: {e}"
                );
                producer.poll(Duration::from_millis(10));
                record = returned;
            }
            producer.poll(Duration::ZERO);
        }
        producer.flush(Duration::from_secs(30)).expect("flush");
    }

    /// Reads `topic` from the beginning (no group) until `count` records arrived.
    pub fn read(&self, topic: &str, count: usize, timeout: Duration) -> Vec<Record> {
        let (consumer, _) = self.reader(topic);
        let mut records = Vec::new();
        wait_for(&format!("{count} records on {topic}"), timeout, || {
            while let Some(received) = consumer.poll(Duration::from_millis(100)) {
                match received {
                    Ok(message) => records.push(Record::from(&message)),
                    Err(rdkafka::error::KafkaError::PartitionEOF(_)) => {}
                    Err(e) if is_transient(&e) => {}
                    Err(e) => panic!("reading {topic}: {e}"),
                }
            }
            (records.len() >= count).then_some(())
        });
        records
    }

    /// Everything on `topic` now: reads each partition from the beginning to its end.
    pub fn read_all(&self, topic: &str) -> Vec<Record> {
        let (consumer, partitions) = self.reader(topic);
        let mut records = Vec::new();
        let mut at_end = 0;
        // A partition whose leader died answers again once another is elected.
        let mut heard = Instant::now();
        while at_end < partitions {
            match consumer.poll(Duration::from_secs(1)) {
                Some(Ok(message)) => records.push(Record::from(&message)),
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => at_end += 1,
                Some(Err(e)) if is_transient(&e) => continue,
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                None if heard.elapsed() > Duration::from_secs(60) => {
                    panic!("reading {topic}: no answer from the broker for 60 s")
                }
                None => continue,
            }
            heard = Instant::now();
        }
        records
    }

    /// A consumer assigned to every partition of `topic` from the beginning, outside any
    /// group, reporting the end of each partition; and the partition count.
    pub fn reader(&self, topic: &str) -> (BaseConsumer, usize) {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", "e2e-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()
            .expect("consumer");
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        let mut assignment = TopicPartitionList::new();
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            assignment
                .add_partition_offset(topic, partition.id(), Offset::Beginning)
                .expect("assignment");
        }
        consumer.assign(&assignment).expect("assign");
        (consumer, assignment.count())
    }

    /// Produces `count` records to one partition.
    pub fn produce_to(&self, topic: &str, partition: i32, count: usize) {
        let producer: BaseProducer = self
            .client_config()
            .set("linger.ms", "0")
            .create()
            .expect("producer");
        for n in 0..count {
            let payload = format!("record {n}");
            producer
                .send(
                    BaseRecord::<(), str>::to(topic)
                        .partition(partition)
                        .payload(&payload),
                )
                .map_err(|(e, _)| e)
                .expect("enqueue");
        }
        producer.flush(Duration::from_secs(10)).expect("flush");
    }

    /// Commits `offsets` (partition, next offset to read) for `group`, as a consumer of
    /// that group would.
    pub fn commit(&self, group: &str, topic: &str, offsets: &[(i32, i64)]) {
        let consumer = self.group_consumer(group);
        let mut list = TopicPartitionList::new();
        for (partition, offset) in offsets {
            list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .expect("offset");
        }
        consumer
            .commit(&list, rdkafka::consumer::CommitMode::Sync)
            .expect("commit");
    }

    /// A consumer of `group` that never joins it: for reading and writing its offsets.
    fn group_consumer(&self, group: &str) -> BaseConsumer {
        self.client_config()
            .set("group.id", group)
            .create()
            .expect("consumer")
    }

    /// The group's committed offset of each partition of `topic` (`None`: nothing committed).
    pub fn committed(&self, group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
        let consumer = self.group_consumer(group);
        let mut list = TopicPartitionList::new();
        for partition in 0..partitions {
            list.add_partition(topic, partition);
        }
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(10))
            .expect("committed offsets");
        committed
            .elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(offset) => Some(offset),
                _ => None,
            })
            .collect()
    }
}

/// A consumer error that a node going away causes and librdkafka recovers from.
fn is_transient(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode::*;
    matches!(
        e.rdkafka_error_code(),
        Some(
            BrokerTransportFailure
                | AllBrokersDown
                | NotLeaderForPartition
                | LeaderNotAvailable
                | NotCoordinator
                | CoordinatorNotAvailable
        )
    )
}

/// A record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
    /// The record's timestamp (when it was produced), in ms since the epoch.
    pub timestamp_ms: Option<i64>,
}

impl<M: Message> From<&M> for Record {
    fn from(message: &M) -> Self {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| {
                        let value = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                        (h.key.to_owned(), value.unwrap_or_default())
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers,
            timestamp_ms: message.timestamp().to_millis(),
        }
    }
}

impl Record {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload)
            .unwrap_or_else(|e| panic!("record is not JSON ({e}): {self:?}"))
    }

    /// The record as a result record.
    pub fn outcome(&self) -> Outcome {
        Outcome::from_record(&self.payload)
            .unwrap_or_else(|e| panic!("not a result record ({e}): {self:?}"))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An `mcp-server` process.
pub struct McpServer {
    pub process: Process,
    pub port: u16,
}

pub const API_KEY: &str = "e2e-test-key";

impl McpServer {
    /// Starts mcp-server with the test API key, `mcp-server-time`, [`server_everything`]
    /// (node pinned to its entry point), [`fixture`], [`modern_only_server`] and
    /// [`silent_on_discover`] (python3 pinned to their scripts) allowed, and `env`.
    pub fn start(env: &[(&str, &str)]) -> Self {
        Self::start_on(free_port(), env)
    }

    pub fn start_on(port: u16, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(bin("mcp-server"));
        command
            .env("PORT", port.to_string())
            .env("MCP_BIND", "127.0.0.1")
            .env("MCP_API_KEYS", API_KEY)
            .env(
                "MCP_ALLOWED_COMMANDS",
                format!(
                    "mcp-server-time,node {},{},python3 {},python3 {} mcp-server-time",
                    server_everything_entry(),
                    fixture(),
                    modern_only_script(),
                    python_script("silent_on_discover.py"),
                ),
            )
            .env("RUST_LOG", "info,mcp_jobs_upstream=debug");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut process = Process::spawn("mcp-server", &mut command);
        let health = format!("http://127.0.0.1:{port}/health");
        wait_for("mcp-server /health", Duration::from_secs(20), || {
            assert!(process.is_running(), "mcp-server exited during start-up");
            reqwest::blocking::get(&health)
                .ok()
                .filter(|r| r.status().is_success())
        });
        Self { process, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Sends an authenticated `tools/call` of `tool` to `/mcp` and returns the
    /// JSON-RPC response (a result or an error).
    pub fn call(&self, tool: &str, arguments: serde_json::Value) -> serde_json::Value {
        Self::call_url(&self.url(), tool, arguments)
    }

    /// [`McpServer::call`] by URL, for threads that do not own the server.
    pub fn call_url(url: &str, tool: &str, arguments: serde_json::Value) -> serde_json::Value {
        let response = reqwest::blocking::Client::builder()
            // Blocking tools (send_message_and_wait) outlast reqwest's 30 s default.
            .timeout(Duration::from_secs(300))
            .build()
            .expect("HTTP client")
            .post(url)
            .bearer_auth(API_KEY)
            .header("Accept", "application/json, text/event-stream")
            .json(&serde_json::json!({
                "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": { "name": tool, "arguments": arguments },
            }))
            .send()
            .expect("mcp-server answers");
        assert!(response.status().is_success(), "{}", response.status());
        response.json().expect("a JSON-RPC response")
    }

    /// The server's `/stats` document.
    pub fn stats(&self) -> serde_json::Value {
        reqwest::blocking::Client::new()
            .get(self.endpoint("/stats"))
            .bearer_auth(API_KEY)
            .send()
            .and_then(|r| r.json())
            .expect("/stats")
    }
}

/// `@modelcontextprotocol/server-filesystem`'s entry point (in `tests/node`): give it
/// the directories it may serve as arguments.
pub fn server_filesystem_entry() -> String {
    node_package_entry("server-filesystem")
}

/// `@modelcontextprotocol/server-everything` (installed by scripts/install-deps.sh in
/// `tests/node`) as a stdio server config: echo, a long-running tool with progress…
pub fn server_everything() -> serde_json::Value {
    serde_json::json!({ "command": "node", "args": [server_everything_entry(), "stdio"] })
}

/// `tests/python/modern_only_server.py` as a stdio server config, `extra` appended to
/// its arguments: the Python SDK's server refusing `initialize`, as servers that speak
/// only 2026-07-28 do (`--speak-nothing`: refusing `server/discover` too).
pub fn modern_only_server(extra: &[&str]) -> serde_json::Value {
    let mut args = vec![modern_only_script(), "stdio".to_owned()];
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    serde_json::json!({ "command": "python3", "args": args })
}

/// The path of `tests/python/modern_only_server.py` (run it with `http PORT` to serve
/// stateless Streamable HTTP at `/mcp`).
pub fn modern_only_script() -> String {
    python_script("modern_only_server.py")
}

/// `mcp-server-time` behind `tests/python/silent_on_discover.py`, as a stdio server
/// config: a legacy server that stays silent on `server/discover`.
pub fn silent_on_discover() -> serde_json::Value {
    serde_json::json!({
        "command": "python3",
        "args": [python_script("silent_on_discover.py"), "mcp-server-time"],
    })
}

/// The path of a script in `tests/python`.
pub fn python_script(name: &str) -> String {
    format!("{}/python/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// [`server_everything`] serving `transport` (`sse` or `streamableHttp`) on a port of
/// its own, once it has printed `ready`; and that port.
pub fn server_everything_over(transport: &str, ready: &str) -> (Process, u16) {
    let port = free_port();
    let server = Process::spawn(
        &format!("everything-{transport}"),
        Command::new("node")
            .args([server_everything_entry().as_str(), transport])
            .env("PORT", port.to_string()),
    );
    server.wait_for_output(ready, 1, Duration::from_secs(30));
    (server, port)
}

fn server_everything_entry() -> String {
    node_package_entry("server-everything")
}

/// The entry point of an `@modelcontextprotocol/<package>` installed in `tests/node`.
fn node_package_entry(package: &str) -> String {
    let entry = format!(
        "{}/node/node_modules/@modelcontextprotocol/{package}/dist/index.js",
        env!("CARGO_MANIFEST_DIR")
    );
    assert!(
        Path::new(&entry).exists(),
        "{entry} is missing: run scripts/install-deps.sh"
    );
    entry
}

/// The events of a finished Server-Sent Events body: `(event name, JSON data)`.
pub fn sse_events(body: &str) -> Vec<(String, serde_json::Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut name = "message".to_owned();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    name = value.trim().to_owned();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push_str(value.trim_start());
                }
            }
            let data = serde_json::from_str(&data).ok()?;
            Some((name, data))
        })
        .collect()
}

/// The names in a `{"tools": [{"name": ...}, ...]}` listing, in order.
/// Every tool mcp-server serves by default (all toolsets), as listed: by name.
pub const ALL_TOOLS: [&str; 13] = [
    "add_stream_message",
    "call_tool",
    "checkin_client",
    "create_consumer_group",
    "get_messages",
    "get_my_identity",
    "get_stream_messages",
    "list_groups",
    "list_streams",
    "list_tools",
    "send_message",
    "send_message_and_wait",
    "server_initialize",
];

pub fn tool_names(listing: &serde_json::Value) -> Vec<&str> {
    listing["tools"]
        .as_array()
        .map(|tools| tools.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default()
}

/// One sample of a Prometheus text exposition: `name{labels} value`.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub value: f64,
}

/// Fetches and parses `url` (a `/metrics` endpoint): every sample line, comments skipped.
pub fn scrape(url: &str) -> Vec<Sample> {
    let text = reqwest::blocking::get(url)
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.text())
        .unwrap_or_else(|e| panic!("scraping {url}: {e}"));
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|pair| !pair.is_empty())
                .filter_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    Some((key.to_owned(), value.trim_matches('"').to_owned()))
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().unwrap_or(f64::NAN),
            }
        })
        .collect()
}

/// The value of the sample `name` whose labels include all of `labels`, if any.
pub fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

/// One process as `/proc/<pid>/stat` describes it.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: u32,
    pub parent: u32,
    /// `R`, `S`, `Z` (zombie)…
    pub state: char,
}

/// Every process on the machine.
pub fn processes() -> Vec<ProcInfo> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name is in parentheses and may hold spaces: split after it.
            let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ');
            let state = fields.next()?.chars().next()?;
            let parent = fields.next()?.parse().ok()?;
            Some(ProcInfo { pid, parent, state })
        })
        .collect()
}

/// Processes whose environment holds `NAME=value` (a marker a test gives its children).
pub fn processes_with_env(name: &str, value: &str) -> Vec<u32> {
    let needle = format!("{name}={value}");
    processes()
        .into_iter()
        .filter(|p| {
            std::fs::read(format!("/proc/{}/environ", p.pid))
                .map(|env| env.split(|b| *b == 0).any(|var| var == needle.as_bytes()))
                .unwrap_or(false)
        })
        .map(|p| p.pid)
        .collect()
}

/// A `kafka-worker` process consuming `topic` in `group`. Its schedule dispatcher is
/// off unless `env` turns it on (`SCHEDULER_ENABLED=true`).
pub fn start_worker(
    broker: &Broker,
    server_url: &str,
    topic: &str,
    group: &str,
    env: &[(&str, &str)],
) -> Process {
    let mut command = worker_command(broker, topic, group, env);
    command.env("MCP_SERVER_URL", server_url);
    Process::spawn("kafka-worker", &mut command)
}

/// What end-to-end tests of jobs open with: a job topic of `partitions` (with its
/// results and dead-letter topics) on the broker, mcp-server, and one kafka-worker with
/// `worker_env` in a group of its own. Fields drop in order: the worker stops first.
pub struct JobStack {
    pub worker: Process,
    pub server: McpServer,
    pub topic: String,
    pub group: String,
    pub broker: Broker,
}

impl JobStack {
    pub fn start(name: &str, partitions: i32, worker_env: &[(&str, &str)]) -> Self {
        Self::start_with(name, partitions, &[], worker_env)
    }

    /// [`JobStack::start`] with `server_env` for mcp-server.
    pub fn start_with(
        name: &str,
        partitions: i32,
        server_env: &[(&str, &str)],
        worker_env: &[(&str, &str)],
    ) -> Self {
        let broker = Broker::start();
        let topic = broker.name(name);
        let group = broker.name(&format!("g-{name}"));
        broker.create_job_topics(&topic, partitions);
        let server = McpServer::start(server_env);
        let worker = start_worker(&broker, &server.url(), &topic, &group, worker_env);
        Self {
            worker,
            server,
            topic,
            group,
            broker,
        }
    }
}

/// A `kafka-worker scheduler` process: only the schedule dispatcher of `topic`, in the
/// dispatchers' group of `group`. Its `/metrics` and `/ready` are on `metrics_port`.
pub fn start_dispatcher(
    broker: &Broker,
    topic: &str,
    group: &str,
    metrics_port: u16,
    worker_id: &str,
) -> Process {
    let port = metrics_port.to_string();
    let mut command = worker_command(
        broker,
        topic,
        group,
        &[("METRICS_PORT", &port), ("WORKER_ID", worker_id)],
    );
    command.arg("scheduler");
    Process::spawn("kafka-worker-scheduler", &mut command)
}

/// A `kafka-worker console` process for `topic` on `port`, with `env` (its keys,
/// read-only mode); ready once `/health` on its metrics port answers.
pub fn start_console(broker: &Broker, topic: &str, port: u16, env: &[(&str, &str)]) -> Process {
    let metrics_port = free_port();
    let (port, metrics) = (port.to_string(), metrics_port.to_string());
    let mut all = vec![
        ("CONSOLE_PORT", port.as_str()),
        ("METRICS_PORT", metrics.as_str()),
    ];
    all.extend(env);
    let mut command = worker_command(broker, topic, "console", &all);
    command.arg("console");
    let mut process = Process::spawn("kafka-worker-console", &mut command);
    // The login form: served once the console's own port is bound.
    let health = format!("http://127.0.0.1:{port}/login");
    wait_for("the console to start", Duration::from_secs(30), || {
        assert!(
            process.is_running(),
            "the console exited: {}",
            process.output()
        );
        reqwest::blocking::get(&health)
            .ok()
            .filter(|r| r.status().is_success())
    });
    process
}

/// The session cookie (`name=value`) a console login answered with, if any.
pub fn session_cookie(login: &reqwest::blocking::Response) -> String {
    login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .to_owned()
}

/// Runs `kafka-worker <args>` against `topic` to its end: its exit status and output.
pub fn worker_cli(broker: &Broker, topic: &str, args: &[&str]) -> std::process::Output {
    let mut command = worker_command(broker, topic, "cli", &[]);
    command
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("kafka-worker {args:?}: {e}"))
}

/// `kafka-worker <args>` against `topic`, which must succeed: its stdout.
pub fn worker_cli_ok(broker: &Broker, topic: &str, args: &[&str]) -> String {
    let output = worker_cli(broker, topic, args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kafka-worker {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A `kafka-worker` command for `topic` and `group` with the tests' settings and `env`.
pub fn worker_command(broker: &Broker, topic: &str, group: &str, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(bin("kafka-worker"));
    command
        .env("SCHEDULER_ENABLED", "false")
        .env("KAFKA_BROKERS", &broker.address)
        .env("KAFKA_TOPIC", topic)
        .env("MCP_CONSUMER_GROUP", group)
        .env("MCP_API_KEY", API_KEY)
        // A killed member's partitions move after its session times out: keep that
        // short (6 s is the broker's least by default).
        .env("RDKAFKA_SESSION_TIMEOUT_MS", "6000")
        .env("RDKAFKA_AUTO_COMMIT_INTERVAL_MS", "200")
        .env("RETRY_MAX_BACKOFF_MS", "1000")
        .env("METRICS_PORT", free_port().to_string());
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// Result records by job id, read until `count` records arrived.
pub fn results_by_job(
    broker: &Broker,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> Vec<Outcome> {
    broker
        .read(&format!("{topic}.results"), count, timeout)
        .iter()
        .map(Record::outcome)
        .collect()
}

/// The path of `mcp-fixture`, this workspace's own stdio MCP server for fault cases
/// and benchmarks (tools `echo`, `sleep`, `fail`, `meta`, `crash`).
pub fn fixture() -> String {
    bin("mcp-fixture").display().to_string()
}

/// A `tool-call` job calling `tool` of [`fixture`] (as server `fx`) with `arguments`.
pub fn fixture_job(job_id: &str, tool: &str, arguments: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "jobID": job_id,
        "jobType": "tool-call",
        "payload": {
            "mcpServers": { "fx": { "command": fixture() } },
            "server": "fx", "tool": tool, "arguments": arguments
        }
    })
}

/// Every result record on `<topic>.results` once at least `jobs` distinct job ids
/// have one (repeats included, so callers can count them).
pub fn outcomes_of(broker: &Broker, topic: &str, jobs: usize, timeout: Duration) -> Vec<Outcome> {
    let results_topic = format!("{topic}.results");
    wait_for(&format!("outcomes of {jobs} jobs"), timeout, || {
        let outcomes: Vec<Outcome> = broker
            .read_all(&results_topic)
            .iter()
            .map(Record::outcome)
            .collect();
        if distinct_jobs(&outcomes) >= jobs {
            return Some(outcomes);
        }
        std::thread::sleep(Duration::from_millis(500));
        None
    })
}

/// How many distinct job ids `outcomes` cover.
pub fn distinct_jobs(outcomes: &[Outcome]) -> usize {
    outcomes
        .iter()
        .filter_map(|o| o.job_id.as_deref())
        .collect::<std::collections::HashSet<_>>()
        .len()
}

/// The headers kafka-worker gives a dead letter, for tests and benchmarks that write
/// dead letters of their own.
pub fn dead_letter_headers<'a>(
    job_id: &'a str,
    kind: &'a str,
    error: &'a str,
    source_topic: &'a str,
) -> rdkafka::message::OwnedHeaders {
    DeadLetterMeta {
        job_id: Some(job_id.to_owned()),
        error_kind: Some(kind.to_owned()),
        error: Some(error.to_owned()),
        source_topic: Some(source_topic.to_owned()),
        ..DeadLetterMeta::default()
    }
    .to_headers()
    .into_iter()
    .fold(
        rdkafka::message::OwnedHeaders::new(),
        |all, (key, value)| {
            all.insert(rdkafka::message::Header {
                key,
                value: Some(value.as_str()),
            })
        },
    )
}

/// Hands `record` to `producer`, waiting while its local queue is full.
pub fn enqueue<K: rdkafka::message::ToBytes + ?Sized>(
    producer: &BaseProducer,
    mut record: BaseRecord<'_, K, [u8]>,
) -> rdkafka::error::KafkaResult<()> {
    loop {
        match producer.send(record) {
            Ok(()) => {
                producer.poll(Duration::ZERO);
                return Ok(());
            }
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                returned,
            )) => {
                producer.poll(Duration::from_millis(10));
                record = returned;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// An OTLP/HTTP trace receiver (protobuf `POST /v1/traces`) standing in for Jaeger or
/// an OpenTelemetry collector: it decodes what the real exporters send and keeps the
/// spans for the test to inspect.
pub struct OtlpReceiver {
    pub port: u16,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

/// One exported span, ids in lowercase hex (empty `parent_span_id` for a root).
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub service: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub attributes: HashMap<String, String>,
}

impl OtlpReceiver {
    pub fn start() -> Self {
        use axum::body::Bytes;
        use opentelemetry_proto::tonic::collector::trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
        };
        use prost::Message;

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let port = listener.local_addr().expect("receiver address").port();
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = spans.clone();
        let receive = move |body: Bytes| {
            let kept = kept.clone();
            async move {
                let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                    return (axum::http::StatusCode::BAD_REQUEST, Vec::new());
                };
                kept.lock().expect("spans").extend(received_spans(request));
                let answer = ExportTraceServiceResponse::default().encode_to_vec();
                (axum::http::StatusCode::OK, answer)
            }
        };
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("receiver runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().route("/v1/traces", axum::routing::post(receive));
                axum::serve(listener, app).await.expect("receiver serves");
            });
        });
        Self { port, spans }
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().expect("spans").clone()
    }
}

fn received_spans(
    request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
) -> Vec<ReceivedSpan> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::common::v1::KeyValue;

    let text = |attribute: &KeyValue| match attribute.value.as_ref().and_then(|v| v.value.as_ref())
    {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    };
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .map(text)
            .unwrap_or_default();
        for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
            spans.push(ReceivedSpan {
                service: service.clone(),
                name: span.name.clone(),
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: hex(&span.parent_span_id),
                attributes: span
                    .attributes
                    .iter()
                    .map(|a| (a.key.clone(), text(a)))
                    .collect(),
            });
        }
    }
    spans
}

/// A Redis server of the test's own (no persistence) on its own port, so a test can
/// stop and restart it without touching anyone else's.
pub struct RedisServer {
    process: Process,
    pub port: u16,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    fn start_on(port: u16) -> Self {
        let process = Process::spawn(
            "redis",
            Command::new("redis-server").args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]),
        );
        wait_for("redis-server to listen", Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Self { process, port }
    }

    /// The value for `REDIS_URL`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// How many clients are connected to it now (`INFO clients`), this query's included.
    pub fn connected_clients(&self) -> i64 {
        let mut connection = redis::Client::open(self.url())
            .and_then(|client| client.get_connection())
            .expect("Redis connection");
        let info: String = redis::cmd("INFO")
            .arg("clients")
            .query(&mut connection)
            .expect("INFO clients");
        info.lines()
            .find_map(|line| line.strip_prefix("connected_clients:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("connected_clients in INFO clients")
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        self.process.kill9();
    }

    /// Starts again on the same port (empty: nothing persists).
    pub fn restart(&mut self) {
        self.kill();
        *self = Self::start_on(self.port);
    }
}

/// Checks that a JSON-RPC response is mcp-server's policy refusing the call with a
/// message that contains `expected`.
pub fn assert_refused(response: &serde_json::Value, expected: &str) {
    let message = response["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a refusal containing {expected:?}: {response:#}"));
    assert!(
        message.contains(expected),
        "{message:?} should contain {expected:?}"
    );
    assert_eq!(response["error"]["data"]["kind"], "refused", "{response:#}");
}

/// A tool call's result from a JSON-RPC response: whether it is an error result, its
/// structured content, and its text.
pub fn tool_result(response: &serde_json::Value) -> (bool, serde_json::Value, String) {
    let result = &response["result"];
    assert!(result.is_object(), "not a tool result: {response:#}");
    let text = result["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|block| block["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    (
        result["isError"] == true,
        result["structuredContent"].clone(),
        text,
    )
}
