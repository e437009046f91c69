//! MCP servers and clients: mcp-server processes, the real servers jobs describe (Node,
//! Python), and reading MCP answers.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::{bin, fixture, free_port, wait_for, Process};

/// An `mcp-server` process.
pub struct McpServer {
    pub process: Process,
    pub port: u16,
}

pub const API_KEY: &str = "e2e-test-key";

impl McpServer {
    /// Starts mcp-server with the test API key, `mcp-server-time`, [`server_everything`]
    /// (node pinned to its entry point), [`fixture`], [`modern_only_server`] and
    /// [`silent_on_discover`] (python3 pinned to their scripts) allowed, and `env`.
    pub fn start(env: &[(&str, &str)]) -> Self {
        Self::start_on(free_port(), env)
    }

    pub fn start_on(port: u16, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(bin("mcp-server"));
        command
            .env("PORT", port.to_string())
            .env("MCP_BIND", "127.0.0.1")
            .env("MCP_API_KEYS", API_KEY)
            .env(
                "MCP_ALLOWED_COMMANDS",
                format!(
                    "mcp-server-time,node {},{},python3 {},python3 {} mcp-server-time",
                    server_everything_entry(),
                    fixture(),
                    modern_only_script(),
                    python_script("silent_on_discover.py"),
                ),
            )
            .env("RUST_LOG", "info,mcp_jobs_upstream=debug");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut process = Process::spawn("mcp-server", &mut command);
        let health = format!("http://127.0.0.1:{port}/health");
        wait_for("mcp-server /health", Duration::from_secs(20), || {
            assert!(process.is_running(), "mcp-server exited during start-up");
            reqwest::blocking::get(&health)
                .ok()
                .filter(|r| r.status().is_success())
        });
        Self { process, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Sends an authenticated `tools/call` of `tool` to `/mcp` and returns the
    /// JSON-RPC response (a result or an error).
    pub fn call(&self, tool: &str, arguments: serde_json::Value) -> serde_json::Value {
        Self::call_url(&self.url(), tool, arguments)
    }

    /// [`McpServer::call`] by URL, for threads that do not own the server.
    pub fn call_url(url: &str, tool: &str, arguments: serde_json::Value) -> serde_json::Value {
        let response = reqwest::blocking::Client::builder()
            // Blocking tools (send_message_and_wait) outlast reqwest's 30 s default.
            .timeout(Duration::from_secs(300))
            .build()
            .expect("HTTP client")
            .post(url)
            .bearer_auth(API_KEY)
            .header("Accept", "application/json, text/event-stream")
            .json(&serde_json::json!({
                "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": { "name": tool, "arguments": arguments },
            }))
            .send()
            .expect("mcp-server answers");
        assert!(response.status().is_success(), "{}", response.status());
        response.json().expect("a JSON-RPC response")
    }

    /// The server's `/stats` document.
    pub fn stats(&self) -> serde_json::Value {
        reqwest::blocking::Client::new()
            .get(self.endpoint("/stats"))
            .bearer_auth(API_KEY)
            .send()
            .and_then(|r| r.json())
            .expect("/stats")
    }
}

/// `@modelcontextprotocol/server-filesystem`'s entry point (in `tests/node`): give it
/// the directories it may serve as arguments.
pub fn server_filesystem_entry() -> String {
    node_package_entry("server-filesystem")
}

/// `@modelcontextprotocol/server-everything` (installed by scripts/install-deps.sh in
/// `tests/node`) as a stdio server config: echo, a long-running tool with progress…
pub fn server_everything() -> serde_json::Value {
    serde_json::json!({ "command": "node", "args": [server_everything_entry(), "stdio"] })
}

/// `tests/python/modern_only_server.py` as a stdio server config, `extra` appended to
/// its arguments: the Python SDK's server refusing `initialize`, as servers that speak
/// only 2026-07-28 do (`--speak-nothing`: refusing `server/discover` too).
pub fn modern_only_server(extra: &[&str]) -> serde_json::Value {
    let mut args = vec![modern_only_script(), "stdio".to_owned()];
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    serde_json::json!({ "command": "python3", "args": args })
}

/// The path of `tests/python/modern_only_server.py` (run it with `http PORT` to serve
/// stateless Streamable HTTP at `/mcp`).
pub fn modern_only_script() -> String {
    python_script("modern_only_server.py")
}

/// `mcp-server-time` behind `tests/python/silent_on_discover.py`, as a stdio server
/// config: a legacy server that stays silent on `server/discover`.
pub fn silent_on_discover() -> serde_json::Value {
    serde_json::json!({
        "command": "python3",
        "args": [python_script("silent_on_discover.py"), "mcp-server-time"],
    })
}

/// The path of a script in `tests/python`.
pub fn python_script(name: &str) -> String {
    format!("{}/python/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// [`server_everything`] serving `transport` (`sse` or `streamableHttp`) on a port of
/// its own, once it has printed `ready`; and that port.
pub fn server_everything_over(transport: &str, ready: &str) -> (Process, u16) {
    let port = free_port();
    let server = Process::spawn(
        &format!("everything-{transport}"),
        Command::new("node")
            .args([server_everything_entry().as_str(), transport])
            .env("PORT", port.to_string()),
    );
    server.wait_for_output(ready, 1, Duration::from_secs(30));
    (server, port)
}

fn server_everything_entry() -> String {
    node_package_entry("server-everything")
}

/// The entry point of an `@modelcontextprotocol/<package>` installed in `tests/node`.
fn node_package_entry(package: &str) -> String {
    let entry = format!(
        "{}/node/node_modules/@modelcontextprotocol/{package}/dist/index.js",
        env!("CARGO_MANIFEST_DIR")
    );
    assert!(
        Path::new(&entry).exists(),
        "{entry} is missing: run scripts/install-deps.sh"
    );
    entry
}

/// The events of a finished Server-Sent Events body: `(event name, JSON data)`.
pub fn sse_events(body: &str) -> Vec<(String, serde_json::Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut name = "message".to_owned();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    name = value.trim().to_owned();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push_str(value.trim_start());
                }
            }
            let data = serde_json::from_str(&data).ok()?;
            Some((name, data))
        })
        .collect()
}

