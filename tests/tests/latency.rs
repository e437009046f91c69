//! No fixed wait on a call's path. A call that asks for progress, and a one-call job
//! through kafka-worker, must cost about what the same call costs straight to
//! mcp-server; each is measured as a ratio against the direct call in the same run,
//! so a slow machine moves both together. And with no wait for stragglers, progress
//! sent just before a result must still arrive before it, every time.

use std::time::{Duration, Instant};

use mcp_jobs_e2e::{
    fixture, fixture_job, server_everything, sse_events, wait_for, Deployment, McpServer, Status,
    API_KEY,
};
use reqwest::blocking::Client;
use serde_json::{json, Value};

const CALLS: usize = 25;
/// A fixed wait of 100 ms on calls of a few ms shows as a ratio of 20 or more; the
/// bound leaves room for a busy machine's noise, not for a wait.
const MAX_RATIO: f64 = 4.0;

fn echo() -> Value {
    json!({ "serverName": "fx", "config": { "command": fixture() }, "tool": "echo", "arguments": { "text": "t" } })
}

/// A `tools/call` of mcp-server's `call_tool`, with a progress token if `token` is set;
/// returns every JSON-RPC message of the answer (one JSON body, or an SSE stream).
fn call(client: &Client, server: &McpServer, arguments: &Value, token: Option<&str>) -> Vec<Value> {
    let mut params = json!({ "name": "call_tool", "arguments": arguments });
    if let Some(token) = token {
        params["_meta"] = json!({ "progressToken": token });
    }
    let response = client
        .post(server.url())
        .bearer_auth(API_KEY)
        .header("Accept", "application/json, text/event-stream")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params }))
        .send()
        .expect("mcp-server answers");
    let streamed = response.headers()["content-type"]
        .to_str()
        .is_ok_and(|t| t.starts_with("text/event-stream"));
    let body = response.text().expect("a body");
    let messages: Vec<Value> = if streamed {
        sse_events(&body)
            .into_iter()
            .map(|(_, data)| data)
            .collect()
    } else {
        vec![serde_json::from_str(&body).expect("a JSON body")]
    };
    let last = messages.last().expect("an answer");
    assert!(last["result"].is_object(), "{messages:#?}");
    messages
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The median time of `CALLS` runs of `run`, in ms.
fn median_ms(mut run: impl FnMut()) -> f64 {
    median(
        (0..CALLS)
            .map(|_| {
                let started = Instant::now();
                run();
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect(),
    )
}

#[test]
fn a_call_with_a_progress_token_costs_what_the_call_costs() {
    let server = McpServer::start(&[]);
    let client = Client::new();
    call(&client, &server, &echo(), None);
    let direct = median_ms(|| {
        call(&client, &server, &echo(), None);
    });
    let relayed = median_ms(|| {
        call(&client, &server, &echo(), Some("tok"));
    });
    println!("direct p50 {direct:.2} ms, with a progress token {relayed:.2} ms");
    assert!(
        relayed <= MAX_RATIO * direct,
        "a call with a progress token takes {relayed:.2} ms against {direct:.2} ms without: a fixed wait is back"
    );
}

#[test]
fn progress_sent_just_before_the_result_arrives_before_it_every_time() {
    let server = McpServer::start(&[]);
    let client = Client::new();
    // No pause between steps: the last notification leaves right before the result.
    let burst = json!({ "serverName": "everything", "config": server_everything(),
                        "tool": "trigger-long-running-operation", "arguments": { "duration": 0, "steps": 5 } });
    for round in 0..20 {
        let messages = call(&client, &server, &burst, Some("burst"));
        let progress: Vec<f64> = messages
            .iter()
            .filter(|m| m["method"] == "notifications/progress")
            .filter_map(|m| m["params"]["progress"].as_f64())
            .collect();
        assert_eq!(
            progress,
            [1.0, 2.0, 3.0, 4.0, 5.0],
            "round {round}: every step, in order, before the result: {messages:#?}"
        );
    }
}

#[test]
fn a_one_call_job_costs_what_its_call_costs() {
    let deployment = Deployment::new("latency").start();
    let (broker, topic, _) = deployment.parts();
    let server = &deployment.server;
    let client = Client::new();
    call(&client, server, &echo(), None);
    let direct = median_ms(|| {
        call(&client, server, &echo(), None);
    });

    let mut durations = Vec::new();
    for n in 0..CALLS {
        let job = fixture_job(&format!("lat-{n}"), "echo", json!({ "text": "t" }));
        let bytes = serde_json::to_vec(&job).expect("json");
        broker.produce(topic, &[(None, &bytes)]);
        let outcome = wait_for(
            &format!("the outcome of lat-{n}"),
            Duration::from_secs(60),
            || {
                broker
                    .read_all(&format!("{topic}.results"))
                    .into_iter()
                    .map(|r| r.outcome())
                    .find(|o| o.job_id.as_deref() == Some(format!("lat-{n}").as_str()))
            },
        );
        assert_eq!(outcome.status, Status::Succeeded, "{outcome:#?}");
        let took = outcome.finished_at - outcome.started_at;
        durations.push(took.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0);
    }
    let job = median(durations);
    println!("direct p50 {direct:.2} ms, one-call job p50 {job:.2} ms");
    assert!(
        job <= MAX_RATIO * direct,
        "a one-call job takes {job:.2} ms against {direct:.2} ms for its call: a fixed wait is on the job path"
    );
}
