//! mcp-server reaching upstreams of either protocol era: a server that speaks only
//! 2026-07-28 (the Python SDK's MCPServer refusing `initialize`) over stdio and
//! Streamable HTTP, from tool calls and from jobs; servers of both eras, legacy ones that
//! answer `server/discover` with an error and one that stays silent on it; a server
//! that speaks no revision we do fails as `upstream_rejected`, once, not retried.

use std::process::Command;
use std::time::Duration;

use mcp_jobs_e2e::{
    free_port, modern_only_script, modern_only_server, results_by_job, server_everything,
    server_everything_over, silent_on_discover, Deployment, McpServer, Process, Status,
};
use mcp_jobs_engine::tool_client::ToolClient;
use serde_json::{json, Value};

const MINUTE: Duration = Duration::from_secs(60);

/// The modern-only server over stateless Streamable HTTP, and its `/mcp` URL.
fn modern_only_over_http() -> (Process, String) {
    let port = free_port();
    let server = Process::spawn(
        "modern-only-http",
        Command::new("python3").args([&modern_only_script(), "http", &port.to_string()]),
    );
    server.wait_for_output("Uvicorn running", 1, Duration::from_secs(30));
    (server, format!("http://127.0.0.1:{port}/mcp"))
}

/// `127.0.0.1:PORT` of an `http://127.0.0.1:PORT/mcp` URL.
fn host_of(url: &str) -> &str {
    url.trim_start_matches("http://").trim_end_matches("/mcp")
}

