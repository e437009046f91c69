//! mcp-server over real HTTP: authentication, the policy's refusals, body and argument
//! limits, the Host guard, secret redaction, and remote upstreams of both transports.

use std::process::Command;
use std::time::Duration;

use mcp_jobs_e2e::{bin, fixture, server_everything_over, McpServer, ALL_TOOLS, API_KEY};
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn post(server: &McpServer, body: &Value) -> RequestBuilder {
    Client::new()
        .post(server.url())
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .json(body)
}

fn tool_call(tool: &str, arguments: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": tool, "arguments": arguments } })
}

/// Calls `tool` and checks mcp-server's policy refused it with a message containing `expected`.
fn assert_refused(server: &McpServer, tool: &str, arguments: Value, expected: &str) {
    mcp_jobs_e2e::assert_refused(&server.call(tool, arguments), expected);
}

const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

#[test]
fn callers_need_a_valid_api_key() {
    let server = McpServer::start(&[]);
    let list: Value = serde_json::from_str(LIST).expect("json");
    let cases = [
        ("no key", post(&server, &list)),
        ("wrong key", post(&server, &list).bearer_auth("not-the-key")),
        (
            "basic scheme",
            post(&server, &list).basic_auth(API_KEY, None::<&str>),
        ),
        (
            "empty x-api-key",
            post(&server, &list).header("X-API-Key", ""),
        ),
    ];
    for (name, request) in cases {
        let response = request.send().expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer", "{name}");
    }
    for (name, request) in [
        ("bearer", post(&server, &list).bearer_auth(API_KEY)),
        (
            "x-api-key",
            post(&server, &list).header("X-API-Key", API_KEY),
        ),
    ] {
        let response = request.send().expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        let body: Value = response.json().expect("json");
        assert_eq!(
            body["result"]["tools"].as_array().map(Vec::len),
            Some(ALL_TOOLS.len()),
            "{name}: {body:#}"
        );
    }
    let health =
        reqwest::blocking::get(format!("http://127.0.0.1:{}/health", server.port)).expect("health");
    assert_eq!(
        health.status(),
        StatusCode::OK,
        "/health stays open for probes"
    );
}

#[test]
fn auth_can_be_turned_off_only_explicitly() {
    let server = McpServer::start(&[("MCP_AUTH", "none"), ("MCP_API_KEYS", "")]);
    let list: Value = serde_json::from_str(LIST).expect("json");
    assert_eq!(
        post(&server, &list).send().expect("request").status(),
        StatusCode::OK
    );
    assert!(
        server.process.output().contains("authentication is OFF"),
        "a warning is logged"
    );

    let refused = Command::new(bin("mcp-server"))
        .env_remove("MCP_API_KEYS")
        .env_remove("MCP_AUTH")
        .env("PORT", mcp_jobs_e2e::free_port().to_string())
        .output()
        .expect("run mcp-server");
    assert!(
        !refused.status.success(),
        "no keys and no MCP_AUTH=none: refuse to start"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("MCP_API_KEYS is empty"), "{stderr}");
}

#[test]
fn commands_off_the_allowlist_are_refused() {
    let server = McpServer::start(&[]);
    for command in ["sh", "/usr/bin/mcp-server-time", "perl"] {
        assert_refused(
            &server,
            "server_initialize",
            json!({ "serverName": "x", "config": { "command": command, "args": ["-c", "id"] } }),
            &format!("command {command:?} is not allowed"),
        );
    }
    // python3 is allowed only to run the test's own server script.
    assert_refused(
        &server,
        "server_initialize",
        json!({ "serverName": "x", "config": { "command": "python3", "args": ["-c", "import os; os.system('id')"] } }),
        "command \"python3\" is allowed only with pinned leading arguments",
    );
}

#[test]
fn env_files_must_stay_inside_the_env_dir() {
    let root = tempfile::tempdir().expect("temp dir");
    let env_dir = root.path().join("env");
    std::fs::create_dir(&env_dir).expect("env dir");
    std::fs::write(root.path().join("outside.env"), "SECRET=1\n").expect("outside file");
    std::os::unix::fs::symlink(root.path().join("outside.env"), env_dir.join("link.env"))
        .expect("symlink");
    let server = McpServer::start(&[("MCP_ENV_DIR", env_dir.to_str().expect("utf-8"))]);

    for path in [
        "../outside.env",
        "link.env",
        "/etc/passwd",
        "sub/../../outside.env",
    ] {
        assert_refused(
            &server,
            "list_tools",
            json!({ "serverName": "time", "config": { "command": "mcp-server-time", "envFile": path } }),
            &format!("envFile {path:?} is outside MCP_ENV_DIR"),
        );
    }

    let without_dir = McpServer::start(&[]);
    assert_refused(
        &without_dir,
        "list_tools",
        json!({ "serverName": "time", "config": { "command": "mcp-server-time", "envFile": "time.env" } }),
        "MCP_ENV_DIR is not set",
    );
}

#[test]
fn remote_hosts_must_be_allowed() {
    let server = McpServer::start(&[("MCP_ALLOWED_REMOTE_HOSTS", "tools.internal:443")]);
    assert_refused(
        &server,
        "server_initialize",
        json!({ "serverName": "r", "config": { "url": "http://169.254.169.254/latest/meta-data" } }),
        "remote host \"169.254.169.254:80\" is not allowed",
    );
}

