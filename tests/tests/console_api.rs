//! The console's JSON API end to end: real broker, worker, mcp-server and a
//! `kafka-worker console` process, called over HTTP as a script would.

use std::time::Duration;

use mcp_jobs_e2e::{
    fixture_job, free_port, start_console, start_worker, wait_for, worker_cli, Broker, McpServer,
};
use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

const MINUTE: Duration = Duration::from_secs(60);

fn get(client: &Client, url: &str, key: Option<&str>) -> (StatusCode, Value) {
    let mut request = client.get(url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().expect("GET");
    (response.status(), response.json().unwrap_or(Value::Null))
}

fn post(client: &Client, url: &str, key: &str, body: Value) -> (StatusCode, Value) {
    let response = client
        .post(url)
        .header("X-API-Key", key)
        .json(&body)
        .send()
        .expect("POST");
    (response.status(), response.json().unwrap_or(Value::Null))
}

#[test]
fn the_api_finds_jobs_and_dead_letters_and_replays_behind_keys_and_read_only_mode() {
    let broker = Broker::start();
    let topic = broker.name("console-api");
    let group = broker.name("g-console-api");
    broker.create_job_topics(&topic, 2);
    let server = McpServer::start(&[]);
    let _worker = start_worker(
        &broker,
        &server.url(),
        &topic,
        &group,
        &[("JOB_MAX_ATTEMPTS", "1")],
    );
    let ok = serde_json::to_vec(&fixture_job("ok-1", "echo", json!({"text": "hi"}))).expect("json");
    let fails = serde_json::to_vec(&fixture_job("fails-1", "fail", json!({}))).expect("json");
    broker.produce(&topic, &[(Some("a"), &ok), (Some("b"), &fails)]);
    broker.read(&format!("{topic}.results"), 2, MINUTE);

    let port = free_port();
    let _console = start_console(
        &broker,
        &topic,
        port,
        &[("CONSOLE_API_KEYS", "first-key,second-key")],
    );
    let api = |path: &str| format!("http://127.0.0.1:{port}/api{path}");
    let client = Client::new();

    let (status, body) = get(&client, &api("/dlq"), None);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("missing API key")),
        "{body}"
    );
    let (status, _) = get(&client, &api("/dlq"), Some("wrong-key"));
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, found) = get(&client, &api("/dlq?kind=tool_error"), Some("second-key"));
    assert_eq!(status, StatusCode::OK, "{found}");
    let letters = found["deadLetters"].as_array().expect("deadLetters");
    assert_eq!(letters.len(), 1, "{found}");
    assert_eq!(letters[0]["jobID"], "fails-1");
    assert_eq!(letters[0]["sourceTopic"], topic.as_str());
    let (_, none) = get(&client, &api("/dlq?kind=refused"), Some("first-key"));
    assert_eq!(none["deadLetters"], json!([]), "{none}");

    let (status, job) = get(&client, &api("/jobs/ok-1"), Some("first-key"));
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(job["outcomes"][0]["status"], "succeeded", "{job}");
    assert_eq!(
        job["outcomes"][0]["results"]["fx"]["content"][0]["text"], "hi",
        "{job}"
    );

    let (status, refused) = post(&client, &api("/dlq/replay"), "first-key", json!({}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let (status, replayed) = post(
        &client,
        &api("/dlq/replay"),
        "first-key",
        json!({"jobID": "fails-1"}),
    );
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(replayed["replayed"], 1, "{replayed}");
    let dead_letter = replayed["deadLetters"][0]
        .as_str()
        .expect("dead letter")
        .to_owned();
    let again = wait_for("the replay's outcome", MINUTE, || {
        let (_, job) = get(&client, &api("/jobs/fails-1"), Some("first-key"));
        job["outcomes"]
            .as_array()?
            .iter()
            .find(|o| o["replayOf"] == dead_letter.as_str())
            .cloned()
    });
    assert_eq!(again["status"], "failed", "{again}");

    // Read-only: every action refused, reads still served.
    let read_only_port = free_port();
    let _read_only = start_console(
        &broker,
        &topic,
        read_only_port,
        &[
            ("CONSOLE_API_KEYS", "first-key"),
            ("CONSOLE_READ_ONLY", "true"),
        ],
    );
    let read_only = |path: &str| format!("http://127.0.0.1:{read_only_port}/api{path}");
    let (status, body) = post(
        &client,
        &read_only("/dlq/replay"),
        "first-key",
        json!({"kind": "tool_error"}),
    );
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("read-only")),
        "{body}"
    );
    let (status, _) = get(&client, &read_only("/dlq"), Some("first-key"));
    assert_eq!(status, StatusCode::OK);

    // Without a key the console does not start.
    let keyless = worker_cli(&broker, &topic, &["console"]);
    assert!(!keyless.status.success());
    assert!(String::from_utf8_lossy(&keyless.stderr).contains("CONSOLE_API_KEYS is not set"));
}
