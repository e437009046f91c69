//! The servers file (`MCP_SERVERS_FILE`): named MCP servers in the format MCP hosts
//! already use (`{"mcpServers": {"time": {"command": "mcp-server-time"}}}`), each with
//! the schema of a job's server, plus mcp-jobs' own options under `mcpJobs`. Other
//! hosts' fields (`disabled`, `autoApprove`, …) are ignored, so a host's file works
//! as it is.
//!
//! `${VAR}` in any string is taken from mcp-server's environment (e.g. a Kubernetes
//! Secret). The expanded values are secrets: never logged, never served, never
//! written anywhere.

use std::collections::BTreeMap;
use std::sync::Arc;

use mcp_jobs_contract::ServerConfig;
use mcp_jobs_upstream::{Trust, Upstream};

pub use crate::tasks::TaskMode;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The longest server name: it is a path segment of the server's endpoint.
pub const MAX_NAME_CHARS: usize = 64;

/// mcp-jobs' own options for one named server (`"mcpJobs": {…}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerOptions {
    /// The operator vouches for this server: mcp-server's command and remote-host
    /// allowlists do not apply to it. Off unless said.
    #[serde(default)]
    pub trusted: bool,
    /// Legacy (2025-11-25 and older) clients get a session at this server's endpoint,
    /// for upstream tools that ask their caller something (sampling, elicitation,
    /// roots): the question goes out on the call's stream and the answer comes back on
    /// the session. Sessions live on the replica that opened them, so a load balancer
    /// must keep a legacy client on one replica (by its Mcp-Session-Id). 2026-07-28
    /// clients are stateless either way. Off unless said.
    #[serde(default)]
    pub sessions: bool,
    /// Which calls at this server's endpoint become durable tasks (jobs on Kafka), for
    /// clients that declared tasks support; `never` unless said.
    #[serde(default)]
    pub tasks: TaskMode,
    /// The same, for some tools by name, over `tasks`.
    #[serde(default)]
    pub task_tools: BTreeMap<String, TaskMode>,
}

impl ServerOptions {
    /// How a call of `tool` runs.
    pub fn task_mode(&self, tool: &str) -> TaskMode {
        self.task_tools.get(tool).copied().unwrap_or(self.tasks)
    }

    /// Whether any call at this server can become a task.
    pub fn offers_tasks(&self) -> bool {
        self.tasks != TaskMode::Never || self.task_tools.values().any(|m| *m != TaskMode::Never)
    }
}

/// One named server, its `${VAR}`s expanded.
#[derive(Clone, PartialEq, Eq)]
pub struct NamedServer {
    pub config: ServerConfig,
    pub options: ServerOptions,
}

impl NamedServer {
    /// Who vouches for its config: the operator, if the file says `trusted`.
    pub fn trust(&self) -> Trust {
        if self.options.trusted {
            Trust::Operator
        } else {
            Trust::Job
        }
    }

    /// The pool's view of it, under `name`.
    pub fn upstream<'a>(&'a self, name: &'a str) -> Upstream<'a> {
        Upstream {
            name,
            config: &self.config,
            trust: self.trust(),
        }
    }
}

/// Every server of a servers file, by name; shared, not copied, by the requests that
/// use one.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NamedServers(BTreeMap<String, Arc<NamedServer>>);

impl NamedServers {
    pub fn get(&self, name: &str) -> Option<&Arc<NamedServer>> {
        self.0.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<NamedServer>)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names added, removed and changed from `before` to `self`, for the log.
    pub fn changes_from(&self, before: &Self) -> Changes {
        let added = self.0.keys().filter(|n| !before.0.contains_key(*n));
        let removed = before.0.keys().filter(|n| !self.0.contains_key(*n));
        let changed = self
            .0
            .iter()
            .filter(|(n, s)| before.0.get(*n).is_some_and(|old| old != *s));
        Changes {
            added: added.cloned().collect(),
            removed: removed.cloned().collect(),
            changed: changed.map(|(n, _)| n.clone()).collect(),
        }
    }
}

/// What a reload changed, by server name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

