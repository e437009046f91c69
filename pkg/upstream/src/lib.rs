//! Connections from mcp-server to the MCP servers that jobs describe.
//!
//! - [`Policy`]: what a job may ask for — allowed commands, the env-file directory,
//!   allowed remote hosts — checked before anything is spawned or dialled.
//! - [`Target`]: a server config resolved under the policy (env file read, env built);
//!   two jobs describing the same target share one connection.
//! - [`Connector`]: the bounded cache of live connections (stdio children in their own
//!   process group, or remote Streamable HTTP sessions) with idle reaping and shutdown.
//! - [`UpstreamError`]: why a server could not be reached or used, with a [`FailureKind`]
//!   that tells callers whether retrying can help.

mod connection;
mod connector;
mod error;
mod policy;

pub use connector::{Connector, ConnectorSettings};
pub use error::{FailureKind, UpstreamError};
pub use policy::{Allowlist, Policy, Target};
pub use rmcp::model::{CallToolResult, ServerPeerInfo, Tool};
