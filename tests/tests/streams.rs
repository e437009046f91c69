//! The Redis Streams tools (seed 004) against a real Redis: each tool on real streams,
//! every error the issue names (invalid names, missing streams, duplicate groups), a
//! Redis that goes away during calls (a clear error at once, then recovery), and
//! `MCP_TOOLSETS` switching tool groups off.

use std::time::{Duration, Instant};

use mcp_jobs_e2e::{tool_names, tool_result, wait_for, McpServer, RedisServer, ALL_TOOLS, API_KEY};
use serde_json::{json, Value};

const STREAM: &str = "billing:invoices:events";

fn call(server: &McpServer, tool: &str, arguments: Value) -> (bool, Value, String) {
    tool_result(&server.call(tool, arguments))
}

fn refused(server: &McpServer, tool: &str, arguments: Value, kind: &str, says: &str) {
    let (failed, error, text) = call(server, tool, arguments.clone());
    assert!(failed, "{tool} {arguments}: {error}");
    assert_eq!(error["kind"], kind, "{tool} {arguments}: {text}");
    assert!(text.contains(says), "{tool} {arguments}: {text}");
}

#[test]
fn stream_tools_on_real_streams() {
    let redis = RedisServer::start();
    let server = McpServer::start(&[("REDIS_URL", &redis.url())]);

    let (failed, added, _) = call(
        &server,
        "add_stream_message",
        json!({ "stream": STREAM, "message": { "invoice": "A-17", "amount": 12.5, "lines": [1, 2] } }),
    );
    assert!(!failed, "{added}");
    let first_id = added["id"].as_str().expect("an entry id").to_owned();
    call(
        &server,
        "add_stream_message",
        json!({ "stream": STREAM, "message": { "invoice": "A-18" } }),
    );

    let (failed, read, _) = call(&server, "get_stream_messages", json!({ "stream": STREAM }));
    assert!(!failed, "{read}");
    let entries = read["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["id"], first_id.as_str());
    assert_eq!(
        entries[0]["fields"],
        json!({ "invoice": "A-17", "amount": "12.5", "lines": "[1,2]" })
    );
    let (_, one, _) = call(
        &server,
        "get_stream_messages",
        json!({ "stream": STREAM, "start": first_id, "count": 1 }),
    );
    assert_eq!(one["entries"].as_array().map(Vec::len), Some(1));

    let (failed, created, _) = call(
        &server,
        "create_consumer_group",
        json!({ "stream": STREAM, "group": "auditors", "start": "0" }),
    );
    assert!(!failed, "{created}");
    let (failed, groups, _) = call(&server, "list_groups", json!({ "stream": STREAM }));
    assert!(!failed, "{groups}");
    assert_eq!(groups["groups"][0]["name"], "auditors");
    assert_eq!(groups["groups"][0]["pending"], 0);
    assert_eq!(
        groups["groups"][0]["lag"], 2,
        "both entries still to deliver"
    );

    call(
        &server,
        "add_stream_message",
        json!({ "stream": "billing:refunds:events", "message": { "r": "1" } }),
    );
    call(
        &server,
        "add_stream_message",
        json!({ "stream": "shipping:parcels:events", "message": { "p": "1" } }),
    );
    let (failed, listed, _) = call(&server, "list_streams", json!({ "pattern": "billing:*" }));
    assert!(!failed, "{listed}");
    assert_eq!(
        listed["streams"],
        json!([
            { "name": "billing:invoices:events", "length": 2 },
            { "name": "billing:refunds:events", "length": 1 },
        ])
    );

    // Every error the tools promise.
    for bad in [
        "billing",
        "billing:invoices",
        "a:b:c:d",
        "billing:in voices:x",
    ] {
        refused(
            &server,
            "add_stream_message",
            json!({ "stream": bad, "message": { "k": "v" } }),
            "invalid_arguments",
            "service:purpose:stream",
        );
    }
    refused(
        &server,
        "add_stream_message",
        json!({ "stream": STREAM, "message": {} }),
        "invalid_arguments",
        "no fields",
    );
    let missing = json!({ "stream": "billing:invoices:missing" });
    refused(
        &server,
        "get_stream_messages",
        missing.clone(),
        "no_such_stream",
        "billing:invoices:missing",
    );
    refused(
        &server,
        "list_groups",
        missing,
        "no_such_stream",
        "billing:invoices:missing",
    );
    refused(
        &server,
        "create_consumer_group",
        json!({ "stream": "billing:invoices:missing", "group": "g", "create_stream": false }),
        "no_such_stream",
        "billing:invoices:missing",
    );
    refused(
        &server,
        "create_consumer_group",
        json!({ "stream": STREAM, "group": "auditors" }),
        "group_exists",
        "already has a consumer group \"auditors\"",
    );
    refused(
        &server,
        "get_stream_messages",
        json!({ "stream": STREAM, "start": "not-an-id" }),
        "invalid_arguments",
        "invalid stream id",
    );
}

#[test]
fn a_redis_restart_gives_a_clear_error_then_recovers() {
    let mut redis = RedisServer::start();
    let server = McpServer::start(&[("REDIS_URL", &redis.url())]);
    let add = json!({ "stream": STREAM, "message": { "n": "1" } });
    assert!(!call(&server, "add_stream_message", add.clone()).0);

    // A wait outlives Redis going away (it may come back: see tests/waits.rs); if it is
    // still away at the wait's end, the answer says so rather than "no reply".
    call(&server, "checkin_client", json!({ "client_id": "alice" }));
    call(&server, "checkin_client", json!({ "client_id": "bob" }));
    let url = server.url();
    let waiter = std::thread::spawn(move || {
        tool_result(&McpServer::call_url(
            &url,
            "send_message_and_wait",
            json!({ "sender_id": "alice", "recipient_id": "bob", "message": "?", "timeout": 3 }),
        ))
    });
    std::thread::sleep(Duration::from_millis(500));
    redis.kill();
    let (failed, error, text) = waiter.join().expect("waiter");
    assert!(failed, "{error}");
    assert_eq!(error["kind"], "redis_unavailable", "{text}");

    // While Redis is down: an answer within seconds that says what is wrong.
    let started = Instant::now();
    let (failed, error, text) = call(&server, "add_stream_message", add.clone());
    assert!(failed);
    assert_eq!(error["kind"], "redis_unavailable", "{text}");
    assert!(
        text.contains("unreachable") && text.contains("reconnects"),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );

    redis.restart();
    wait_for(
        "stream tools to work again",
        Duration::from_secs(30),
        || {
            let (failed, added, _) = call(&server, "add_stream_message", add.clone());
            (!failed).then_some(added)
        },
    );
    let (failed, read, _) = call(&server, "get_stream_messages", json!({ "stream": STREAM }));
    assert!(!failed, "{read}");
    assert_eq!(
        read["entries"].as_array().map(Vec::len),
        Some(1),
        "a fresh Redis"
    );
}

#[test]
fn toolsets_switch_groups_off() {
    let redis = RedisServer::start();
    let server = McpServer::start(&[("REDIS_URL", &redis.url()), ("MCP_TOOLSETS", "jobs")]);
    let listing: Value = reqwest::blocking::Client::new()
        .get(server.endpoint("/tools"))
        .bearer_auth(API_KEY)
        .send()
        .and_then(|r| r.json())
        .expect("/tools");
    assert_eq!(
        tool_names(&listing),
        ["call_tool", "list_tools", "server_initialize"]
    );
    let response = server.call("send_message", json!({}));
    assert!(response["error"].is_object(), "{response:#}");
    let rest = reqwest::blocking::Client::new()
        .post(server.endpoint("/tools/list_streams"))
        .bearer_auth(API_KEY)
        .json(&json!({ "arguments": {} }))
        .send()
        .expect("gateway");
    assert_eq!(rest.status(), 404);

    let all = McpServer::start(&[("REDIS_URL", &redis.url())]);
    let listing: Value = reqwest::blocking::Client::new()
        .get(all.endpoint("/tools"))
        .bearer_auth(API_KEY)
        .send()
        .and_then(|r| r.json())
        .expect("/tools");
    assert_eq!(tool_names(&listing), ALL_TOOLS);
}
