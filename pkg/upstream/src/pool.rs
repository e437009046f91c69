//! The supervised pool of upstream connections. A connection is a cache entry, not
//! state: any call could be served by a fresh one. So connections are keyed by their
//! whole resolved config (different environments never share a child), bounded per
//! config and in total, shared by a bounded number of concurrent calls each, reaped
//! when idle, evicted least-recently-used when the pool is full, and replaced (with
//! backoff when they keep dying) when they crash or hang.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mcp_jobs_contract::{FailureKind, ServerConfig};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientRequest, ServerPeerInfo,
    ServerResult, Tool,
};
use serde::Serialize;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::connection::Connection;
use crate::error::UpstreamError;
use crate::policy::{Policy, Resolved, Target, Trust};
use crate::progress::ProgressSink;
use crate::remaining;
use crate::revision::Revisions;
use mcp_jobs_contract::Secrets;

/// The pool's bounds and timings.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Children (or remote sessions) kept at most for one config.
    pub max_per_server: usize,
    /// Children kept at most in all, starting and closing ones included.
    pub max_total: usize,
    /// Calls one child serves at once; past that a call goes to another child.
    pub max_calls_per_child: usize,
    /// A child unused this long is closed.
    pub idle_timeout: Duration,
    /// Deadline of a call (connecting included) when the caller gives none.
    pub default_deadline: Duration,
    /// Wait before restarting a config whose child just failed; doubles per failure.
    pub restart_backoff: Duration,
    /// The longest wait between restarts.
    pub restart_backoff_max: Duration,
}

/// A start given less time than this (the caller's deadline nearly spent) that times
/// out is not held against the server.
const FAIR_START: Duration = Duration::from_secs(1);

/// How long a child whose call timed out gets to answer a ping before it counts as hung.
const PING_DEADLINE: Duration = Duration::from_secs(2);

/// A cheap handle to the pool; clones share it.
#[derive(Clone)]
pub struct Pool(Arc<Inner>);

struct Inner {
    policy: Policy,
    settings: PoolSettings,
    http: reqwest::Client,
    state: Mutex<State>,
    /// `max_total` child slots: every child holds one from the start of its start to
    /// the end of its close, so the bound cannot drift from the children that exist.
    /// Taken only under the state lock.
    slots: Arc<Semaphore>,
    /// Signalled whenever a call slot or a child slot frees up.
    freed: Arc<Notify>,
    /// Closes running in the background (evictions), which shutdown waits for: a
    /// process left half-closed when mcp-server exits would outlive it.
    closing: TaskTracker,
    counters: Counters,
    /// The revision each config spoke, so a new child skips the probe.
    revisions: Revisions,
}

#[derive(Default)]
struct Counters {
    spawned: AtomicU64,
    spawn_failures: AtomicU64,
    crashed: AtomicU64,
    hung: AtomicU64,
    evicted: AtomicU64,
    reaped: AtomicU64,
}

#[derive(Default)]
struct State {
    groups: HashMap<Target, Group>,
    /// Set by shutdown: no new leases, no new children.
    closed: bool,
}

/// One of the pool's `max_total` child slots. Dropping it (with the child's last
/// holder) gives the slot back and wakes the calls waiting for one.
struct ChildSlot {
    permit: Option<OwnedSemaphorePermit>,
    freed: Arc<Notify>,
}

impl Drop for ChildSlot {
    fn drop(&mut self) {
        // The slot is back before anyone is woken to take it.
        drop(self.permit.take());
        self.freed.notify_waiters();
    }
}

/// The children of one config.
struct Group {
    key: String,
    server: String,
    label: String,
    members: Vec<Arc<Member>>,
    starts: Starts,
}

/// A group's starts, apart from its members: what the lease decision reads besides
/// the members' loads.
#[derive(Debug, Default)]
struct Starts {
    /// Children being started (at most one at a time).
    starting: usize,
    /// An eviction made on this config's behalf is still closing its child.
    making_room: bool,
    /// Failures in a row (crashes, hangs, failed starts), reset by an answered call.
    failures: u32,
    /// No start before this, after a failure.
    retry_at: Option<Instant>,
}

impl Starts {
    /// How long the next start still waits out its backoff, if it does.
    fn restart_in_ms(&self, now: Instant) -> Option<u64> {
        self.retry_at
            .filter(|at| *at > now)
            .map(|at| (at - now).as_millis() as u64)
    }
}

