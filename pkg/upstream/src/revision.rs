//! Which protocol revision each server config speaks. Learned on a config's first
//! connection and remembered, so the probe that finds it out (`server/discover`, and
//! `initialize` for a server that does not know it) is paid once per config, not per
//! child or per call.

use quick_cache::sync::Cache;

use crate::policy::Target;

/// How a session with an upstream begins, by the revision the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// 2026-07-28: `server/discover`, then self-contained requests with no session.
    Stateless,
    /// 2025-11-25 and older: the `initialize` handshake opens a session.
    Handshake,
}

/// Configs remembered at most: jobs may describe any number of distinct servers, and
/// forgetting one only costs it one more probe.
const REMEMBERED: usize = 10_000;

pub(crate) struct Revisions(Cache<Target, Lifecycle>);

impl Revisions {
    pub(crate) fn new() -> Self {
        Self(Cache::new(REMEMBERED))
    }

    pub(crate) fn of(&self, target: &Target) -> Option<Lifecycle> {
        self.0.get(target)
    }

    pub(crate) fn remember(&self, target: &Target, lifecycle: Lifecycle) {
        self.0.insert(target.clone(), lifecycle);
    }

    /// For a server that refused the lifecycle it spoke before (it was upgraded or
    /// replaced): its next connection probes again.
    pub(crate) fn forget(&self, target: &Target) {
        self.0.remove(target);
    }
}