/// Why a servers file is refused: which field, and why. Never a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServersFileError {
    #[error("{path}: cannot be read: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: not JSON ({reason})")]
    Json { path: String, reason: String },
    #[error("{path}: {field}: {reason}")]
    Field {
        path: String,
        field: String,
        reason: String,
    },
}

/// Parses a servers file's `text` (`path` names it in errors).
pub fn parse(
    path: &str,
    text: &str,
    var: impl Fn(&str) -> Option<String>,
) -> Result<NamedServers, ServersFileError> {
    let invalid = |field: &str, reason: String| ServersFileError::Field {
        path: path.to_owned(),
        field: field.to_owned(),
        reason,
    };
    let root: Value = serde_json::from_str(text).map_err(|e| ServersFileError::Json {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let servers = match root.get("mcpServers") {
        Some(Value::Object(servers)) => servers,
        Some(_) => {
            return Err(invalid(
                "mcpServers",
                "must be an object of servers by name".into(),
            ))
        }
        None => return Err(invalid(
            "mcpServers",
            r#"missing: the file holds {"mcpServers": {"<name>": {"command": …} or {"url": …}}}"#
                .into(),
        )),
    };
    let mut named = BTreeMap::new();
    for (name, entry) in servers {
        let field = format!("mcpServers.{name}");
        check_name(name).map_err(|reason| invalid(&field, reason))?;
        let Value::Object(entry) = entry else {
            return Err(invalid(
                &field,
                "must be an object with `command` or `url`".into(),
            ));
        };
        let mut entry = entry.clone();
        let options = match entry.remove("mcpJobs") {
            None => ServerOptions::default(),
            Some(options) => {
                let field = format!("{field}.mcpJobs");
                deserialize::<ServerOptions>(options)
                    .map_err(|(at, reason)| invalid(&join(&field, &at), reason))?
            }
        };
        let entry = expand(Value::Object(entry), &field, &var)
            .map_err(|(at, reason)| invalid(&at, reason))?;
        let config = deserialize::<ServerConfig>(entry)
            .map_err(|(at, reason)| invalid(&join(&field, &at), reason))?;
        named.insert(name.clone(), Arc::new(NamedServer { config, options }));
    }
    Ok(NamedServers(named))
}

/// A name fit for a URL path segment and a log line.
fn check_name(name: &str) -> Result<(), String> {
    let fits = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "a server name has 1 to {MAX_NAME_CHARS} characters"
        ));
    }
    if !name.chars().all(fits) || name.starts_with('.') {
        return Err(format!(
            "{name:?} is not a server name: letters, digits, `-`, `_` and `.` (not first) only"
        ));
    }
    Ok(())
}

/// `value` with every `${VAR}` in its strings replaced; an error names the field.
fn expand(
    value: Value,
    field: &str,
    var: &impl Fn(&str) -> Option<String>,
) -> Result<Value, (String, String)> {
    Ok(match value {
        Value::String(text) => {
            Value::String(expand_text(&text, var).map_err(|reason| (field.to_owned(), reason))?)
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| expand(item, &format!("{field}[{i}]"), var))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(key, item)| {
                    let item = expand(item, &format!("{field}.{key}"), var)?;
                    Ok((key, item))
                })
                .collect::<Result<Map<String, Value>, (String, String)>>()?,
        ),
        other => other,
    })
}