fn text_of(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_server_that_speaks_only_2026_07_28_is_reached_over_stdio_and_http() {
    let (_upstream, url) = modern_only_over_http();
    let server = McpServer::start(&[("MCP_ALLOWED_REMOTE_HOSTS", host_of(&url))]);
    for (over, config, fresh) in [
        (
            "stdio",
            modern_only_server(&[]),
            modern_only_server(&["--fresh"]),
        ),
        (
            "http",
            json!({ "url": url }),
            json!({ "url": format!("{url}?fresh") }),
        ),
    ] {
        let named = |extra: Value| {
            let mut arguments = json!({ "serverName": "modern", "config": config });
            if let (Some(arguments), Value::Object(extra)) = (arguments.as_object_mut(), extra) {
                arguments.extend(extra);
            }
            arguments
        };
        let initialized = server.call("server_initialize", named(json!({})));
        let info = &initialized["result"]["structuredContent"];
        assert_eq!(
            info["protocolVersion"], "2026-07-28",
            "{over}: {initialized:#}"
        );
        assert_eq!(
            info["serverInfo"]["name"], "modern-only",
            "{over}: {info:#}"
        );

        let listed = server.call("list_tools", named(json!({})));
        let names: Vec<&str> = listed["result"]["structuredContent"]["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|tool| tool["name"].as_str())
            .collect();
        assert_eq!(names, ["echo", "route", "count"], "{over}: {listed:#}");

        // A tool that routes on an argument (`x-mcp-header`): over HTTP its value must
        // ride in an Mcp-Param-Region header too, even as the first call of a connection
        // that has not listed the tools (`fresh` is another config, so another one).
        let routed = server.call(
            "call_tool",
            json!({ "serverName": "router", "config": fresh, "tool": "route", "arguments": { "region": "eu-west" } }),
        );
        assert_eq!(
            text_of(&routed["result"]),
            "routed to eu-west",
            "{over}: {routed:#}"
        );

        let called = server.call(
            "call_tool",
            named(json!({ "tool": "echo", "arguments": { "text": over } })),
        );
        assert_eq!(called["result"]["isError"], false, "{over}: {called:#}");
        assert_eq!(
            text_of(&called["result"]),
            format!("echo: {over}"),
            "{over}"
        );
        // The upstream's serverInfo in its result's `_meta` is about the hop behind
        // mcp-server, which is the server that answered this caller.
        assert!(
            called["result"]["_meta"]["io.modelcontextprotocol/serverInfo"].is_null(),
            "{over}: {called:#}"
        );
    }
}

/// rmcp's discover-then-initialize gives `server/discover` 10 s: a modern-only server
/// whose first start takes longer refuses the `initialize` that follows, and is asked
/// again with `server/discover` alone instead of being rejected.
#[test]
fn a_modern_server_slower_to_start_than_the_discover_window_is_still_reached() {
    let server = McpServer::start(&[]);
    let marker = std::env::temp_dir().join(format!("slow-first-start-{}", free_port()));
    let config = modern_only_server(&["--slow-first-start", &marker.display().to_string()]);
    let initialized = server.call(
        "server_initialize",
        json!({ "serverName": "slow-modern", "config": config }),
    );
    let _ = std::fs::remove_file(&marker);
    assert_eq!(
        initialized["result"]["structuredContent"]["protocolVersion"], "2026-07-28",
        "{initialized:#}"
    );
}

#[test]
fn jobs_reach_a_server_that_speaks_only_2026_07_28_and_one_that_speaks_nothing_of_ours_is_rejected_once(
) {
    let (_upstream, url) = modern_only_over_http();
    let stack = Deployment::new("revisions")
        .server_env(&[("MCP_ALLOWED_REMOTE_HOSTS", host_of(&url))])
        .worker_env(&[("JOB_RETRY_BACKOFF_MS", "100")])
        .start();
    let job = |job_id: &str, config: Value| {
        serde_json::to_vec(&json!({
            "jobID": job_id,
            "jobType": "tool-call",
            "payload": {
                "mcpServers": { "modern": config },
                "server": "modern", "tool": "echo", "arguments": { "text": job_id }
            }
        }))
        .expect("json")
    };
    let over_stdio = job("modern-stdio", modern_only_server(&[]));
    let over_http = job("modern-http", json!({ "url": url }));
    let mute = job("speaks-nothing-1", modern_only_server(&["--speak-nothing"]));
    stack.broker.produce(
        &stack.topic,
        &[(None, &over_stdio), (None, &over_http), (None, &mute)],
    );

    let results = results_by_job(&stack.broker, &stack.topic, 3, MINUTE);
    let outcome = |job_id: &str| {
        results
            .iter()
            .find(|r| r.job_id.as_deref() == Some(job_id))
            .unwrap_or_else(|| panic!("no outcome for {job_id}: {results:#?}"))
    };
    for job_id in ["modern-stdio", "modern-http"] {
        let reached = outcome(job_id);
        assert_eq!(reached.status, Status::Succeeded, "{reached:#?}");
        assert_eq!(
            text_of(reached.result("modern").expect("modern answered")),
            format!("echo: {job_id}"),
            "{reached:#?}"
        );
    }

    let rejected = outcome("speaks-nothing-1");
    assert_eq!(rejected.status, Status::Failed, "{rejected:#?}");
    assert_eq!(
        rejected.error_kind(),
        Some("upstream_rejected"),
        "{rejected:#?}"
    );
    assert_eq!(rejected.attempts, 1, "not retried: {rejected:#?}");
    let message = rejected.error_message().unwrap_or_default();
    for needle in ["speaks no MCP revision", "server/discover", "initialize"] {
        assert!(message.contains(needle), "{needle:?} in {message:?}");
    }
}

/// mcp-server-time (Python SDK 2.3) speaks both revisions and is reached statelessly;
/// server-everything (TypeScript SDK 1.x) answers `server/discover` with -32601 and is
/// reached with initialize on the same connection; a legacy server silent on discover
/// gets a second start with initialize after the probe's wait.
#[test]
fn servers_of_either_era_are_reached_whether_they_refuse_discover_or_stay_silent() {
    let server = McpServer::start(&[]);
    for (name, config, identity, revision) in [
        (
            "time",
            json!({ "command": "mcp-server-time" }),
            "mcp-time",
            "2026-07-28",
        ),
        (
            "everything",
            server_everything(),
            "everything",
            "2025-11-25",
        ),
        ("silent", silent_on_discover(), "mcp-time", "2025-11-25"),
    ] {
        let initialized = server.call(
            "server_initialize",
            json!({ "serverName": name, "config": config }),
        );
        let info = &initialized["result"]["structuredContent"];
        assert_eq!(info["protocolVersion"], revision, "{name}: {initialized:#}");
        let server_name = info["serverInfo"]["name"].as_str().unwrap_or_default();
        assert!(server_name.contains(identity), "{name}: {info:#}");
    }
    let log = server.process.output();
    assert!(
        log.contains("upstream answered no server/discover within"),
        "the silent server was given the probe's time, then initialize: {log}"
    );
}

/// kafka-worker's client of mcp-server speaks 2026-07-28 and falls back to initialize
/// for a server that predates it, as an older mcp-server would during a rolling
/// upgrade: here server-everything (TypeScript SDK 1.x) over Streamable HTTP.
#[test]
fn the_workers_client_falls_back_for_a_server_that_predates_2026_07_28() {
    let (_legacy, port) = server_everything_over("streamableHttp", "listening on port");
    let client = ToolClient::new(&[format!("http://127.0.0.1:{port}/mcp")], None, 4);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut arguments = serde_json::Map::new();
    arguments.insert("message".into(), json!("rolling upgrade"));
    let result = runtime
        .block_on(client.call("echo", arguments, Default::default(), MINUTE))
        .expect("the legacy server answers");
    let text = serde_json::to_value(&result).expect("a result");
    assert_eq!(text_of(&text), "Echo: rolling upgrade", "{text:#}");
}
