//! The REST gateway, Server-Sent Events, WebSocket, `/stats` and `/ready` over real HTTP
//! and WebSocket clients (with readiness draining on shutdown), and progress relayed from server-everything's long-running
//! tool on every path, MCP included.

use std::net::TcpStream;

use mcp_jobs_e2e::{
    fixture, server_everything, sse_events, tool_names, McpServer, ALL_TOOLS, API_KEY,
};
use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

fn echo(text: &str) -> Value {
    json!({ "serverName": "fixture", "config": { "command": fixture() }, "tool": "echo", "arguments": { "text": text } })
}

/// Four progress steps over one second.
fn long_running() -> Value {
    json!({ "serverName": "everything", "config": server_everything(),
            "tool": "trigger-long-running-operation", "arguments": { "duration": 1, "steps": 4 } })
}

fn post(server: &McpServer, path: &str, body: &Value) -> reqwest::blocking::Response {
    Client::new()
        .post(server.endpoint(path))
        .bearer_auth(API_KEY)
        .json(body)
        .send()
        .expect("request")
}

#[test]
fn rest_lists_and_calls_tools_with_statuses_that_say_whose_fault() {
    let server = McpServer::start(&[]);

    let listed: Value = Client::new()
        .get(server.endpoint("/tools"))
        .bearer_auth(API_KEY)
        .send()
        .and_then(|r| r.json())
        .expect("GET /tools");
    assert_eq!(tool_names(&listed), ALL_TOOLS);
    let call_tool = &listed["tools"][1];
    assert_eq!(call_tool["name"], "call_tool");
    assert!(call_tool["inputSchema"]["properties"]["config"].is_object());
    assert!(call_tool["description"].is_string());

    let answered = post(
        &server,
        "/tools/call_tool",
        &json!({ "arguments": echo("over REST") }),
    );
    assert_eq!(answered.status(), StatusCode::OK);
    let result: Value = answered.json().expect("json");
    assert_eq!(result["content"][0]["text"], "over REST", "{result:#}");
    assert_eq!(result["isError"], false);

    let cases = [
        (
            "/tools/nope",
            json!({}),
            StatusCode::NOT_FOUND,
            "unknown_tool",
        ),
        (
            "/tools/call_tool",
            json!({ "arguments": { "serverName": 3 } }),
            StatusCode::BAD_REQUEST,
            "invalid_arguments",
        ),
        (
            "/tools/list_tools",
            json!({ "arguments": { "serverName": "x", "config": { "command": "rm" } } }),
            StatusCode::FORBIDDEN,
            "refused",
        ),
        (
            "/tools/call_tool",
            json!({ "arguments": { "serverName": "f", "config": { "command": fixture() }, "tool": "no-such-tool" } }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "upstream_rejected",
        ),
        (
            "/tools/call_tool",
            json!({ "arguments": { "serverName": "f", "config": { "command": fixture() }, "tool": "sleep", "arguments": { "ms": 2000 }, "timeoutMs": 200 } }),
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
        ),
    ];
    for (path, body, status, kind) in cases {
        let response = post(&server, path, &body);
        assert_eq!(response.status(), status, "{path} {body}");
        let error: Value = response.json().expect("json error");
        assert_eq!(error["kind"], kind, "{error:#}");
        assert!(error["error"].as_str().is_some_and(|m| !m.is_empty()));
    }

    let anonymous = Client::new()
        .get(server.endpoint("/tools"))
        .send()
        .expect("request");
    assert_eq!(
        anonymous.status(),
        StatusCode::UNAUTHORIZED,
        "same auth as /mcp"
    );
}

#[test]
fn sse_streams_progress_from_server_everything_then_the_result() {
    let server = McpServer::start(&[]);
    let response = post(
        &server,
        "/tools/call_tool/stream",
        &json!({ "arguments": long_running() }),
    );
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .is_ok_and(|t| t.starts_with("text/event-stream")));
    let events = sse_events(&response.text().expect("body"));
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        ["started", "progress", "progress", "progress", "progress", "result", "done"],
        "{events:#?}"
    );
    let steps: Vec<(f64, f64)> = events
        .iter()
        .filter(|(name, _)| name == "progress")
        .filter_map(|(_, data)| Some((data["progress"].as_f64()?, data["total"].as_f64()?)))
        .collect();
    assert_eq!(steps, [(1.0, 4.0), (2.0, 4.0), (3.0, 4.0), (4.0, 4.0)]);
    let text = events[5].1["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("Long running operation completed"), "{text}");
    assert_eq!(events[6].1["status"], "complete");

    let failed = post(&server, "/tools/nope/stream", &json!({}));
    let events = sse_events(&failed.text().expect("body"));
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["started", "error", "done"]);
    assert_eq!(events[1].1["kind"], "unknown_tool");
    assert_eq!(events[2].1["status"], "failed");
}

fn websocket(
    server: &McpServer,
    query: &str,
) -> tungstenite::Result<WebSocket<MaybeTlsStream<TcpStream>>> {
    let url = format!("ws://127.0.0.1:{}/ws/tools/call_tool{query}", server.port);
    tungstenite::connect(url).map(|(socket, _)| socket)
}