fn expand_text(text: &str, var: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err("`${` without its closing `}`".into());
        };
        let name = &after[..end];
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "${{{name}}} is not a variable reference (${{NAME}}, letters, digits and `_`)"
            ));
        }
        match var(name) {
            Some(value) => out.push_str(&value),
            None => {
                return Err(format!(
                    "${{{name}}} is not set in mcp-server's environment"
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `value` as a `T`, or the path inside it where it is wrong and why.
fn deserialize<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let at = e.path().to_string();
        (
            if at == "." { String::new() } else { at },
            e.into_inner().to_string(),
        )
    })
}

fn join(field: &str, at: &str) -> String {
    if at.is_empty() {
        field.to_owned()
    } else {
        format!("{field}.{at}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_jobs_contract::RemoteServer;

    fn env(name: &str) -> Option<String> {
        (name == "GITHUB_TOKEN").then(|| "ghp_secret".to_owned())
    }

    fn refused(text: &str) -> String {
        match parse("servers.json", text, env) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted: {text}"),
        }
    }

    #[test]
    fn a_hosts_file_is_read_with_its_secrets_from_the_environment() {
        let servers = parse(
            "servers.json",
            r#"{"mcpServers": {
                "time": {"command": "mcp-server-time", "args": ["--local-timezone=UTC"], "disabled": false},
                "github": {"url": "https://api.example.com/mcp", "headers": {"Authorization": "Bearer ${GITHUB_TOKEN}"},
                           "mcpJobs": {"trusted": true}}
            }}"#,
            env,
        )
        .unwrap();
        assert_eq!(servers.len(), 2);
        let github = servers.get("github").unwrap();
        assert!(github.options.trusted);
        let ServerConfig::Remote(RemoteServer { headers, .. }) = &github.config else {
            panic!("github is remote");
        };
        assert_eq!(headers["Authorization"], "Bearer ghp_secret");
        assert!(
            !servers.get("time").unwrap().options.trusted,
            "allowlists apply unless said"
        );
    }

    #[test]
    fn every_mistake_names_its_field_and_never_a_secret() {
        assert!(refused("{").contains("servers.json: not JSON"));
        assert!(refused(r#"{"servers": {}}"#).contains("servers.json: mcpServers: missing"));
        assert!(refused(r#"{"mcpServers": []}"#).contains("mcpServers: must be an object"));
        assert!(refused(r#"{"mcpServers": {"a b": {"command": "x"}}}"#)
            .contains("mcpServers.a b: \"a b\" is not a server name"));
        assert!(
            refused(r#"{"mcpServers": {"t": {"command": "x", "url": "http://h/mcp"}}}"#)
                .starts_with("servers.json: mcpServers.t: ")
        );
        let unset = refused(
            r#"{"mcpServers": {"g": {"url": "http://h/mcp", "headers": {"X-Key": "${NOT_SET}"}}}}"#,
        );
        assert_eq!(unset, "servers.json: mcpServers.g.headers.X-Key: ${NOT_SET} is not set in mcp-server's environment");
        let open =
            refused(r#"{"mcpServers": {"g": {"command": "x", "args": ["${GITHUB_TOKEN"]}}}"#);
        assert!(
            open.starts_with("servers.json: mcpServers.g.args[0]: "),
            "{open}"
        );
        let typo =
            refused(r#"{"mcpServers": {"g": {"command": "x", "mcpJobs": {"trustd": true}}}}"#);
        assert!(
            typo.starts_with("servers.json: mcpServers.g.mcpJobs"),
            "{typo}"
        );
        assert!(typo.contains("trustd"), "{typo}");
        let wrong_type = refused(r#"{"mcpServers": {"g": {"command": "x", "args": "--flag"}}}"#);
        assert!(
            wrong_type.starts_with("servers.json: mcpServers.g.args: "),
            "{wrong_type}"
        );
        let secret_elsewhere =
            refused(r#"{"mcpServers": {"g": {"command": "${GITHUB_TOKEN}", "args": 3}}}"#);
        assert!(
            !secret_elsewhere.contains("ghp_secret"),
            "{secret_elsewhere}"
        );
    }

    #[test]
    fn a_reload_says_what_changed() {
        let before = parse(
            "f",
            r#"{"mcpServers": {"a": {"command": "x"}, "b": {"command": "y"}}}"#,
            env,
        )
        .unwrap();
        let after = parse(
            "f",
            r#"{"mcpServers": {"b": {"command": "z"}, "c": {"command": "x"}}}"#,
            env,
        )
        .unwrap();
        assert_eq!(
            after.changes_from(&before),
            Changes {
                added: vec!["c".into()],
                removed: vec!["a".into()],
                changed: vec!["b".into()],
            }
        );
    }
}
