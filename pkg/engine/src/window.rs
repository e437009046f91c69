//! The in-flight window: which received messages may start, and how far each
//! partition may be committed.
//!
//! Commits must never pass a message without a durable outcome, yet jobs finish out
//! of order. So each partition keeps the offsets it holds in order, and only the
//! contiguous finished prefix is released for commit — offsets are never assumed to
//! be consecutive (compaction and transactions leave gaps). Messages sharing a key run
//! one at a time in arrival order; keyless ones run as soon as there is room.
//!
//! A partition taken away (rebalance) is forgotten at once; every job carries its
//! partition's epoch, so a late completion from before the loss releases nothing,
//! even if the partition has come back since.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;

use mcp_jobs_telemetry::propagation::Context;

/// One received message, as the source hands it over.
#[derive(Debug, Clone)]
pub struct Delivery<P> {
    pub partition: P,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    /// The message's own headers, kept for its dead letter (a replay restores them).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The producer's trace context (W3C headers on the message), or an empty one.
    pub trace: Context,
}

/// A message allowed to start; hand it back to [`Window::finish`] when its outcome is durable.
#[derive(Debug)]
pub struct Ticket<P> {
    pub delivery: Delivery<P>,
    epoch: u64,
}

struct PartitionState {
    epoch: u64,
    /// Every held offset, in order, and whether its outcome is durable.
    offsets: BTreeMap<i64, bool>,
    /// Keys with a message running; each queues the messages waiting behind it.
    busy_keys: HashMap<Vec<u8>, VecDeque<i64>>,
}

pub struct Window<P> {
    concurrency: usize,
    partitions: HashMap<P, PartitionState>,
    /// Held messages not yet started, by (partition, offset): ready ones in `ready`,
    /// key-blocked ones named in their key's queue.
    waiting: HashMap<(P, i64), Delivery<P>>,
    ready: VecDeque<(P, i64)>,
    running: usize,
    held: usize,
    next_epoch: u64,
}

impl<P: Clone + Eq + Hash> Window<P> {
    /// At most `concurrency` jobs run at once; up to as many again wait, ready to start
    /// the moment a slot frees, so the window never runs dry between fetches.
    pub fn new(concurrency: usize) -> Self {
        Self {
            concurrency: concurrency.max(1),
            partitions: HashMap::new(),
            waiting: HashMap::new(),
            ready: VecDeque::new(),
            running: 0,
            held: 0,
            next_epoch: 0,
        }
    }

    /// Messages received and not yet finished (running or waiting).
    pub fn held(&self) -> usize {
        self.held
    }

    pub fn running(&self) -> usize {
        self.running
    }

    /// True when the source should stop fetching: the window holds all it may.
    pub fn is_full(&self) -> bool {
        self.held >= 2 * self.concurrency
    }

    /// True when a paused source may fetch again: at most the running jobs' worth held,
    /// so resuming does not flap on every single completion.
    pub fn has_room(&self) -> bool {
        self.held <= self.concurrency
    }

    /// Takes a received message into the window.
    pub fn admit(&mut self, delivery: Delivery<P>) {
        let next_epoch = &mut self.next_epoch;
        let state = self
            .partitions
            .entry(delivery.partition.clone())
            .or_insert_with(|| {
                *next_epoch += 1;
                PartitionState {
                    epoch: *next_epoch,
                    offsets: BTreeMap::new(),
                    busy_keys: HashMap::new(),
                }
            });
        if state.offsets.insert(delivery.offset, false).is_some() {
            // Redelivered while still held (e.g. after a seek): the held copy will do.
            return;
        }
        self.held += 1;
        let slot = (delivery.partition.clone(), delivery.offset);
        match &delivery.key {
            Some(key) => match state.busy_keys.get_mut(key) {
                Some(queue) => queue.push_back(delivery.offset),
                None => {
                    state.busy_keys.insert(key.clone(), VecDeque::new());
                    self.ready.push_back(slot.clone());
                }
            },
            None => self.ready.push_back(slot.clone()),
        }
        self.waiting.insert(slot, delivery);
    }

    /// The next message to run, if a slot is free and one is ready.
    pub fn next_to_start(&mut self) -> Option<Ticket<P>> {
        if self.running >= self.concurrency {
            return None;
        }
        while let Some(slot) = self.ready.pop_front() {
            let epoch = self.partitions.get(&slot.0).map(|state| state.epoch);
            if let (Some(delivery), Some(epoch)) = (self.waiting.remove(&slot), epoch) {
                self.running += 1;
                return Some(Ticket { delivery, epoch });
            }
        }
        None
    }

    /// Records that a started job's work is over (its outcome is being written, or it
    /// was abandoned): its slot goes to the next message, while the message itself
    /// stays held until [`Window::finish`]. Writing outcomes thus never idles a slot.
    pub fn ran(&mut self) {
        self.running = self.running.saturating_sub(1);
    }