#[test]
fn oversized_bodies_get_413() {
    let server = McpServer::start(&[("MCP_MAX_BODY_BYTES", "2048")]);
    let big = tool_call(
        "list_tools",
        json!({ "serverName": "x".repeat(4096), "config": { "command": "x" } }),
    );
    let response = post(&server, &big)
        .bearer_auth(API_KEY)
        .send()
        .expect("request");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[test]
fn host_header_guard_is_configurable() {
    let list: Value = serde_json::from_str(LIST).expect("json");
    let status_for_service_host = |server: &McpServer| {
        post(server, &list)
            .bearer_auth(API_KEY)
            .header("Host", "mcp-server.jobs.svc")
            .send()
            .expect("request")
            .status()
    };
    let guarded = McpServer::start(&[]);
    assert_eq!(
        status_for_service_host(&guarded),
        StatusCode::FORBIDDEN,
        "unlisted Host refused by default"
    );
    let service = McpServer::start(&[("MCP_ALLOWED_HOSTS", "mcp-server.jobs.svc")]);
    assert_eq!(
        status_for_service_host(&service),
        StatusCode::OK,
        "a Kubernetes Service name can be allowed"
    );
}

#[test]
fn secrets_stay_out_of_logs_and_results() {
    let server = McpServer::start(&[(
        "MCP_ALLOWED_COMMANDS",
        &format!("sh,mcp-server-time,{}", fixture()),
    )]);
    let response = server.call(
        "call_tool",
        json!({ "serverName": "time", "config": { "command": "mcp-server-time", "env": { "API_TOKEN": "hunter2-secret" } },
                "tool": "get_current_time", "arguments": { "timezone": "UTC" } }),
    );
    assert_eq!(response["result"]["isError"], false, "{response:#}");

    // A child that prints its token to stderr (which mcp-server logs) and returns it.
    let leaky = json!({ "serverName": "leaky", "config": {
        "command": "sh",
        "args": ["-c", format!("echo \"my token is $API_TOKEN\" >&2; exec {}", fixture())],
        "env": { "API_TOKEN": "hunter2-secret" },
    }, "tool": "env", "arguments": { "name": "API_TOKEN" } });
    let response = server.call("call_tool", leaky);
    assert_eq!(
        response["result"]["content"][0]["text"], "API_TOKEN=[redacted]",
        "{response:#}"
    );
    server
        .process
        .wait_for_output("my token is [redacted]", 1, Duration::from_secs(10));
    assert!(
        server.process.output().contains("server=leaky"),
        "stderr is logged under the server's name"
    );
    assert!(!server.process.output().contains("hunter2-secret"));
}

#[test]
fn oversized_tool_arguments_are_refused() {
    let server = McpServer::start(&[("MCP_MAX_ARGUMENT_BYTES", "1000")]);
    let arguments = |text: String| json!({ "serverName": "f", "config": { "command": fixture() }, "tool": "echo", "arguments": { "text": text } });
    assert_refused(
        &server,
        "call_tool",
        arguments("x".repeat(2000)),
        "MCP_MAX_ARGUMENT_BYTES allows 1000",
    );
    let fits = server.call("call_tool", arguments("x".repeat(900)));
    assert_eq!(fits["result"]["isError"], false, "{fits:#}");
}

#[test]
fn legacy_sse_upstreams_are_reached() {
    let (_everything, port) = server_everything_over("sse", "Server is running");
    let host = format!("127.0.0.1:{port}");
    let server = McpServer::start(&[("MCP_ALLOWED_REMOTE_HOSTS", host.as_str())]);
    let remote = json!({ "url": format!("http://{host}/sse"), "type": "sse" });

    let response = server.call(
        "server_initialize",
        json!({ "serverName": "everything", "config": remote }),
    );
    let info = &response["result"]["structuredContent"];
    assert!(
        info["serverInfo"]["name"]
            .as_str()
            .is_some_and(|n| n.contains("everything")),
        "{response:#}"
    );
    let response = server.call(
        "call_tool",
        json!({ "serverName": "everything", "config": remote, "tool": "echo", "arguments": { "message": "over SSE" } }),
    );
    assert_eq!(
        response["result"]["content"][0]["text"], "Echo: over SSE",
        "{response:#}"
    );
}

#[test]
fn remote_streamable_http_upstreams_are_reached_with_their_headers() {
    // Another mcp-server is a real Streamable HTTP MCP server that insists on a key.
    let upstream = McpServer::start(&[]);
    let host = format!("127.0.0.1:{}", upstream.port);
    let server = McpServer::start(&[("MCP_ALLOWED_REMOTE_HOSTS", host.as_str())]);
    let remote = |authorization: &str| json!({ "serverName": "remote", "config": { "url": upstream.url(), "headers": { "Authorization": authorization } } });

    let response = server.call("server_initialize", remote(&format!("Bearer {API_KEY}")));
    let info = &response["result"]["structuredContent"];
    assert_eq!(info["serverInfo"]["name"], "mcp-jobs", "{response:#}");
    let tools = info["tools"].as_array().map(Vec::len);
    assert_eq!(tools, Some(ALL_TOOLS.len()), "{response:#}");

    let refused = server.call("list_tools", remote("Bearer wrong-key"));
    assert_eq!(
        refused["error"]["data"]["kind"], "upstream_unavailable",
        "{refused:#}"
    );
}