/// The names in a `{"tools": [{"name": ...}, ...]}` listing, in order.
/// Every tool mcp-server serves by default (all toolsets), as listed: by name.
pub const ALL_TOOLS: [&str; 13] = [
    "add_stream_message",
    "call_tool",
    "checkin_client",
    "create_consumer_group",
    "get_messages",
    "get_my_identity",
    "get_stream_messages",
    "list_groups",
    "list_streams",
    "list_tools",
    "send_message",
    "send_message_and_wait",
    "server_initialize",
];

pub fn tool_names(listing: &serde_json::Value) -> Vec<&str> {
    listing["tools"]
        .as_array()
        .map(|tools| tools.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default()
}

/// Checks that a JSON-RPC response is mcp-server's policy refusing the call with a
/// message that contains `expected`.
pub fn assert_refused(response: &serde_json::Value, expected: &str) {
    let message = response["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a refusal containing {expected:?}: {response:#}"));
    assert!(
        message.contains(expected),
        "{message:?} should contain {expected:?}"
    );
    assert_eq!(response["error"]["data"]["kind"], "refused", "{response:#}");
}

/// A tool call's result from a JSON-RPC response: whether it is an error result, its
/// structured content, and its text.
pub fn tool_result(response: &serde_json::Value) -> (bool, serde_json::Value, String) {
    let result = &response["result"];
    assert!(result.is_object(), "not a tool result: {response:#}");
    let text = result["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|block| block["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    (
        result["isError"] == true,
        result["structuredContent"].clone(),
        text,
    )
}
