//! Election: which dispatcher is active. Every dispatcher joins one group on the
//! one-partition schedules topic; the member that owns the partition is active. A
//! member that dies loses it after its session times out, and another takes over.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::ClientContext;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Membership {
    Assigned,
    Revoked,
}

/// Hears, on the polling task, when the schedules partition comes and goes.
pub(super) struct Election {
    pub(super) events: mpsc::UnboundedSender<Membership>,
}

impl ClientContext for Election {}

impl ConsumerContext for Election {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            if partitions.count() > 0 {
                let _ = self.events.send(Membership::Revoked);
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            if partitions.count() > 0 {
                let _ = self.events.send(Membership::Assigned);
            }
        }
    }
}

/// The last of the membership events queued after `event`: an assignment already
/// revoked again must not start a term (it would fence the real owner).
pub(super) fn latest(
    mut event: Membership,
    membership: &mut mpsc::UnboundedReceiver<Membership>,
) -> Membership {
    while let Ok(next) = membership.try_recv() {
        event = next;
    }
    event
}

/// A consumer error (e.g. the topic is missing) is logged and waited out, not spun on.
pub(super) async fn pause_on_error(error: Option<KafkaError>) {
    if let Some(e) = error {
        tracing::debug!(error = %e, "scheduler election consumer");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_queued_membership_counts() {
        let (events, mut membership) = mpsc::unbounded_channel();
        events.send(Membership::Revoked).unwrap();
        assert_eq!(
            latest(Membership::Assigned, &mut membership),
            Membership::Revoked,
            "an assignment revoked again before it was seen starts no term"
        );
        assert_eq!(
            latest(Membership::Assigned, &mut membership),
            Membership::Assigned
        );
    }
}
