//! Connections from mcp-server to the MCP servers that jobs describe.
//!
//! - [`Policy`]: what a job may ask for — allowed commands and their pinned arguments,
//!   the variables it may set, the directories of `envFile` and `cwd`, allowed remote
//!   hosts — checked before anything is spawned or dialled.
//! - [`Target`]: a server config resolved under the policy (env file read, env built);
//!   equal targets share children, any difference gets its own.
//! - [`Pool`]: the supervised pool of live connections — stdio children in their own
//!   process group, remote Streamable HTTP or legacy SSE sessions — bounded, shared by
//!   concurrent calls, reaped when idle, replaced with backoff when they crash or hang.
//! - [`relay_progress`]: upstream progress notifications, relayed hop by hop to the caller.
//! - [`Secrets`]: the values of a config that must never reach a log or a result.
//! - [`UpstreamError`]: why a server could not be reached or used, with a [`FailureKind`]
//!   that tells callers whether retrying can help.

mod cause;
mod connection;
mod error;
mod legacy_sse;
mod policy;
mod pool;
mod progress;
mod redact;
mod revision;
mod unattended;

pub use error::UpstreamError;
pub use mcp_jobs_contract::FailureKind;
pub use mcp_jobs_contract::{Secrets, REDACTED};
pub use policy::{
    Allowlist, CommandAllowlist, CommandRule, EnvRules, Policy, Resolved, Target, Trust,
    CODE_LOADING_ENV,
};
pub use pool::{Health, Pool, PoolSettings, PoolStats, ServerStats, Upstream};
pub use progress::{relay_progress, Progress, ProgressSink};
pub use redact::{redact_answer, redact_result};
pub use rmcp::model::{CallToolResult, ServerPeerInfo, Tool};

/// What is left of a deadline `until`: none once it has passed.
fn remaining(until: tokio::time::Instant) -> std::time::Duration {
    until.saturating_duration_since(tokio::time::Instant::now())
}