/// Reads events until `done`.
fn events_until_done(socket: &mut WebSocket<MaybeTlsStream<TcpStream>>) -> Vec<Value> {
    let mut events = Vec::new();
    while let Ok(message) = socket.read() {
        let Message::Text(text) = message else {
            continue;
        };
        let event: Value = serde_json::from_str(&text).expect("a JSON event");
        let done = event["event"] == "done";
        events.push(event);
        if done {
            break;
        }
    }
    events
}

#[test]
fn websocket_runs_requests_with_the_same_events() {
    let server = McpServer::start(&[]);
    let refused = websocket(&server, "");
    assert!(
        matches!(refused, Err(tungstenite::Error::Http(ref r)) if r.status() == 401),
        "a WebSocket needs the key too: {refused:?}"
    );

    let mut socket = websocket(&server, &format!("?api_key={API_KEY}")).expect("connect");
    socket
        .send(Message::text(
            json!({ "arguments": long_running(), "id": "req-1" }).to_string(),
        ))
        .expect("send");
    let events = events_until_done(&mut socket);
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(
        names,
        ["started", "progress", "progress", "progress", "progress", "result", "done"]
    );
    assert!(events.iter().all(|e| e["id"] == "req-1"), "{events:#?}");
    assert_eq!(events[4]["progress"], 4.0);

    socket.send(Message::text("not json")).expect("send");
    let events = events_until_done_or_error(&mut socket);
    assert_eq!(events["kind"], "invalid_request", "{events:#}");

    socket
        .send(Message::text(
            json!({ "arguments": echo("again"), "id": 2 }).to_string(),
        ))
        .expect("send");
    let events = events_until_done(&mut socket);
    let result = events
        .iter()
        .find(|e| e["event"] == "result")
        .expect("a result");
    assert_eq!(result["result"]["content"][0]["text"], "again");
    assert_eq!(result["id"], 2);
}

fn events_until_done_or_error(socket: &mut WebSocket<MaybeTlsStream<TcpStream>>) -> Value {
    loop {
        let Message::Text(text) = socket.read().expect("an event") else {
            continue;
        };
        let event: Value = serde_json::from_str(&text).expect("a JSON event");
        if event["event"] == "error" {
            return event;
        }
    }
}

#[test]
fn progress_is_relayed_over_mcp_to_a_caller_with_a_progress_token() {
    let server = McpServer::start(&[]);
    let response = Client::new()
        .post(server.url())
        .bearer_auth(API_KEY)
        .header("Accept", "application/json, text/event-stream")
        .json(&json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": { "name": "call_tool", "arguments": long_running(), "_meta": { "progressToken": "tok-1" } },
        }))
        .send()
        .expect("request");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/event-stream")),
        "progress turns the JSON answer into a stream"
    );
    let messages: Vec<Value> = sse_events(&response.text().expect("body"))
        .into_iter()
        .map(|(_, data)| data)
        .collect();
    let progress: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 4, "{messages:#?}");
    assert!(progress
        .iter()
        .all(|p| p["params"]["progressToken"] == "tok-1"));
    assert_eq!(progress[3]["params"]["progress"], 4.0);
    let last = messages.last().expect("a response");
    assert_eq!(last["id"], 7);
    let text = last["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.contains("Long running operation completed"),
        "{last:#}"
    );
}

#[test]
fn stats_and_readiness() {
    let server = McpServer::start(&[]);
    let ready = reqwest::blocking::get(server.endpoint("/ready")).expect("/ready");
    assert_eq!(
        ready.status(),
        StatusCode::OK,
        "/ready needs no key, like /health"
    );
    let anonymous = reqwest::blocking::get(server.endpoint("/stats")).expect("/stats");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    for text in ["a", "b", "c"] {
        assert_eq!(
            server.call("call_tool", echo(text))["result"]["isError"],
            false
        );
    }
    server.call(
        "list_tools",
        json!({ "serverName": "x", "config": { "command": "rm" } }),
    );
    let stats = server.stats();
    assert_eq!(
        stats["requests"]["byTool"]["call_tool"]["ok"], 3,
        "{stats:#}"
    );
    assert_eq!(
        stats["requests"]["byTool"]["list_tools"]["refused"], 1,
        "{stats:#}"
    );
    let pool = &stats["pool"];
    assert_eq!(pool["children"], 1, "one config, one child: {pool:#}");
    assert_eq!(pool["spawned"], 1);
    assert_eq!(pool["servers"][0]["server"], "fixture");
    assert_eq!(pool["servers"][0]["target"], fixture());
}

#[test]
fn ready_turns_503_while_draining_then_the_server_exits() {
    let mut server = McpServer::start(&[("MCP_DRAIN_SECONDS", "3")]);
    let ready = || {
        reqwest::blocking::get(server.endpoint("/ready"))
            .map(|r| r.status())
            .ok()
    };
    assert_eq!(ready(), Some(StatusCode::OK));
    server.process.signal(nix::sys::signal::Signal::SIGTERM);
    mcp_jobs_e2e::wait_for(
        "/ready to answer 503",
        std::time::Duration::from_secs(2),
        || (ready() == Some(StatusCode::SERVICE_UNAVAILABLE)).then_some(()),
    );
    assert_eq!(
        server.call(
            "list_tools",
            json!({ "serverName": "x", "config": { "command": "rm" } })
        )["error"]["data"]["kind"],
        "refused",
        "still serving while draining"
    );
    let status = server.process.terminate(std::time::Duration::from_secs(10));
    assert!(status.success(), "{status}");
}
