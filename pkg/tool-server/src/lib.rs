//! mcp-server: the stateless MCP tool server that runs what jobs describe.
//!
//! - [`config`]: settings from the environment, checked at start.
//! - [`auth`]: the API-key gate in front of every endpoint but `/health`.
//! - [`tools`]: the MCP tools `server_initialize`, `list_tools` and `call_tool`.
//! - [`app`]: the HTTP application — `/mcp` (Streamable HTTP), `/health` — and its lifecycle.

pub mod app;
pub mod auth;
pub mod config;
pub mod tools;

pub use app::{router, serve};
pub use config::{ConfigError, ServerSettings};
