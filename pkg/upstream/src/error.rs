//! Why an upstream MCP server could not be used.

use std::time::Duration;

use mcp_jobs_contract::{FailureKind, Secrets};

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error(
        "command {command:?} is not allowed: add it to MCP_ALLOWED_COMMANDS to let jobs run it"
    )]
    CommandNotAllowed { command: String },

    #[error("command {command:?} is allowed only with pinned leading arguments ({}): these arguments do not start with them", allowed.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", "))]
    ArgumentsNotPinned {
        command: String,
        allowed: Vec<String>,
    },

    #[error("argument {index} of {command:?} holds a NUL byte, which no process can be given")]
    NulInArgument { command: String, index: usize },

    #[error("env variable {name:?}{origin} is refused: {reason}")]
    EnvNotAllowed {
        name: String,
        /// Where it was set: empty for `env`, ` (from envFile "x")` for a file.
        origin: String,
        reason: String,
    },

    #[error("cwd {cwd:?} is refused: MCP_WORK_DIR is not set, so a job may not choose its working directory")]
    WorkDirNotConfigured { cwd: String },

    #[error("cwd {cwd:?} is outside MCP_WORK_DIR")]
    CwdOutsideDir { cwd: String },

    #[error("cwd {cwd:?} cannot be used: {reason}")]
    CwdUnusable { cwd: String, reason: String },

    #[error("envFile {path:?} is refused: MCP_ENV_DIR is not set, so no env file may be read")]
    EnvDirNotConfigured { path: String },

    #[error("envFile {path:?} is outside MCP_ENV_DIR")]
    EnvFileOutsideDir { path: String },

    #[error("envFile {path:?} line {line} expands a variable ($NAME or ${{NAME}}), which would read mcp-server's own environment: put the value in single quotes or escape the $")]
    EnvFileSubstitutes { path: String, line: usize },

    #[error("envFile {path:?} cannot be read: {reason}")]
    EnvFileUnreadable { path: String, reason: String },

    #[error("remote host {host:?} is not allowed: add it to MCP_ALLOWED_REMOTE_HOSTS to let jobs reach it")]
    HostNotAllowed { host: String },

    #[error(
        "the arguments for tool {tool:?} are {size} bytes; MCP_MAX_ARGUMENT_BYTES allows {limit}"
    )]
    ArgumentsTooLarge {
        tool: String,
        size: usize,
        limit: usize,
    },

    #[error("invalid remote server config: {reason}")]
    InvalidRemote { reason: String },

    #[error("could not start {command:?}: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },

    #[error("MCP handshake with server {server:?} failed: {reason}")]
    Handshake { server: String, reason: String },

    #[error("server {server:?} speaks no MCP revision mcp-server speaks (2026-07-28 through server/discover, older ones through initialize): {reason}")]
    Unsupported { server: String, reason: String },

    #[error("server {server:?} did not answer within {after:?}")]
    Timeout { server: String, after: Duration },

    #[error("server {server:?} went away mid-call ({reason}); it is replaced for the next call")]
    Disconnected { server: String, reason: String },

    #[error(
        "server {server:?} failed {failures} times in a row; the next start is in {retry_in:?}"
    )]
    Restarting {
        server: String,
        failures: u32,
        retry_in: Duration,
    },

    #[error("mcp-server is shutting down; the call was not started")]
    ShuttingDown,

    #[error("server {server:?} is not described (no config) and not in mcp-server's servers file (MCP_SERVERS_FILE)")]
    UnknownServer { server: String },

    #[error("no free child for server {server:?} within {after:?}: every child is at MCP_POOL_MAX_CALLS_PER_CHILD and the pool at its MCP_POOL_MAX_PER_SERVER / MCP_POOL_MAX_TOTAL bound")]
    PoolBusy { server: String, after: Duration },

    #[error("server {server:?} refused the request: {message}")]
    Rejected {
        server: String,
        /// The JSON-RPC error code it answered with (a relay passes it on).
        code: i32,
        message: String,
        /// The error's `data` (e.g. the capabilities a tool requires), passed on too.
        data: Option<serde_json::Value>,
    },

    #[error("tool {tool:?} of server {server:?} asked its caller for input (sampling, elicitation or roots), which a job or a meta-tool call cannot give; an MCP client can, at a named server's endpoint (/servers/NAME/mcp)")]
    InputRequired { server: String, tool: String },

    #[error("server {server:?} refused the request's Mcp-Param headers, even with its tool list read again: {message}")]
    HeaderMismatch { server: String, message: String },
}

impl UpstreamError {
    /// The same error with `secrets` taken out of the text that came from elsewhere
    /// (an upstream's own messages, a transport's reasons).
    pub fn redacted(self, secrets: &Secrets) -> Self {
        let clean = |text: String| secrets.redact(&text).into_owned();
        match self {
            Self::Handshake { server, reason } => Self::Handshake {
                server,
                reason: clean(reason),
            },
            Self::Disconnected { server, reason } => Self::Disconnected {
                server,
                reason: clean(reason),
            },
            Self::Unsupported { server, reason } => Self::Unsupported {
                server,
                reason: clean(reason),
            },
            Self::Rejected {
                server,
                code,
                message,
                data,
            } => Self::Rejected {
                code,
                server,
                message: clean(message),
                data: data.map(|mut data| {
                    secrets.redact_json(&mut data);
                    data
                }),
            },
            Self::HeaderMismatch { server, message } => Self::HeaderMismatch {
                server,
                message: clean(message),
            },
            Self::EnvFileUnreadable { path, reason } => Self::EnvFileUnreadable {
                path,
                reason: clean(reason),
            },
            other => other,
        }
    }

    /// Whether the failure is the job's (it will fail the same way again) or the
    /// upstream's (it may work on another attempt).
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::CommandNotAllowed { .. }
            | Self::ArgumentsNotPinned { .. }
            | Self::NulInArgument { .. }
            | Self::EnvNotAllowed { .. }
            | Self::WorkDirNotConfigured { .. }
            | Self::CwdOutsideDir { .. }
            | Self::CwdUnusable { .. }
            | Self::EnvDirNotConfigured { .. }
            | Self::EnvFileOutsideDir { .. }
            | Self::EnvFileUnreadable { .. }
            | Self::EnvFileSubstitutes { .. }
            | Self::HostNotAllowed { .. }
            | Self::InvalidRemote { .. }
            | Self::ArgumentsTooLarge { .. } => FailureKind::Refused,
            Self::UnknownServer { .. } => FailureKind::UnknownServer,
            Self::Spawn { .. }
            | Self::Handshake { .. }
            | Self::Disconnected { .. }
            | Self::Restarting { .. }
            | Self::ShuttingDown => FailureKind::UpstreamUnavailable,
            Self::Timeout { .. } | Self::PoolBusy { .. } => FailureKind::UpstreamTimeout,
            Self::Rejected { .. }
            | Self::HeaderMismatch { .. }
            | Self::Unsupported { .. }
            | Self::InputRequired { .. } => FailureKind::UpstreamRejected,
        }
    }
}
