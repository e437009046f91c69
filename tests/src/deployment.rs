//! The fixture most job tests open with: a job topic (with its results and dead-letter
//! topics) on the run's broker, mcp-server, and one kafka-worker in a group of its own.
//!
//! ```ignore
//! let deployment = Deployment::new("retry").partitions(2).worker_env(&[("JOB_MAX_ATTEMPTS", "1")]).start();
//! deployment.publish(&[(None, fixture_job("a", "echo", json!({"text": "hi"})).to_string().into_bytes())]);
//! assert_eq!(deployment.outcomes_by_job(1)["a"].status, Status::Succeeded);
//! ```

use std::collections::HashMap;
use std::time::Duration;

use crate::{outcomes_of, start_worker, Broker, McpServer, Outcome, Process, Record};

/// How long [`Running::outcomes`] waits for outcomes.
const OUTCOMES_TIMEOUT: Duration = Duration::from_secs(60);

/// What to start: a name (topics and group derive from it), partitions, environments.
#[must_use]
pub struct Deployment {
    name: String,
    partitions: i32,
    server_env: Vec<(String, String)>,
    worker_env: Vec<(String, String)>,
}

/// A started deployment. Fields drop in order: the worker stops first.
pub struct Running {
    pub worker: Process,
    pub server: McpServer,
    pub topic: String,
    pub group: String,
    pub broker: Broker,
}

fn owned(env: &[(&str, &str)]) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn borrowed(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

impl Deployment {
    /// One partition, default settings.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            partitions: 1,
            server_env: Vec::new(),
            worker_env: Vec::new(),
        }
    }

    pub fn partitions(mut self, partitions: i32) -> Self {
        self.partitions = partitions;
        self
    }

    /// Adds `env` to mcp-server's environment.
    pub fn server_env(mut self, env: &[(&str, &str)]) -> Self {
        self.server_env.extend(owned(env));
        self
    }

    /// Adds `env` to the worker's environment.
    pub fn worker_env(mut self, env: &[(&str, &str)]) -> Self {
        self.worker_env.extend(owned(env));
        self
    }

    pub fn start(self) -> Running {
        let broker = Broker::start();
        let topic = broker.name(&self.name);
        let group = broker.name(&format!("g-{}", self.name));
        broker.create_job_topics(&topic, self.partitions);
        let server = McpServer::start(&borrowed(&self.server_env));
        let worker = start_worker(
            &broker,
            &server.url(),
            &topic,
            &group,
            &borrowed(&self.worker_env),
        );
        Running {
            worker,
            server,
            topic,
            group,
            broker,
        }
    }
}

impl Running {
    /// The broker, the job topic and the worker's group: what the harness's functions take.
    pub fn parts(&self) -> (&Broker, &str, &str) {
        (&self.broker, &self.topic, &self.group)
    }

    /// Publishes `(key, message)` pairs to the job topic, in order.
    pub fn publish(&self, messages: &[(Option<&str>, Vec<u8>)]) {
        let records: Vec<(Option<&str>, &[u8])> =
            messages.iter().map(|(k, m)| (*k, m.as_slice())).collect();
        self.broker.produce(&self.topic, &records);
    }

    /// Every outcome record once `jobs` distinct jobs have one (repeats included).
    pub fn outcomes(&self, jobs: usize) -> Vec<Outcome> {
        outcomes_of(&self.broker, &self.topic, jobs, OUTCOMES_TIMEOUT)
    }

    /// An outcome of each job, by job id, once `jobs` distinct jobs have one.
    pub fn outcomes_by_job(&self, jobs: usize) -> HashMap<String, Outcome> {
        self.outcomes(jobs)
            .into_iter()
            .filter_map(|o| Some((o.job_id.clone()?, o)))
            .collect()
    }

    /// The first `count` dead letters.
    pub fn dead_letters(&self, count: usize) -> Vec<Record> {
        let topic = format!("{}.dlq", self.topic);
        self.broker.read(&topic, count, OUTCOMES_TIMEOUT)
    }

    /// The worker group's committed offset of each of the job topic's `partitions`.
    pub fn committed(&self, partitions: i32) -> Vec<Option<i64>> {
        self.broker.committed(&self.group, &self.topic, partitions)
    }
}