struct Member {
    target: Target,
    connection: Connection,
    /// Held for as long as the member exists: its child's place in `max_total`.
    _slot: ChildSlot,
    /// Changed only under the state lock; atomic so leases can share the member.
    in_flight: AtomicUsize,
    last_used: Mutex<Instant>,
}

/// How a leased call ended, for the pool's bookkeeping.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The caller went away before the call ended: says nothing about the upstream.
    Abandoned,
    Answered,
    /// The session broke: the child died or the remote went away.
    Broke,
    /// No answer in time: the child may be hung.
    TimedOut,
}

/// One call's claim on a member; gives the call slot back when dropped.
struct Lease {
    pool: Pool,
    member: Arc<Member>,
    outcome: Outcome,
}

/// A child starting for a group, counted in its `starting` until the start ends, in
/// whichever way (the caller may go away mid-start).
struct Starting {
    pool: Pool,
    target: Target,
}

/// What the pool looks like now, for `/stats`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolStats {
    pub children: usize,
    pub max_total: usize,
    pub in_flight: usize,
    pub spawned: u64,
    pub spawn_failures: u64,
    pub crashed: u64,
    pub hung: u64,
    pub evicted: u64,
    pub reaped: u64,
    pub servers: Vec<ServerStats>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerStats {
    /// A hash of the whole config: equal keys share children.
    pub key: String,
    /// The name the config was last used under.
    pub server: String,
    /// The command, or the remote's origin (never args, env or headers: they may hold secrets).
    pub target: String,
    pub children: usize,
    pub starting: usize,
    pub in_flight: usize,
    pub consecutive_failures: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_in_ms: Option<u64>,
}

/// The upstream a call goes to: its name, its config, and who vouches for it.
#[derive(Debug, Clone, Copy)]
pub struct Upstream<'a> {
    pub name: &'a str,
    pub config: &'a ServerConfig,
    pub trust: Trust,
}

impl<'a> Upstream<'a> {
    /// A server a job describes: every allowlist applies.
    pub fn job(name: &'a str, config: &'a ServerConfig) -> Self {
        Self {
            name,
            config,
            trust: Trust::Job,
        }
    }
}

/// A server config's state, for `GET /servers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "state",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Health {
    /// The policy refuses it (the reason never holds a secret of the config).
    Refused { reason: String },
    /// Allowed; no connection open (none needed yet, or closed when idle).
    Idle,
    /// Its first connection is starting.
    Starting,
    /// Connections open and serving.
    Up { children: usize, in_flight: usize },
    /// Its last starts failed; the next waits out a backoff.
    Failing {
        consecutive_failures: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        restart_in_ms: Option<u64>,
    },
}

impl Pool {
    /// Fails only if the HTTP client for remote upstreams cannot be built (no TLS).
    pub fn new(policy: Policy, settings: PoolSettings) -> Result<Self, reqwest::Error> {
        // Redirects are not followed: the allowlist approved the host a job named,
        // not wherever that host points us (with the job's headers attached).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let slots = Arc::new(Semaphore::new(settings.max_total));
        Ok(Self(Arc::new(Inner {
            policy,
            settings,
            http,
            state: Mutex::new(State::default()),
            slots,
            freed: Arc::new(Notify::new()),
            closing: TaskTracker::new(),
            counters: Counters::default(),
            revisions: Revisions::new(),
        })))
    }

    /// Connects (or reuses a child) and returns the server's initialize result together
    /// with its tool list.
    pub async fn initialize(
        &self,
        upstream: Upstream<'_>,
        deadline: Option<Duration>,
    ) -> Result<(ServerPeerInfo, Vec<Tool>), UpstreamError> {
        let until = self.until(deadline);
        let (mut lease, secrets) = self.checkout(upstream, until).await?;
        let info = lease.connection().info();
        let tools = lease.settle(lease.connection().list_tools(remaining(until)).await);
        let tools = tools.map_err(|e| e.redacted(&secrets))?;
        let info = info.ok_or_else(|| UpstreamError::Handshake {
            server: upstream.name.to_owned(),
            reason: "the server sent no initialize result".into(),
        })?;
        Ok((info, tools))
    }

