//! mcp-server: the stateless MCP tool server that runs what jobs describe.
//!
//! - [`config`]: settings from the environment, checked at start.
//! - [`auth`]: the API-key gate in front of every endpoint but `/health` and `/ready`.
//! - [`tools`]: the MCP tools `server_initialize`, `list_tools` and `call_tool`.
//! - [`gateway`]: the same tools over REST, Server-Sent Events and WebSocket.
//! - [`named`]: the operator's named servers (`MCP_SERVERS_FILE`), reloaded live, each
//!   relayed at `/servers/{name}/mcp`.
//! - [`tasks`]: durable MCP tasks: a tool call becomes a job on Kafka, which any replica
//!   answers for.
//! - [`caller`]: what a relayed call owes its caller: progress, and stopping when the
//!   caller cancels or goes away.
//! - [`stats`]: request counts by tool and outcome, for `/stats`.
//! - [`metrics`]: the Prometheus metrics behind `/metrics`.
//! - [`trace`]: the spans of a tool call, continuing the caller's trace.
//! - [`app`]: the HTTP application — `/mcp`, the gateway, `/stats`, `/health`, `/ready` —
//!   and its lifecycle.

pub mod app;
pub mod auth;
pub mod caller;
pub mod config;
pub mod gateway;
pub mod metrics;
pub mod named;
pub mod stats;
pub mod tasks;
pub mod tools;
pub mod trace;

pub use app::{guarded, mcp_service, no_delay, serve};
pub use config::{ConfigError, ServerSettings};
