//! The messaging tools (seed 002) on two mcp-server replicas sharing one real Redis: a
//! message sent through one is received through the other, `send_message_and_wait` on
//! replica A is answered by a client on replica B, old messages expire, and bad input
//! gets errors that name the problem.

use std::time::{Duration, Instant};

use mcp_jobs_e2e::{tool_result, wait_for, McpServer, RedisServer};
use serde_json::{json, Value};

fn replica(redis: &RedisServer, extra: &[(&str, &str)]) -> McpServer {
    let url = redis.url();
    let mut env = vec![("REDIS_URL", url.as_str())];
    env.extend_from_slice(extra);
    McpServer::start(&env)
}

/// Calls `tool` and returns (isError, structured content, text).
fn call(server: &McpServer, tool: &str, arguments: Value) -> (bool, Value, String) {
    tool_result(&server.call(tool, arguments))
}

fn check_in(server: &McpServer, id: &str) {
    let (failed, client, _) = call(
        server,
        "checkin_client",
        json!({ "client_id": id, "name": id }),
    );
    assert!(!failed, "{client}");
}

#[test]
fn replicas_share_queues_and_waits() {
    let redis = RedisServer::start();
    let a = replica(&redis, &[]);
    let b = replica(&redis, &[]);
    check_in(&a, "alice");
    check_in(&b, "bob");

    let (failed, sent, _) = call(
        &a,
        "send_message",
        json!({ "sender_id": "alice", "recipient_id": "bob", "message": "hello from A" }),
    );
    assert!(!failed, "{sent}");
    let (failed, taken, markdown) = call(&b, "get_messages", json!({ "client_id": "bob" }));
    assert!(!failed, "{taken}");
    assert_eq!(taken["messages"][0]["text"], "hello from A");
    assert_eq!(taken["messages"][0]["from"], "alice");
    assert!(markdown.contains("## From alice, just now"), "{markdown}");
    let (_, again, markdown) = call(&b, "get_messages", json!({ "client_id": "bob" }));
    assert_eq!(again["messages"], json!([]), "messages are popped");
    assert_eq!(markdown, "No messages for bob.");

    // Alice waits on replica A; Bob reads and answers on replica B.
    let url = a.url();
    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        let response = McpServer::call_url(
            &url,
            "send_message_and_wait",
            json!({ "sender_id": "alice", "recipient_id": "bob", "message": "ping?", "timeout": 30 }),
        );
        (tool_result(&response), started.elapsed())
    });
    wait_for("bob to get the question", Duration::from_secs(10), || {
        let (_, taken, _) = call(&b, "get_messages", json!({ "client_id": "bob" }));
        (taken["messages"][0]["text"] == "ping?").then_some(())
    });
    // Something unrelated first: it is not the answer Alice waits for.
    check_in(&b, "carol");
    call(
        &b,
        "send_message",
        json!({ "sender_id": "carol", "recipient_id": "alice", "message": "unrelated" }),
    );
    let answered_at = Instant::now();
    call(
        &b,
        "send_message",
        json!({ "sender_id": "bob", "recipient_id": "alice", "message": "pong" }),
    );
    let ((failed, waited, markdown), _) = waiter.join().expect("waiter");
    let latency = answered_at.elapsed();
    assert!(!failed, "{waited}");
    assert_eq!(waited["reply"]["text"], "pong");
    assert_eq!(waited["reply"]["from"], "bob");
    assert!(markdown.contains("pong"), "{markdown}");
    assert!(
        latency < Duration::from_secs(2),
        "woken by the reply, not by a poll: {latency:?}"
    );
    // Carol's message is still there for Alice.
    let (_, left, _) = call(&a, "get_messages", json!({ "client_id": "alice" }));
    assert_eq!(left["messages"][0]["text"], "unrelated");

    // No answer: a clear timeout, not a hang.
    let (failed, timed_out, text) = call(
        &a,
        "send_message_and_wait",
        json!({ "sender_id": "alice", "recipient_id": "bob", "message": "anyone?", "timeout": 1 }),
    );
    assert!(failed);
    assert_eq!(timed_out["kind"], "timeout");
    assert!(text.contains("no reply from \"bob\""), "{text}");
}

#[test]
fn messages_expire_and_bad_input_is_named() {
    let redis = RedisServer::start();
    let server = replica(
        &redis,
        &[
            ("MESSAGING_MESSAGE_TTL_SECONDS", "1"),
            ("MESSAGING_MAX_MESSAGE_BYTES", "100"),
        ],
    );
    check_in(&server, "alice");
    check_in(&server, "bob");
    call(
        &server,
        "send_message",
        json!({ "sender_id": "alice", "recipient_id": "bob", "message": "soon gone" }),
    );
    std::thread::sleep(Duration::from_millis(2200));
    let (_, taken, _) = call(&server, "get_messages", json!({ "client_id": "bob" }));
    assert_eq!(taken["messages"], json!([]), "expired after 1 s");

    let refusals = [
        (
            json!({ "sender_id": "alice", "recipient_id": "nobody", "message": "hi" }),
            "unknown_client",
            "unknown client \"nobody\"",
        ),
        (
            json!({ "sender_id": " ", "recipient_id": "bob", "message": "hi" }),
            "invalid_arguments",
            "sender_id is empty",
        ),
        (
            json!({ "sender_id": "alice", "recipient_id": "bob", "message": "x".repeat(101) }),
            "too_large",
            "101 bytes; the limit is 100",
        ),
        (
            json!({ "sender_id": "alice", "recipient_id": "bob", "message": "" }),
            "invalid_arguments",
            "the message is empty",
        ),
    ];
    for (arguments, kind, says) in refusals {
        let (failed, error, text) = call(&server, "send_message", arguments.clone());
        assert!(failed, "{arguments}");
        assert_eq!(error["kind"], kind, "{arguments}");
        assert!(text.contains(says), "{text}");
    }
    let (failed, error, _) = call(&server, "get_messages", json!({ "client_id": "stranger" }));
    assert!(failed);
    assert_eq!(error["kind"], "unknown_client");

    let (failed, identity, text) = call(&server, "get_my_identity", json!({}));
    assert!(!failed);
    assert_eq!(identity["clients"].as_array().map(Vec::len), Some(2));
    assert!(
        text.contains("mcp_recipients.json") && text.contains("`alice`"),
        "{text}"
    );
}