    pub async fn list_tools(
        &self,
        upstream: Upstream<'_>,
        deadline: Option<Duration>,
    ) -> Result<Vec<Tool>, UpstreamError> {
        let until = self.until(deadline);
        let (mut lease, secrets) = self.checkout(upstream, until).await?;
        let tools = lease.settle(lease.connection().list_tools(remaining(until)).await);
        tools.map_err(|e| e.redacted(&secrets))
    }

    /// Makes one `tools/call` round on the upstream (`params` as the caller gave them,
    /// with any input responses and request state of an earlier round); progress
    /// notifications go to `progress`. Secrets of the config are taken out of the answer.
    pub async fn call_tool(
        &self,
        upstream: Upstream<'_>,
        params: CallToolRequestParams,
        progress: Option<&ProgressSink>,
        deadline: Option<Duration>,
    ) -> Result<CallToolResponse, UpstreamError> {
        let until = self.until(deadline);
        let (mut lease, secrets) = self.checkout(upstream, until).await?;
        let result = lease
            .connection()
            .call_tool(params, progress, remaining(until));
        let answer = lease
            .settle(result.await)
            .map_err(|e| e.redacted(&secrets))?;
        match answer {
            CallToolResponse::Complete(result) => Ok(CallToolResponse::Complete(
                crate::redact::redact_result(&secrets, result),
            )),
            asked => {
                let asked = ServerResult::from(asked);
                match redacted_answer(upstream, &secrets, asked)? {
                    ServerResult::InputRequiredResult(asked) => {
                        Ok(CallToolResponse::InputRequired(asked))
                    }
                    _ => Err(withheld(upstream)),
                }
            }
        }
    }

    /// Calls `tool` for a caller that cannot be asked anything (a job, a meta-tool
    /// call): the rounds a 2026-07-28 tool asks for are answered here, as an MCP client
    /// with no user answers them ([`crate::unattended`]), within the one deadline. A tool
    /// that needs sampling fails with [`UpstreamError::InputRequired`].
    pub async fn call_tool_unattended(
        &self,
        upstream: Upstream<'_>,
        mut params: CallToolRequestParams,
        progress: Option<&ProgressSink>,
        deadline: Option<Duration>,
    ) -> Result<CallToolResult, UpstreamError> {
        let until = self.until(deadline);
        let needs_input = |params: &CallToolRequestParams| UpstreamError::InputRequired {
            server: upstream.name.to_owned(),
            tool: params.name.to_string(),
        };
        for _ in 0..rmcp::model::DEFAULT_MRTR_MAX_ROUNDS {
            let round = self.call_tool(upstream, params.clone(), progress, Some(remaining(until)));
            match round.await? {
                CallToolResponse::InputRequired(asked) => {
                    let answers = crate::unattended::answers(asked.input_requests)
                        .ok_or_else(|| needs_input(&params))?;
                    params.input_responses = Some(answers);
                    params.request_state = asked.request_state;
                }
                CallToolResponse::Complete(result) => return Ok(result),
                _ => break,
            }
        }
        Err(needs_input(&params))
    }

    /// Sends any other request (resources, prompts, completion) to the upstream and
    /// returns its answer, secrets of the config taken out.
    pub async fn request(
        &self,
        upstream: Upstream<'_>,
        request: ClientRequest,
        deadline: Option<Duration>,
    ) -> Result<ServerResult, UpstreamError> {
        let until = self.until(deadline);
        let (mut lease, secrets) = self.checkout(upstream, until).await?;
        let result = lease.connection().request(request, remaining(until));
        let answer = lease
            .settle(result.await)
            .map_err(|e| e.redacted(&secrets))?;
        redacted_answer(upstream, &secrets, answer)
    }

