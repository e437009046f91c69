//! `send_message_and_wait` at scale on real Redis: a thousand concurrent waits on one
//! replica hold one subscription connection between them (not one each), every one is
//! answered through another replica; waits survive a Redis restart; past
//! `MESSAGING_MAX_WAITERS` a call fails at once with `too_many_waiters`.

use std::time::Duration;

use mcp_jobs_e2e::{sample, scrape, wait_for, McpServer, RedisServer, API_KEY};
use redis::Commands;
use serde_json::{json, Value};

fn replica(redis: &RedisServer, extra: &[(&str, &str)]) -> McpServer {
    let url = redis.url();
    let mut env = vec![("REDIS_URL", url.as_str())];
    env.extend_from_slice(extra);
    McpServer::start(&env)
}

/// Many tool calls at once over one async HTTP client.
struct Caller {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Caller {
    fn new() -> Self {
        Self {
            runtime: tokio::runtime::Runtime::new().expect("runtime"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(300))
                .build()
                .expect("client"),
        }
    }

    /// Starts `tool` calls, one per arguments; their results (structured content and
    /// whether each is an error) once joined.
    fn spawn(
        &self,
        server: &McpServer,
        tool: &str,
        calls: Vec<Value>,
    ) -> Vec<tokio::task::JoinHandle<(bool, Value)>> {
        calls
            .into_iter()
            .map(|arguments| {
                let request = self
                    .http
                    .post(server.url())
                    .bearer_auth(API_KEY)
                    .header("Accept", "application/json, text/event-stream")
                    .json(&json!({
                        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                        "params": { "name": tool, "arguments": arguments },
                    }));
                self.runtime.spawn(async move {
                    let response: Value = request
                        .send()
                        .await
                        .expect("mcp-server answers")
                        .json()
                        .await
                        .expect("a JSON-RPC response");
                    let result = &response["result"];
                    (
                        result["isError"] == true,
                        result["structuredContent"].clone(),
                    )
                })
            })
            .collect()
    }

    fn join(&self, calls: Vec<tokio::task::JoinHandle<(bool, Value)>>) -> Vec<(bool, Value)> {
        self.runtime.block_on(async {
            let mut results = Vec::with_capacity(calls.len());
            for call in calls {
                results.push(call.await.expect("a call task"));
            }
            results
        })
    }

