//! `ScheduledJobEnvelope`: one Kafka message value, parsed and checked as a whole so
//! that a job either is runnable or is refused up front with the field at fault.

use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ContractError;
use crate::servers::McpServersConfig;

/// The longest accepted `jobID`, in characters.
pub const MAX_JOB_ID_CHARS: usize = 256;

/// What a job asks mcp-server to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobType {
    /// Run `server_initialize` for every server in `mcpServers`.
    ServerInit,
    /// Run `list_tools` for every server in `mcpServers`.
    ListTools,
    /// Run `call_tool` for each [`ToolCall`], in order.
    ToolCall,
}

impl JobType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServerInit => "server-init",
            Self::ListTools => "list-tools",
            Self::ToolCall => "tool-call",
        }
    }
}

/// One tool invocation of a `tool-call` job: `server` is in `mcpServers`, or else names
/// a server of mcp-server's servers file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub server: String,
    pub tool: String,
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

/// A validated job message.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledJobEnvelope {
    /// The idempotency key of the job: the same job redelivered has the same id.
    pub job_id: String,
    pub job_type: JobType,
    pub mcp_servers: McpServersConfig,
    /// For [`JobType::ToolCall`]: the calls to make, in order; empty otherwise.
    pub calls: Vec<ToolCall>,
    pub scheduled_at: Option<DateTime<FixedOffset>>,
    /// The job's own deadline, overriding the worker's default.
    pub timeout: Option<Duration>,
}

/// The envelope as it arrives: everything optional, so absence is reported by name.
#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(rename = "jobID")]
    job_id: Option<String>,
    #[serde(rename = "jobType")]
    job_type: Option<String>,
    payload: Option<Value>,
    #[serde(rename = "scheduledAt")]
    scheduled_at: Option<String>,
    #[serde(rename = "timeoutMs")]
    timeout_ms: Option<u64>,
}

/// The payload document; unknown fields are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPayload {
    mcp_servers: Option<McpServersConfig>,
    server: Option<String>,
    tool: Option<String>,
    arguments: Option<Map<String, Value>>,
    calls: Option<Vec<RawToolCall>>,
}

#[derive(Deserialize)]
struct RawToolCall {
    server: Option<String>,
    tool: Option<String>,
    arguments: Option<Map<String, Value>>,
}

impl ScheduledJobEnvelope {
    /// Parses and validates a message value, refusing it if it exceeds `max_bytes`.
    pub fn from_slice_limited(bytes: &[u8], max_bytes: usize) -> Result<Self, ContractError> {
        if bytes.len() > max_bytes {
            return Err(ContractError::TooLarge {
                size: bytes.len(),
                limit: max_bytes,
            });
        }
        Self::from_slice(bytes)
    }

