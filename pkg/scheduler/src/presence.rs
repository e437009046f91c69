//! Whether any dispatcher is active. With none (every worker runs with
//! `SCHEDULER_ENABLED=false`, or all dispatchers are down) schedules do not fire and
//! delayed jobs wait for ever, and nothing else would say so: a published job is
//! accepted, a schedule lists its next time. The active dispatcher is the member of the
//! dispatchers' group that owns the schedules partition; the group's members are read
//! with the classic DescribeGroups (a group on the consumer protocol does not list
//! them there: then it cannot be told).

use std::time::Duration;

use backon::{BlockingRetryable, ConstantBuilder};
use mcp_jobs_kafka::group;
use mcp_jobs_kafka::KafkaSettings;
use mcp_jobs_runtime::Readiness;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// How often a worker without a dispatcher looks.
pub const LOOK_EVERY: Duration = Duration::from_secs(10);

/// What the dispatchers' group says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// This member (its client id, the worker's id) dispatches.
    Active(String),
    /// No member owns the schedules partition.
    NoneActive,
    /// It cannot be told, and why.
    Unknown(String),
}

/// The dispatchers' group of a deployment.
pub fn election_group(settings: &KafkaSettings) -> String {
    format!("{}.scheduler", settings.group)
}

/// Looks the active dispatcher up, with any consumer. A coordinator that does not
/// answer at once (one just elected, or loading) is asked twice more.
pub fn look<C: ConsumerContext>(consumer: &impl Consumer<C>, settings: &KafkaSettings) -> Presence {
    if settings.consumer_protocol() {
        return Presence::Unknown(
            "the dispatchers' group runs the consumer protocol, whose members DescribeGroups does not list".into(),
        );
    }
    let group = election_group(settings);
    let members = (|| group::members(consumer, &group, Duration::from_secs(5)))
        .retry(
            ConstantBuilder::default()
                .with_delay(Duration::from_millis(500))
                .with_max_times(2),
        )
        .call();
    match members {
        Ok(members) => members
            .into_iter()
            .find(|m| !m.partitions.is_empty())
            .map_or(Presence::NoneActive, |m| Presence::Active(m.client_id)),
        Err(e) => Presence::Unknown(e.to_string()),
    }
}

/// A client to look with: it joins no group (the id only names it to the broker; the
/// consumer protocol wants one).
fn looker(settings: &KafkaSettings) -> Result<BaseConsumer, rdkafka::error::KafkaError> {
    settings
        .consumer_config(&[("group.id", "kafka-worker-presence")])
        .create()
}

/// Looks the active dispatcher up with a consumer of its own (blocking).
pub fn look_up(settings: &KafkaSettings) -> Presence {
    match looker(settings) {
        Ok(consumer) => look(&consumer, settings),
        Err(e) => Presence::Unknown(e.to_string()),
    }
}

impl Presence {
    /// What to tell an operator when no dispatcher is active.
    pub fn warning(&self, settings: &KafkaSettings) -> Option<String> {
        (*self == Presence::NoneActive).then(|| {
            format!(
                "no active dispatcher in group {}: schedules do not fire and delayed jobs wait \
                 until one runs (`kafka-worker run` without SCHEDULER_ENABLED=false, or `kafka-worker scheduler`)",
                election_group(settings)
            )
        })
    }

    /// For `/ready`: the active dispatcher, or that there is none.
    pub fn describe(&self, settings: &KafkaSettings) -> String {
        match self {
            Presence::Active(member) => format!("active: {member}"),
            Presence::NoneActive => self.warning(settings).unwrap_or_default(),
            Presence::Unknown(why) => format!("active dispatcher unknown ({why})"),
        }
    }
}

/// For a worker that runs no dispatcher: says in `/ready` and in
/// `mcp_jobs_scheduler_dispatcher_seen` whether another one is active, every
/// [`LOOK_EVERY`], and warns in the log when none is.
pub async fn watch(settings: KafkaSettings, ready: Readiness, stop: CancellationToken) {
    // One client for every look, not a new one each time.
    let consumer = match looker(&settings) {
        Ok(consumer) => consumer,
        Err(e) => {
            tracing::warn!(error = %e, "cannot look for an active dispatcher");
            return;
        }
    };
    let mut every = tokio::time::interval(LOOK_EVERY);
    let mut warned = false;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => return,
        }
        let presence = tokio::task::block_in_place(|| look(&consumer, &settings));
        ready.set_scheduler(format!(
            "off here (SCHEDULER_ENABLED=false); {}",
            presence.describe(&settings)
        ));
        record(&presence);
        match presence.warning(&settings) {
            Some(warning) if !warned => {
                tracing::warn!("{warning}");
                warned = true;
            }
            Some(_) => {}
            None => warned = false,
        }
    }
}

/// `mcp_jobs_scheduler_dispatcher_seen`: 1 when an active dispatcher is seen, 0 when
/// none is (left as it was when it cannot be told).
pub fn record(presence: &Presence) {
    match presence {
        Presence::Active(_) => metrics::dispatcher_seen(true),
        Presence::NoneActive => metrics::dispatcher_seen(false),
        Presence::Unknown(_) => {}
    }
}