    fn run(&self, server: &McpServer, tool: &str, calls: Vec<Value>) -> Vec<(bool, Value)> {
        let spawned = self.spawn(server, tool, calls);
        self.join(spawned)
    }
}

fn check_in_all(caller: &Caller, server: &McpServer, ids: &[String]) {
    let calls = ids
        .iter()
        .map(|id| json!({ "client_id": id, "name": id }))
        .collect();
    for (failed, result) in caller.run(server, "checkin_client", calls) {
        assert!(!failed, "{result}");
    }
}

fn waiters_on(server: &McpServer) -> f64 {
    sample(
        &scrape(&server.endpoint("/metrics")),
        "mcp_server_messaging_waiters",
        &[],
    )
    .unwrap_or(0.0)
}

fn waits(ids: &[String]) -> Vec<Value> {
    ids.iter()
        .map(|id| json!({ "sender_id": id, "recipient_id": "replier", "message": format!("question from {id}"), "timeout": 120 }))
        .collect()
}

fn replies(ids: &[String]) -> Vec<Value> {
    ids.iter()
        .map(|id| json!({ "sender_id": "replier", "recipient_id": id, "message": format!("answer for {id}") }))
        .collect()
}

fn assert_answered(ids: &[String], results: Vec<(bool, Value)>) {
    assert_eq!(results.len(), ids.len());
    for (id, (failed, result)) in ids.iter().zip(results) {
        assert!(!failed, "{id}: {result}");
        assert_eq!(
            result["reply"]["text"],
            format!("answer for {id}"),
            "{id}: {result}"
        );
    }
}

#[test]
fn a_thousand_waits_hold_one_subscription_and_all_get_answers() {
    let redis = RedisServer::start();
    let a = replica(&redis, &[]);
    let b = replica(&redis, &[]);
    let caller = Caller::new();
    let ids: Vec<String> = (0..1000).map(|i| format!("waiter-{i}")).collect();
    check_in_all(&caller, &b, &["replier".to_owned()]);
    check_in_all(&caller, &a, &ids);
    let baseline = redis.connected_clients();

    let pending = caller.spawn(&a, "send_message_and_wait", waits(&ids));
    wait_for("1,000 waits on replica A", Duration::from_secs(60), || {
        (waiters_on(&a) >= 1000.0).then_some(())
    });
    let during = redis.connected_clients();
    eprintln!("waits: Redis clients {baseline} before the waits, {during} during 1,000 of them");
    assert!(
        during <= baseline + 2,
        "1,000 waits hold {during} Redis connections against {baseline} before"
    );

    for (failed, result) in caller.run(&b, "send_message", replies(&ids)) {
        assert!(!failed, "{result}");
    }
    assert_answered(&ids, caller.join(pending));
    wait_for("the waiters to leave", Duration::from_secs(10), || {
        (waiters_on(&a) == 0.0).then_some(())
    });
}

#[test]
fn waits_survive_a_redis_restart() {
    let mut redis = RedisServer::start();
    let a = replica(&redis, &[]);
    let b = replica(&redis, &[]);
    let caller = Caller::new();
    let ids: Vec<String> = (0..50).map(|i| format!("patient-{i}")).collect();
    let everyone: Vec<String> = ids.iter().cloned().chain(["replier".to_owned()]).collect();
    check_in_all(&caller, &a, &everyone);

    let pending = caller.spawn(&a, "send_message_and_wait", waits(&ids));
    wait_for("50 waits on replica A", Duration::from_secs(30), || {
        (waiters_on(&a) >= 50.0).then_some(())
    });
    // A wait counts from its subscription, which comes before its question is sent; a
    // restart cutting a send short fails that call, rightly (nothing was sent). So the
    // restart comes once every question is in: it is the waits that must survive it.
    let mut asked = 0;
    wait_for("the 50 questions sent", Duration::from_secs(30), || {
        let taken = caller.run(&b, "get_messages", vec![json!({ "client_id": "replier" })]);
        asked += taken[0].1["messages"].as_array().map_or(0, Vec::len);
        (asked >= ids.len()).then_some(())
    });
    redis.restart();
    a.process
        .wait_for_output("the Redis subscription is back", 1, Duration::from_secs(30));
    // Replica B's connection broke with the restart: its next command says so ("try
    // again shortly") while it reconnects, and a client tries again.
    wait_for("replica B back on Redis", Duration::from_secs(30), || {
        let checkin = json!({ "client_id": "replier", "name": "replier" });
        let answered = caller.run(&b, "checkin_client", vec![checkin]);
        (!answered[0].0).then_some(())
    });
    // Nothing persisted: the clients check in again, then the replies go out.
    check_in_all(&caller, &b, &everyone);
    for (failed, result) in caller.run(&b, "send_message", replies(&ids)) {
        assert!(!failed, "{result}");
    }
    assert_answered(&ids, caller.join(pending));
}

#[test]
fn past_the_waiter_limit_a_call_fails_at_once_and_sends_nothing() {
    let redis = RedisServer::start();
    let a = replica(&redis, &[("MESSAGING_MAX_WAITERS", "2")]);
    let caller = Caller::new();
    let ids: Vec<String> = (0..3).map(|i| format!("w-{i}")).collect();
    let everyone: Vec<String> = ids.iter().cloned().chain(["replier".to_owned()]).collect();
    check_in_all(&caller, &a, &everyone);

    let pending = caller.spawn(&a, "send_message_and_wait", waits(&ids[..2]));
    wait_for("two waits", Duration::from_secs(30), || {
        (waiters_on(&a) >= 2.0).then_some(())
    });
    let refused = caller.run(&a, "send_message_and_wait", waits(&ids[2..]));
    let (failed, result) = &refused[0];
    assert!(failed, "{result}");
    assert_eq!(result["kind"], "too_many_waiters", "{result}");
    assert!(
        result["error"]
            .as_str()
            .unwrap_or_default()
            .contains("MESSAGING_MAX_WAITERS"),
        "{result}"
    );
    let mut connection = redis::Client::open(redis.url())
        .and_then(|c| c.get_connection())
        .expect("Redis connection");
    let queued: i64 = connection
        .llen("mcp-jobs:messaging:queue:replier")
        .expect("LLEN");
    assert_eq!(queued, 2, "the refused call sent nothing");

    for (failed, result) in caller.run(&a, "send_message", replies(&ids[..2])) {
        assert!(!failed, "{result}");
    }
    assert_answered(&ids[..2], caller.join(pending));
}