    /// Parses and validates a message value. An error never quotes a secret of the
    /// message (a serde error may quote the value it refused).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ContractError> {
        Self::parse(bytes).map_err(|e| e.redacted(&crate::secrets_of_message(bytes)))
    }

    fn parse(bytes: &[u8]) -> Result<Self, ContractError> {
        let text = std::str::from_utf8(bytes).map_err(|e| ContractError::NotUtf8 {
            at: e.valid_up_to(),
        })?;
        let raw: RawEnvelope = from_object("", parse_json(text, "(message)")?)?;

        let job_id = raw.job_id.ok_or_else(|| ContractError::missing("jobID"))?;
        let id_chars = job_id.chars().count();
        if id_chars == 0 || id_chars > MAX_JOB_ID_CHARS {
            return Err(ContractError::invalid(
                "jobID",
                format!("must be 1 to {MAX_JOB_ID_CHARS} characters, got {id_chars}"),
            ));
        }

        let job_type = match raw.job_type.as_deref() {
            None => return Err(ContractError::missing("jobType")),
            Some("server-init") => JobType::ServerInit,
            Some("list-tools") => JobType::ListTools,
            Some("tool-call") => JobType::ToolCall,
            Some(other) => {
                return Err(ContractError::UnknownJobType {
                    job_type: other.to_owned(),
                })
            }
        };

        let scheduled_at = raw
            .scheduled_at
            .map(|s| {
                DateTime::parse_from_rfc3339(&s).map_err(|e| {
                    ContractError::invalid(
                        "scheduledAt",
                        format!("{s:?} is not an RFC 3339 timestamp: {e}"),
                    )
                })
            })
            .transpose()?;

        if raw.timeout_ms == Some(0) {
            return Err(ContractError::invalid(
                "timeoutMs",
                "must be greater than 0",
            ));
        }

        let mut payload: RawPayload = match raw.payload {
            None | Some(Value::Null) => return Err(ContractError::missing("payload")),
            Some(Value::String(text)) => from_object("payload", parse_json(&text, "payload")?)?,
            Some(value) => from_object("payload", value)?,
        };

        // A tool-call may name only servers of mcp-server's servers file, and then
        // describes none.
        let mcp_servers = match (payload.mcp_servers.take(), job_type) {
            (Some(servers), _) => servers,
            (None, JobType::ToolCall) => McpServersConfig::new(),
            (None, _) => return Err(ContractError::missing("payload.mcpServers")),
        };
        if mcp_servers.is_empty() && job_type != JobType::ToolCall {
            return Err(ContractError::invalid(
                "payload.mcpServers",
                "describes no server",
            ));
        }
        if let Some(name) = mcp_servers.keys().find(|name| name.trim().is_empty()) {
            return Err(ContractError::invalid(
                "payload.mcpServers",
                format!("server name {name:?} is empty"),
            ));
        }

        let calls = match job_type {
            JobType::ServerInit | JobType::ListTools => Vec::new(),
            JobType::ToolCall => tool_calls(payload)?,
        };

        Ok(Self {
            job_id,
            job_type,
            mcp_servers,
            calls,
            scheduled_at,
            timeout: raw.timeout_ms.map(Duration::from_millis),
        })
    }

    /// The `jobID` of a message that may not be a valid job, so that even a refused
    /// message's failure record can name its job when it has one.
    pub fn job_id_of(bytes: &[u8]) -> Option<String> {
        let value: Value = serde_json::from_slice(bytes).ok()?;
        value.get("jobID")?.as_str().map(str::to_owned)
    }
}

/// A `tool-call` names one call with `server`/`tool`/`arguments`, or several in `calls`.
/// A call's server is one the payload describes or, if it describes none by that name,
/// one of mcp-server's servers file (mcp-server says if there is none).
fn tool_calls(payload: RawPayload) -> Result<Vec<ToolCall>, ContractError> {
    let server_name = required_name;
    let RawPayload {
        server,
        tool,
        arguments,
        calls,
        ..
    } = payload;
    match (calls, server.is_some() || tool.is_some()) {
        (Some(_), true) => Err(ContractError::invalid(
            "payload.calls",
            "give either `calls` or `server`/`tool`, not both",
        )),
        (Some(calls), false) => {
            if calls.is_empty() {
                return Err(ContractError::invalid("payload.calls", "is empty"));
            }
            calls
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    let prefix = format!("payload.calls[{i}]");
                    Ok(ToolCall {
                        server: server_name(c.server, &format!("{prefix}.server"))?,
                        tool: required_name(c.tool, &format!("{prefix}.tool"))?,
                        arguments: c.arguments.unwrap_or_default(),
                    })
                })
                .collect()
        }
        (None, _) => Ok(vec![ToolCall {
            server: server_name(server, "payload.server")?,
            tool: required_name(tool, "payload.tool")?,
            arguments: arguments.unwrap_or_default(),
        }]),
    }
}

fn required_name(value: Option<String>, field: &str) -> Result<String, ContractError> {
    match value {
        None => Err(ContractError::missing(field)),
        Some(v) if v.trim().is_empty() => Err(ContractError::invalid(field, "is empty")),
        Some(v) => Ok(v),
    }
}

fn parse_json(text: &str, field: &str) -> Result<Value, ContractError> {
    serde_json::from_str(text).map_err(|e| ContractError::MalformedJson {
        field: field.to_owned(),
        reason: e.to_string(),
    })
}

/// Deserializes `value` (the document at `prefix`), which must be a JSON object:
/// serde would otherwise accept an array in a struct's place.
fn from_object<T: DeserializeOwned>(prefix: &str, value: Value) -> Result<T, ContractError> {
    if !value.is_object() {
        let document = if prefix.is_empty() {
            "(message)"
        } else {
            prefix
        };
        return Err(ContractError::invalid(
            document,
            format!("must be a JSON object, got {}", json_kind(&value)),
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| ContractError::from_serde(prefix, e))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