    /// Closes children idle longer than the idle timeout and drops dead ones, every
    /// `every`, until the future is dropped.
    pub async fn reap_idle(&self, every: Duration) {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            let idle = self.take_idle();
            if !idle.is_empty() {
                tracing::debug!(count = idle.len(), "closing idle upstream connections");
            }
            futures::future::join_all(idle.into_iter().map(|m| self.close(m))).await;
        }
    }

    /// Closes every child, waiting for each to exit (or be killed with its group),
    /// evicted ones still closing included.
    pub async fn shutdown(&self) {
        let all: Vec<Arc<Member>> = {
            let mut state = self.lock();
            state.closed = true;
            state
                .groups
                .drain()
                .flat_map(|(_, group)| group.members)
                .collect()
        };
        futures::future::join_all(all.into_iter().map(|m| self.close(m))).await;
        self.0.closing.close();
        self.0.closing.wait().await;
    }

    /// How `config` fares now, vouched for by `trust`: refused by the policy, or the
    /// state of its pooled connections. Starts nothing.
    pub async fn health(&self, config: &ServerConfig, trust: Trust) -> Health {
        let target = match self.0.policy.resolve_as(config, trust).await {
            Ok(resolved) => resolved.target,
            Err(e) => {
                return Health::Refused {
                    reason: e.redacted(&config.secrets()).to_string(),
                }
            }
        };
        let now = Instant::now();
        let state = self.lock();
        let Some(group) = state.groups.get(&target) else {
            return Health::Idle;
        };
        match (group.members.len(), group.starts.failures) {
            (0, 0) if group.starts.starting > 0 => Health::Starting,
            (0, 0) => Health::Idle,
            (0, failures) => Health::Failing {
                consecutive_failures: failures,
                restart_in_ms: group.starts.restart_in_ms(now),
            },
            (children, _) => Health::Up {
                children,
                in_flight: group.in_flight(),
            },
        }
    }

    pub fn stats(&self) -> PoolStats {
        let now = Instant::now();
        let state = self.lock();
        let servers: Vec<ServerStats> = state
            .groups
            .values()
            .map(|group| ServerStats {
                key: group.key.clone(),
                server: group.server.clone(),
                target: group.label.clone(),
                children: group.members.len(),
                starting: group.starts.starting,
                in_flight: group.in_flight(),
                consecutive_failures: group.starts.failures,
                restart_in_ms: group.starts.restart_in_ms(now),
            })
            .collect();
        let c = &self.0.counters;
        PoolStats {
            children: self.0.settings.max_total - self.0.slots.available_permits(),
            max_total: self.0.settings.max_total,
            in_flight: servers.iter().map(|s| s.in_flight).sum(),
            spawned: c.spawned.load(Ordering::Relaxed),
            spawn_failures: c.spawn_failures.load(Ordering::Relaxed),
            crashed: c.crashed.load(Ordering::Relaxed),
            hung: c.hung.load(Ordering::Relaxed),
            evicted: c.evicted.load(Ordering::Relaxed),
            reaped: c.reaped.load(Ordering::Relaxed),
            servers,
        }
    }

    /// Resolves `config` under the policy and leases a member for it.
    async fn checkout(
        &self,
        upstream: Upstream<'_>,
        until: Instant,
    ) -> Result<(Lease, Secrets), UpstreamError> {
        let Resolved { target, secrets } = self
            .0
            .policy
            .resolve_as(upstream.config, upstream.trust)
            .await?;
        let lease = self
            .lease(upstream.name, &target, &secrets, until)
            .await
            .map_err(|e| e.redacted(&secrets))?;
        Ok((lease, secrets))
    }

    /// A member of `target`'s group with a free call slot: an existing one, least
    /// loaded first, or a newly started one if the bounds allow; otherwise waits for a
    /// slot to free up, until `until`.
    async fn lease(
        &self,
        server: &str,
        target: &Target,
        secrets: &Secrets,
        until: Instant,
    ) -> Result<Lease, UpstreamError> {
        let settings = &self.0.settings;
        let asked_at = Instant::now();
        loop {
            let freed = self.0.freed.notified();
            let next = {
                let mut guard = self.lock();
                let state = &mut *guard;
                if state.closed {
                    return Err(UpstreamError::ShuttingDown);
                }
                let group = state
                    .groups
                    .entry(target.clone())
                    .or_insert_with(|| Group::new(server, target));
                group.server = server.to_owned();
                group.bury_dead(settings, &self.0.counters);
                let loads = group
                    .members
                    .iter()
                    .map(|m| m.in_flight.load(Ordering::Relaxed));
                let slot_free = self.0.slots.available_permits() > 0;
                match next_step(loads, &group.starts, settings, slot_free, Instant::now()) {
                    Step::Use(index) => {
                        let member = group.members[index].clone();
                        member.in_flight.fetch_add(1, Ordering::Relaxed);
                        return Ok(self.lease_of(member));
                    }
                    Step::Start => match self.0.slots.clone().try_acquire_owned() {
                        Ok(permit) => {
                            group.starts.starting += 1;
                            Next::Start(ChildSlot {
                                permit: Some(permit),
                                freed: self.0.freed.clone(),
                            })
                        }
                        // Slots are taken only under this lock: seen free, it is free.
                        Err(_) => Next::Wait,
                    },
                    Step::MakeRoom => {
                        self.evict_lru(state, target);
                        Next::Wait
                    }
                    Step::Wait => Next::Wait,
                    Step::Backoff(at, failures) => Next::RetryAt(at, failures),
                }
            };
            match next {
                // Boxed: starting is rare, and its future is large enough that carrying
                // it inline would make every call's future costly to move.
                Next::Start(slot) => {
                    return Box::pin(self.start(server, target, secrets, slot, until)).await
                }
                Next::RetryAt(at, failures) if at > until => {
                    return Err(UpstreamError::Restarting {
                        server: server.to_owned(),
                        failures,
                        retry_in: at - Instant::now(),
                    })
                }
                Next::RetryAt(at, _) => tokio::time::sleep_until(at).await,
                Next::Wait => {
                    if tokio::time::timeout_at(until, freed).await.is_err() {
                        return Err(UpstreamError::PoolBusy {
                            server: server.to_owned(),
                            after: asked_at.elapsed(),
                        });
                    }
                }
            }
        }
    }

    /// Starts a child for `target` in the slot `lease` took for it.
    async fn start(
        &self,
        server: &str,
        target: &Target,
        secrets: &Secrets,
        slot: ChildSlot,
        until: Instant,
    ) -> Result<Lease, UpstreamError> {
        let starting = Starting {
            pool: self.clone(),
            target: target.clone(),
        };
        let budget = remaining(until);
        let opened = Connection::open(
            server,
            target,
            secrets,
            &self.0.http,
            budget,
            &self.0.revisions,
        )
        .await;
        let mut guard = self.lock();
        let state = &mut *guard;
        let group = match state.groups.get_mut(target) {
            Some(group) if !state.closed => group,
            // mcp-server began shutting down while this child started.
            _ => {
                drop(guard);
                if let Ok(connection) = opened {
                    connection.kill();
                }
                return Err(UpstreamError::ShuttingDown);
            }
        };
        match opened {
            Ok(connection) => {
                let member = Arc::new(Member {
                    target: target.clone(),
                    connection,
                    _slot: slot,
                    in_flight: AtomicUsize::new(1),
                    last_used: Mutex::new(Instant::now()),
                });
                group.members.push(member.clone());
                drop(guard);
                drop(starting);
                // Calls waiting for this child can have it now.
                self.0.freed.notify_waiters();
                self.0.counters.spawned.fetch_add(1, Ordering::Relaxed);
                Ok(self.lease_of(member))
            }
            Err(e) => {
                // A start cut short by the caller's own nearly spent deadline says
                // nothing about the server: only a fair try counts against it.
                let fair_try = !(e.kind() == FailureKind::UpstreamTimeout && budget < FAIR_START);
                if e.kind() != FailureKind::Refused && fair_try {
                    group.starts.failed(&self.0.settings);
                    self.0
                        .counters
                        .spawn_failures
                        .fetch_add(1, Ordering::Relaxed);
                }
                drop(guard);
                tracing::warn!(server, error = %e, "upstream failed to start");
                drop(starting);
                Err(e)
            }
        }
    }

    /// Makes room in a full pool for `for_target` by closing the least recently used
    /// idle child of another config; nothing to do if every child is busy.
    fn evict_lru(&self, state: &mut State, for_target: &Target) {
        let lru = state
            .groups
            .iter()
            .filter(|(target, _)| *target != for_target)
            .flat_map(|(target, group)| group.members.iter().map(move |m| (target, m)))
            .filter(|(_, m)| m.in_flight.load(Ordering::Relaxed) == 0)
            .max_by_key(|(_, m)| m.idle_for())
            .map(|(target, m)| (target.clone(), m.clone()));
        let Some((target, member)) = lru else {
            return;
        };
        if let Some(group) = state.groups.get_mut(&target) {
            group.members.retain(|m| !Arc::ptr_eq(m, &member));
        }
        if let Some(group) = state.groups.get_mut(for_target) {
            group.starts.making_room = true;
        }
        self.0.counters.evicted.fetch_add(1, Ordering::Relaxed);
        let pool = self.clone();
        let for_target = for_target.clone();
        self.0.closing.spawn(async move {
            pool.close(member).await;
            if let Some(group) = pool.lock().groups.get_mut(&for_target) {
                group.starts.making_room = false;
            }
            pool.0.freed.notify_waiters();
        });
    }

    fn lease_of(&self, member: Arc<Member>) -> Lease {
        Lease {
            pool: self.clone(),
            member,
            outcome: Outcome::Abandoned,
        }
    }

    /// Gives a call slot back and acts on how the call ended.
    fn release(&self, member: &Arc<Member>, outcome: Outcome) {
        {
            let mut state = self.lock();
            member.in_flight.fetch_sub(1, Ordering::Relaxed);
            if let Ok(mut last_used) = member.last_used.lock() {
                *last_used = Instant::now();
            }
            match outcome {
                Outcome::Abandoned => {}
                Outcome::Answered => {
                    if let Some(group) = state.groups.get_mut(&member.target) {
                        group.starts = Starts {
                            failures: 0,
                            retry_at: None,
                            ..group.starts
                        };
                    }
                }
                Outcome::Broke => {
                    if self.retire(&mut state, member) {
                        self.0.counters.crashed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Outcome::TimedOut => {
                    let pool = self.clone();
                    let member = member.clone();
                    tokio::spawn(async move { pool.check_hung(member).await });
                }
            }
        }
        self.0.freed.notify_waiters();
    }

    /// After a timeout: a member that does not answer a ping is hung, and killed.
    async fn check_hung(&self, member: Arc<Member>) {
        if member.connection.answers_ping(PING_DEADLINE).await {
            return;
        }
        let retired = self.retire(&mut self.lock(), &member);
        if retired {
            self.0.counters.hung.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(server = %member.connection.server(), "upstream child hung (no answer to ping); killed");
            self.0.freed.notify_waiters();
        }
    }

    /// Takes a broken or hung member out of its group and kills its process group now.
    /// False if it had already left the group.
    fn retire(&self, state: &mut State, member: &Arc<Member>) -> bool {
        let Some(group) = state.groups.get_mut(&member.target) else {
            return false;
        };
        let before = group.members.len();
        group.members.retain(|m| !Arc::ptr_eq(m, member));
        if group.members.len() == before {
            return false;
        }
        group.starts.failed(&self.0.settings);
        member.connection.kill();
        true
    }

    /// Members idle past the timeout, taken out of their groups (holding their slots
    /// until closed); dead members and empty groups are dropped on the way.
    fn take_idle(&self) -> Vec<Arc<Member>> {
        let settings = &self.0.settings;
        let now = Instant::now();
        let mut state = self.lock();
        let mut idle = Vec::new();
        state.groups.retain(|_, group| {
            group.bury_dead(settings, &self.0.counters);
            let (expired, kept): (Vec<_>, Vec<_>) = group.members.drain(..).partition(|m| {
                m.in_flight.load(Ordering::Relaxed) == 0 && m.idle_for() >= settings.idle_timeout
            });
            group.members = kept;
            idle.extend(expired);
            !group.members.is_empty()
                || group.starts.starting > 0
                || group.starts.retry_at.is_some_and(|at| at > now)
        });
        drop(state);
        self.0
            .counters
            .reaped
            .fetch_add(idle.len() as u64, Ordering::Relaxed);
        idle
    }

    /// Closes a member that has left its group; its slot comes back with its last
    /// holder.
    async fn close(&self, member: Arc<Member>) {
        match Arc::try_unwrap(member) {
            Ok(member) => member.connection.close().await,
            // A call still holds it: kill now; the last holder's drop reaps the child.
            Err(member) => member.connection.kill(),
        }
    }

    fn until(&self, deadline: Option<Duration>) -> Instant {
        Instant::now() + deadline.unwrap_or(self.0.settings.default_deadline)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock in a way that leaves the map
        // half-updated: recover it rather than fail every later call.
        self.0
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What a call does next, as [`next_step`] decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Call through the member at this index.
    Use(usize),
    /// Start a child (a slot is free).
    Start,
    /// The pool is full: close another config's idle child, then wait.
    MakeRoom,
    /// Wait for a call slot, a child slot or a start to end.
    Wait,
    /// The config keeps failing: no start before this; its failures in a row.
    Backoff(Instant, u32),
}

/// What [`Pool::lease`] does once it has acted on a [`Step`] and let go of the lock.
enum Next {
    /// Start a child in this slot.
    Start(ChildSlot),
    /// Wait for something to free up.
    Wait,
    /// Wait for the restart backoff to end (or fail if it ends past the deadline).
    RetryAt(Instant, u32),
}

/// The lease decision: the least loaded member with a call slot free; else a start if
/// the config may have another child now and the pool a slot; else wait. `loads`: the
/// calls in flight on each member of the config.
fn next_step(
    loads: impl Iterator<Item = usize>,
    starts: &Starts,
    settings: &PoolSettings,
    slot_free: bool,
    now: Instant,
) -> Step {
    let mut members = 0;
    let mut least: Option<(usize, usize)> = None;
    for (index, calls) in loads.enumerate() {
        members += 1;
        if calls < settings.max_calls_per_child && least.is_none_or(|(_, fewest)| calls < fewest) {
            least = Some((index, calls));
        }
    }
    if let Some((index, _)) = least {
        return Step::Use(index);
    }
    // One start at a time per config: a burst of calls fills the child that is
    // starting before another is started, so children track the load (calls ÷
    // MCP_POOL_MAX_CALLS_PER_CHILD) rather than the burst.
    if members + starts.starting >= settings.max_per_server || starts.starting > 0 {
        return Step::Wait;
    }
    if let Some(at) = starts.retry_at.filter(|at| *at > now) {
        return if members == 0 {
            Step::Backoff(at, starts.failures)
        } else {
            Step::Wait
        };
    }
    match (slot_free, starts.making_room) {
        (true, _) => Step::Start,
        // One eviction at a time per config, however many calls wait.
        (false, true) => Step::Wait,
        (false, false) => Step::MakeRoom,
    }
}

impl Group {
    fn new(server: &str, target: &Target) -> Self {
        let mut hasher = std::hash::DefaultHasher::new();
        target.hash(&mut hasher);
        Self {
            key: format!("{:016x}", hasher.finish()),
            server: server.to_owned(),
            label: target.label(),
            members: Vec::new(),
            starts: Starts::default(),
        }
    }

    fn in_flight(&self) -> usize {
        self.members
            .iter()
            .map(|m| m.in_flight.load(Ordering::Relaxed))
            .sum()
    }

    /// Drops members whose session has ended (the child exited on its own); each counts
    /// as a failure of the config. Their slots come back with their last holders.
    fn bury_dead(&mut self, settings: &PoolSettings, counters: &Counters) {
        let before = self.members.len();
        self.members.retain(|m| {
            let closed = m.connection.is_closed();
            if closed {
                m.connection.kill();
            }
            !closed
        });
        for _ in self.members.len()..before {
            self.starts.failed(settings);
            counters.crashed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Starts {
    /// Records a failure: the next start waits `restart_backoff`, doubled per failure
    /// in a row, at most `restart_backoff_max`.
    fn failed(&mut self, settings: &PoolSettings) {
        self.failures = self.failures.saturating_add(1);
        let doublings = self.failures.saturating_sub(1).min(20);
        let wait = settings
            .restart_backoff
            .saturating_mul(1 << doublings)
            .min(settings.restart_backoff_max);
        self.retry_at = Some(Instant::now() + wait);
    }
}

impl Member {
    fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }
}

impl Lease {
    fn connection(&self) -> &Connection {
        &self.member.connection
    }

    /// Notes how the call ended, for [`Pool::release`] when the lease drops.
    fn settle<T>(&mut self, result: Result<T, UpstreamError>) -> Result<T, UpstreamError> {
        self.outcome = match &result {
            Err(e) if e.kind() == FailureKind::UpstreamUnavailable => Outcome::Broke,
            Err(e) if e.kind() == FailureKind::UpstreamTimeout => Outcome::TimedOut,
            _ => Outcome::Answered,
        };
        result
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool.release(&self.member, self.outcome);
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        {
            let mut state = self.pool.lock();
            if let Some(group) = state.groups.get_mut(&self.target) {
                group.starts.starting = group.starts.starting.saturating_sub(1);
            }
        }
        // A call that waited for this start may now start one of its own.
        self.pool.0.freed.notify_waiters();
    }
}

/// `answer` with the config's secrets taken out of its strings, or withheld if one stood
/// where the protocol needs a fixed word.
fn redacted_answer(
    upstream: Upstream<'_>,
    secrets: &Secrets,
    answer: ServerResult,
) -> Result<ServerResult, UpstreamError> {
    crate::redact::redact_answer(secrets, answer).ok_or_else(|| withheld(upstream))
}

fn withheld(upstream: Upstream<'_>) -> UpstreamError {
    UpstreamError::Rejected {
        server: upstream.name.to_owned(),
        code: rmcp::model::ErrorCode::INTERNAL_ERROR.0,
        message: "its answer held a secret of its config where the protocol needs a fixed \
                  value; withheld"
            .into(),
        data: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PoolSettings {
        PoolSettings {
            max_per_server: 3,
            max_total: 10,
            max_calls_per_child: 4,
            idle_timeout: Duration::from_secs(60),
            default_deadline: Duration::from_secs(30),
            restart_backoff: Duration::from_millis(500),
            restart_backoff_max: Duration::from_secs(30),
        }
    }

    fn step(loads: &[usize], starts: &Starts, slot_free: bool, now: Instant) -> Step {
        next_step(loads.iter().copied(), starts, &settings(), slot_free, now)
    }

    #[test]
    fn a_call_goes_to_the_least_loaded_member_with_a_free_call_slot() {
        let now = Instant::now();
        let idle = Starts::default();
        assert_eq!(step(&[3, 1, 2], &idle, true, now), Step::Use(1));
        assert_eq!(
            step(&[2, 2], &idle, true, now),
            Step::Use(0),
            "ties: the first"
        );
        assert_eq!(
            step(&[4, 3], &idle, false, now),
            Step::Use(1),
            "full ones skipped"
        );
    }

    #[test]
    fn a_child_starts_only_when_every_member_is_full_and_the_bounds_allow() {
        let now = Instant::now();
        let idle = Starts::default();
        assert_eq!(step(&[], &idle, true, now), Step::Start);
        assert_eq!(step(&[4, 4], &idle, true, now), Step::Start);
        assert_eq!(
            step(&[4, 4, 4], &idle, true, now),
            Step::Wait,
            "MCP_POOL_MAX_PER_SERVER children"
        );
        let starting = Starts {
            starting: 1,
            ..Starts::default()
        };
        assert_eq!(
            step(&[4], &starting, true, now),
            Step::Wait,
            "one start at a time: a burst waits for the child being started"
        );
    }

    #[test]
    fn a_full_pool_makes_room_once_then_waits() {
        let now = Instant::now();
        assert_eq!(step(&[], &Starts::default(), false, now), Step::MakeRoom);
        let evicting = Starts {
            making_room: true,
            ..Starts::default()
        };
        assert_eq!(step(&[], &evicting, false, now), Step::Wait);
        assert_eq!(step(&[], &evicting, true, now), Step::Start);
    }

    #[test]
    fn a_failing_config_backs_off_before_its_next_start() {
        let now = Instant::now();
        let at = now + Duration::from_secs(2);
        let failing = Starts {
            failures: 3,
            retry_at: Some(at),
            ..Starts::default()
        };
        assert_eq!(step(&[], &failing, true, now), Step::Backoff(at, 3));
        assert_eq!(
            step(&[4], &failing, true, now),
            Step::Wait,
            "a member still serves: wait for it rather than fail"
        );
        assert_eq!(step(&[1], &failing, true, now), Step::Use(0));
        assert_eq!(
            step(&[], &failing, true, at + Duration::from_millis(1)),
            Step::Start,
            "the backoff has passed"
        );
    }

    #[test]
    fn backoff_doubles_per_failure_up_to_its_maximum() {
        let settings = settings();
        let mut starts = Starts::default();
        for expected_ms in [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000] {
            let before = Instant::now();
            starts.failed(&settings);
            let wait = starts.retry_at.expect("set") - before;
            let expected = Duration::from_millis(expected_ms);
            assert!(
                wait >= expected && wait < expected + Duration::from_secs(1),
                "{wait:?} after {} failures",
                starts.failures
            );
        }
        assert_eq!(starts.failures, 9);
    }
}