    /// Records that `ticket`'s outcome is durable (or that it was abandoned, when its
    /// partition was revoked). Returns the highest offset of its partition that may now
    /// be committed (every held offset at or below it is finished), if that advanced.
    /// Its key's next message may start only now, so outcomes of a key land in order.
    pub fn finish(&mut self, ticket: &Ticket<P>) -> Option<i64> {
        let delivery = &ticket.delivery;
        let state = self
            .partitions
            .get_mut(&delivery.partition)
            .filter(|state| state.epoch == ticket.epoch)?;
        match state.offsets.get_mut(&delivery.offset) {
            Some(done) if !*done => *done = true,
            _ => return None,
        }
        self.held = self.held.saturating_sub(1);
        if let Some(key) = &delivery.key {
            let next = state.busy_keys.get_mut(key).and_then(VecDeque::pop_front);
            match next {
                Some(offset) => self.ready.push_back((delivery.partition.clone(), offset)),
                None => {
                    state.busy_keys.remove(key);
                }
            }
        }
        let mut committable = None;
        while let Some(entry) = state.offsets.first_entry() {
            if !*entry.get() {
                break;
            }
            committable = Some(*entry.key());
            entry.remove();
        }
        committable
    }

    /// Forgets `partition`: its waiting messages are dropped and its running jobs'
    /// completions will release nothing. Their offsets stay uncommitted, so the
    /// partition's next owner runs them.
    pub fn revoke(&mut self, partition: &P) {
        let Some(state) = self.partitions.remove(partition) else {
            return;
        };
        let unfinished = state.offsets.values().filter(|done| !**done).count();
        self.held = self.held.saturating_sub(unfinished);
        self.waiting.retain(|(p, _), _| p != partition);
        self.ready.retain(|(p, _)| p != partition);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(partition: i32, offset: i64, key: Option<&str>) -> Delivery<i32> {
        Delivery {
            partition,
            offset,
            key: key.map(|k| k.as_bytes().to_vec()),
            payload: Vec::new(),
            headers: Vec::new(),
            trace: Context::new(),
        }
    }

    fn start_all(window: &mut Window<i32>) -> Vec<Ticket<i32>> {
        std::iter::from_fn(|| window.next_to_start()).collect()
    }

    #[test]
    fn commits_only_the_contiguous_finished_prefix_across_gaps() {
        let mut window = Window::new(8);
        for offset in [3, 5, 9] {
            window.admit(delivery(0, offset, None));
        }
        let tickets = start_all(&mut window);
        assert_eq!(tickets.len(), 3);
        assert_eq!(window.finish(&tickets[2]), None, "9 done, 3 and 5 not");
        assert_eq!(window.finish(&tickets[0]), Some(3));
        assert_eq!(window.finish(&tickets[1]), Some(9), "5 releases 9 too");
        assert_eq!(window.held(), 0);
    }

    #[test]
    fn same_key_runs_one_at_a_time_in_order_while_others_run_freely() {
        let mut window = Window::new(8);
        window.admit(delivery(0, 0, Some("a")));
        window.admit(delivery(0, 1, Some("a")));
        window.admit(delivery(0, 2, None));
        window.admit(delivery(0, 3, Some("b")));
        window.admit(delivery(0, 4, Some("a")));
        let started: Vec<i64> = start_all(&mut window)
            .iter()
            .map(|t| t.delivery.offset)
            .collect();
        assert_eq!(started, [0, 2, 3]);
        let first = Ticket {
            delivery: delivery(0, 0, Some("a")),
            epoch: 1,
        };
        assert_eq!(window.finish(&first), Some(0));
        let next = start_all(&mut window);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].delivery.offset, 1, "a's next in arrival order");
        assert_eq!(window.finish(&next[0]), Some(1));
        assert_eq!(start_all(&mut window)[0].delivery.offset, 4);
    }

    #[test]
    fn concurrency_bounds_running_and_fullness_bounds_holding() {
        let mut window = Window::new(2);
        for offset in 0..4 {
            window.admit(delivery(0, offset, None));
        }
        assert!(window.is_full());
        let tickets = start_all(&mut window);
        assert_eq!(tickets.len(), 2);
        assert_eq!(window.running(), 2);
        window.ran();
        assert_eq!(
            window.running(),
            1,
            "a slot frees while the outcome is written"
        );
        assert!(
            window.is_full(),
            "the message is held until its outcome is durable"
        );
        window.finish(&tickets[0]);
        assert!(!window.is_full());
        assert!(!window.has_room(), "3 held, 2 may run");
        window.ran();
        window.finish(&tickets[1]);
        assert!(window.has_room());
    }

    #[test]
    fn late_completion_after_revoke_releases_nothing_even_when_partition_returns() {
        let mut window = Window::new(4);
        window.admit(delivery(1, 10, None));
        window.admit(delivery(1, 11, None));
        let stale = start_all(&mut window);
        window.revoke(&1);
        assert_eq!(window.held(), 0);
        window.admit(delivery(1, 10, None));
        assert_eq!(
            window.running(),
            2,
            "abandoned jobs hold slots until they stop"
        );
        window.ran();
        assert_eq!(window.finish(&stale[0]), None, "old epoch");
        let fresh = start_all(&mut window);
        assert_eq!(window.finish(&fresh[0]), Some(10));
    }
}
