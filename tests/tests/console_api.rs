//! The console's JSON API end to end: real broker, worker, mcp-server and a
//! `kafka-worker console` process, called over HTTP as a script would.

use std::time::Duration;

use mcp_jobs_e2e::{
    dead_letter_headers, enqueue, fixture_job, free_port, publish_later, start_console, wait_for,
    worker_cli, Broker, Deployment,
};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
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
    let deployment = Deployment::new("console-api")
        .partitions(2)
        .worker_env(&[("JOB_MAX_ATTEMPTS", "1")])
        .start();
    let (broker, topic, _) = deployment.parts();
    let ok = serde_json::to_vec(&fixture_job("ok-1", "echo", json!({"text": "hi"}))).expect("json");
    let fails = serde_json::to_vec(&fixture_job("fails-1", "fail", json!({}))).expect("json");
    broker.produce(topic, &[(Some("a"), &ok), (Some("b"), &fails)]);
    broker.read(&format!("{topic}.results"), 2, MINUTE);

    let port = free_port();
    let _console = start_console(
        broker,
        topic,
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
    assert_eq!(letters[0]["sourceTopic"], topic);
    let (_, none) = get(&client, &api("/dlq?kind=refused"), Some("first-key"));
    assert_eq!(none["deadLetters"], json!([]), "{none}");
    // `since` as the pages and the CLI take it; a limit of 0 is refused, not one record.
    let (status, recent) = get(&client, &api("/dlq?since=2h"), Some("first-key"));
    assert_eq!(status, StatusCode::OK, "{recent}");
    assert_eq!(recent["matched"], 1, "{recent}");
    let (status, bad) = get(&client, &api("/dlq?since=yesterday"), Some("first-key"));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(
        bad["error"].as_str().is_some_and(|e| e.contains("since")),
        "{bad}"
    );
    for zero in ["/dlq?limit=0", "/outcomes?limit=0"] {
        let (status, body) = get(&client, &api(zero), Some("first-key"));
        assert_eq!(status, StatusCode::BAD_REQUEST, "{zero}: {body}");
    }
    let (status, body) = get(&client, &api("/nope"), Some("first-key"));
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("/api/dlq")),
        "{body}"
    );

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
        broker,
        topic,
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
    // A dry run changes nothing: a read-only console answers it.
    let (status, body) = post(
        &client,
        &read_only("/dlq/replay"),
        "first-key",
        json!({"kind": "tool_error", "dryRun": true, "includeReplayed": true}),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["replayed"], 2, "{body}");

    // Resolved without a replay: out of the default view, shown when asked for.
    let (status, body) = post(&client, &api("/dlq/resolve"), "first-key", json!({}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, resolved) = post(
        &client,
        &api("/dlq/resolve"),
        "first-key",
        json!({"jobID": "fails-1"}),
    );
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert!(
        resolved["resolved"].as_u64().is_some_and(|n| n >= 1),
        "{resolved}"
    );
    let (_, default_view) = get(&client, &api("/dlq?jobID=fails-1"), Some("first-key"));
    assert_eq!(default_view["matched"], 0, "{default_view}");
    let (_, with_resolved) = get(
        &client,
        &api("/dlq?jobID=fails-1&includeResolved=true"),
        Some("first-key"),
    );
    let letters = with_resolved["deadLetters"]
        .as_array()
        .expect("deadLetters");
    assert!(
        !letters.is_empty() && letters.iter().all(|l| l["resolved"]["by"] == "key #1"),
        "{with_resolved}"
    );

    // Without a key the console does not start.
    let keyless = worker_cli(broker, topic, &["console"]);
    assert!(!keyless.status.success());
    assert!(String::from_utf8_lossy(&keyless.stderr).contains("CONSOLE_API_KEYS is not set"));
}

/// Two jobs published to run later: the API lists them waiting (earliest due first),
/// refuses a cancellation in read-only mode and without a key, cancels one (once: a
/// second time it no longer waits), and the cancelled job's record says so while the
/// other runs at its time.
#[test]
fn waiting_jobs_are_listed_and_cancelled_through_the_api() {
    let deployment = Deployment::new("console-waiting")
        .worker_env(&[("SCHEDULER_ENABLED", "true")])
        .start();
    let (broker, topic, _) = deployment.parts();
    for (id, after) in [("cancel-api", "6s"), ("kept-api", "7s")] {
        publish_later(
            broker,
            topic,
            &fixture_job(id, "echo", json!({"text": id})),
            after,
        );
    }
    let (port, read_only_port) = (free_port(), free_port());
    let _console = start_console(broker, topic, port, &[("CONSOLE_API_KEYS", "key")]);
    let _read_only = start_console(
        broker,
        topic,
        read_only_port,
        &[("CONSOLE_API_KEYS", "key"), ("CONSOLE_READ_ONLY", "true")],
    );
    let api = |path: &str| format!("http://127.0.0.1:{port}/api{path}");
    let client = Client::new();

    let listed = wait_for("both jobs waiting", MINUTE, || {
        let (status, body) = get(&client, &api("/delayed"), Some("key"));
        assert_eq!(status, StatusCode::OK, "{body}");
        (body["total"] == 2).then_some(body)
    });
    let ids: Vec<&str> = listed["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|j| j["jobId"].as_str())
        .collect();
    assert_eq!(ids, ["cancel-api", "kept-api"], "{listed}");
    assert_eq!(listed["loaded"], true, "{listed}");
    let (status, body) = get(&client, &api("/delayed?limit=0"), Some("key"));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let cancel = |base: &str, key: &str| {
        let response = client
            .post(format!("{base}/api/delayed/cancel-api/cancel"))
            .bearer_auth(key)
            .send()
            .expect("POST");
        (
            response.status(),
            response.json::<Value>().unwrap_or(Value::Null),
        )
    };
    let (status, body) = cancel(&format!("http://127.0.0.1:{read_only_port}"), "key");
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = cancel(&format!("http://127.0.0.1:{port}"), "wrong-key");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = cancel(&format!("http://127.0.0.1:{port}"), "key");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["jobId"], "cancel-api", "{body}");
    // The console's index learns of the tombstone by following the topic.
    wait_for("the cancelled job to leave the list", MINUTE, || {
        let (_, body) = get(&client, &api("/delayed"), Some("key"));
        (body["total"] == 1).then_some(())
    });
    let (status, body) = cancel(&format!("http://127.0.0.1:{port}"), "key");
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("no job \"cancel-api\" waits")),
        "{body}"
    );

    let outcome = |id: &str| {
        let (_, body) = get(&client, &api(&format!("/jobs/{id}")), Some("key"));
        body["outcomes"].as_array().cloned().unwrap_or_default()
    };
    let kept = wait_for("the kept job to run", MINUTE, || {
        Some(outcome("kept-api")).filter(|o| !o.is_empty())
    });
    assert_eq!(kept[0]["status"], "succeeded", "{kept:?}");
    std::thread::sleep(Duration::from_secs(2));
    let cancelled = outcome("cancel-api");
    assert_eq!(cancelled.len(), 1, "the cancelled job ran: {cancelled:?}");
    assert_eq!(cancelled[0]["error"]["kind"], "cancelled", "{cancelled:?}");
}

/// The jobs in flight, as the workers report them: a slow job is seen running (worker,
/// attempt, what it calls), a failing one retrying (its error, its next attempt), then
/// both gone once they end; the job's outcome tells each attempt.
#[test]
fn jobs_in_flight_are_seen_running_and_retrying_until_they_end() {
    let deployment = Deployment::new("console-now")
        .worker_env(&[
            ("JOB_MAX_ATTEMPTS", "3"),
            ("JOB_RETRY_BACKOFF_MS", "4000"),
            ("RETRY_MAX_BACKOFF_MS", "4000"),
        ])
        .start();
    let (broker, topic, _) = deployment.parts();
    let port = free_port();
    let _console = start_console(broker, topic, port, &[("CONSOLE_API_KEYS", "key")]);
    let api = |path: &str| format!("http://127.0.0.1:{port}/api{path}");
    let client = Client::new();
    let slow = fixture_job("slow-now", "sleep", json!({"ms": 6000}));
    let flaky = fixture_job("flaky-now", "fail", json!({"succeed_from_attempt": 3}));
    deployment.publish(&[
        (Some("slow-now"), serde_json::to_vec(&slow).expect("json")),
        (Some("flaky-now"), serde_json::to_vec(&flaky).expect("json")),
    ]);

    let now = wait_for("one job running and one retrying", MINUTE, || {
        let (status, body) = get(&client, &api("/now"), Some("key"));
        assert_eq!(status, StatusCode::OK, "{body}");
        let running = body["running"].as_array()?;
        let retrying = body["retrying"].as_array()?;
        // `loaded` turns true once the follower reached the end of every partition,
        // which may come a poll after the jobs are seen.
        (running.iter().any(|j| j["jobID"] == "slow-now")
            && retrying.iter().any(|j| j["jobID"] == "flaky-now")
            && body["loaded"] == true)
            .then_some(body)
    });
    let of = |list: &str, id: &str| {
        now[list]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["jobID"] == id))
            .cloned()
            .unwrap_or_default()
    };
    let running = of("running", "slow-now");
    assert_eq!(running["state"], "running", "{now}");
    assert_eq!(running["attempt"], 1, "{now}");
    assert_eq!(running["calls"], json!(["fx/sleep"]), "{now}");
    assert!(
        running["worker"].as_str().is_some_and(|w| !w.is_empty()),
        "{now}"
    );
    let retrying = of("retrying", "flaky-now");
    assert!(
        retrying["error"]
            .as_str()
            .is_some_and(|e| e.contains("failing on purpose")),
        "{now}"
    );
    assert!(retrying["nextAttemptAt"].is_string(), "{now}");
    assert_eq!(now["runningTotal"], 1, "{now}");
    let (_, job) = get(&client, &api("/jobs/slow-now"), Some("key"));
    assert_eq!(job["inFlight"]["state"], "running", "{job}");

    wait_for("both jobs to end and leave the page", MINUTE, || {
        let (_, body) = get(&client, &api("/now"), Some("key"));
        (body["runningTotal"] == 0 && body["retryingTotal"] == 0).then_some(())
    });
    let (_, job) = get(&client, &api("/jobs/flaky-now"), Some("key"));
    assert!(job.get("inFlight").is_none(), "{job}");
    let outcome = &job["outcomes"][0];
    assert_eq!(outcome["status"], "succeeded", "{job}");
    let attempts = outcome["attemptLog"].as_array().expect("an attempt log");
    assert_eq!(attempts.len(), 3, "{job}");
    for (n, attempt) in attempts.iter().enumerate() {
        assert_eq!(attempt["attempt"], n + 1, "{job}");
        assert_eq!(attempt["error"].is_string(), n < 2, "{job}");
    }
}

/// 10,000 outcome records and 1,000 dead letters: the latest outcomes paged 100 at a
/// time give each record exactly once, newest first; the dead-letter filters count
/// exactly. Each page's time is printed (`-- --nocapture`), not asserted.
#[test]
fn pages_and_filters_over_ten_thousand_records() {
    let broker = Broker::start();
    let topic = broker.name("console-pages");
    broker.create_job_topics(&topic, 3);
    let results = format!("{topic}.results");
    let producer: BaseProducer = broker
        .client_config()
        .set("linger.ms", "20")
        .create()
        .expect("producer");
    let started = chrono::Utc::now() - chrono::Duration::seconds(30);
    for i in 0..10_000 {
        let id = format!("job-{i:05}");
        let record = json!({"jobID": id, "status": "succeeded", "attempts": 1, "finishedAt": "2026-12-02T00:00:00Z"});
        let payload = serde_json::to_vec(&record).expect("json");
        // Timestamps increase with i, so "newest first" is job-09999 down to job-00000.
        let at = (started + chrono::Duration::milliseconds(i)).timestamp_millis();
        enqueue(
            &producer,
            BaseRecord::to(&results)
                .key(id.as_str())
                .payload(payload.as_slice())
                .timestamp(at),
        )
        .expect("enqueue");
    }
    let dlq = format!("{topic}.dlq");
    for i in 0..1_000 {
        let id = format!("dead-{i:04}");
        let kind = if i % 2 == 0 { "tool_error" } else { "refused" };
        let headers = dead_letter_headers(&id, kind, "failed on purpose", &topic);
        let at = (started + chrono::Duration::milliseconds(i * 10)).timestamp_millis();
        enqueue(
            &producer,
            BaseRecord::to(&dlq)
                .key(id.as_str())
                .payload(b"{}".as_slice())
                .headers(headers)
                .timestamp(at),
        )
        .expect("enqueue");
    }
    producer.flush(MINUTE).expect("flush");

    let port = free_port();
    let _console = start_console(&broker, &topic, port, &[("CONSOLE_API_KEYS", "key")]);
    let client = Client::new();
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    let mut took = Vec::new();
    loop {
        let mut url = format!("http://127.0.0.1:{port}/api/outcomes?limit=100");
        if let Some(cursor) = &before {
            url.push_str(&format!("&before={cursor}"));
        }
        let asked = std::time::Instant::now();
        let (status, page) = get(&client, &url, Some("key"));
        took.push(asked.elapsed());
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(
            page["scanned"].as_u64().is_some_and(|n| n <= 300),
            "{}",
            page["scanned"]
        );
        let ids = page["outcomes"]
            .as_array()
            .expect("outcomes")
            .iter()
            .map(|o| o["jobID"].as_str().expect("jobID").to_owned());
        seen.extend(ids);
        match page["next"].as_str() {
            Some(next) => before = Some(next.to_owned()),
            None => break,
        }
        assert!(took.len() <= 200, "paging does not end");
    }
    let expected: Vec<String> = (0..10_000).rev().map(|i| format!("job-{i:05}")).collect();
    assert_eq!(seen.len(), expected.len());
    assert_eq!(seen, expected, "every record once, newest first");
    took.sort();
    eprintln!(
        "{} pages of 100 over 10,000 outcome records: p50 {:?}, p99 {:?}, max {:?}",
        took.len(),
        took[took.len() / 2],
        took[took.len() * 99 / 100],
        took[took.len() - 1]
    );

    let dlq_url = |query: &str| format!("http://127.0.0.1:{port}/api/dlq?{query}");
    let (_, refused) = get(&client, &dlq_url("kind=refused&limit=1000"), Some("key"));
    assert_eq!(refused["matched"], 500, "{}", refused["matched"]);
    assert!(refused["deadLetters"]
        .as_array()
        .is_some_and(|d| d.len() == 500 && d.iter().all(|l| l["kind"] == "refused")));
    let since = (started + chrono::Duration::milliseconds(9_000))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (_, recent) = get(
        &client,
        &dlq_url(&format!("kind=tool_error&since={since}&limit=10")),
        Some("key"),
    );
    assert_eq!(
        recent["matched"], 50,
        "dead letters 900–998 of tool_error: {}",
        recent["matched"]
    );
    assert_eq!(
        recent["deadLetters"][0]["jobID"], "dead-0998",
        "newest first"
    );
    assert_eq!(recent["deadLetters"].as_array().map(Vec::len), Some(10));
}

/// The value of `name="<field>"` in a page's first form that has it.
fn form_field(page: &str, field: &str) -> String {
    let marker = format!("name=\"{field}\" value=\"");
    page.split_once(&marker)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(value, _)| value.to_owned())
        .unwrap_or_default()
}

#[test]
fn logins_are_limited_logout_ends_the_session_and_every_answer_is_safe_to_show() {
    let broker = Broker::start();
    let topic = broker.name("console-safe");
    broker.create_job_topics(&topic, 1);
    let port = free_port();
    let console = start_console(&broker, &topic, port, &[("CONSOLE_API_KEYS", "the-key")]);
    let page = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    // Login: a session cookie, then the page asked for with its query.
    let login = client
        .post(page("/login"))
        .form(&[("key", "the-key"), ("next", "/dlq?kind=refused")])
        .send()
        .expect("login");
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    assert_eq!(login.headers()["location"], "/dlq?kind=refused");
    let cookie = mcp_jobs_e2e::session_cookie(&login);

    // Every answer: no framing, no sniffing, no caching behind the login.
    let dlq = client
        .get(page("/dlq"))
        .header("cookie", &cookie)
        .send()
        .expect("dlq");
    assert_eq!(dlq.status(), StatusCode::OK);
    let headers = dlq.headers().clone();
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers.contains_key("referrer-policy"));
    let csp = headers["content-security-policy"]
        .to_str()
        .unwrap_or_default();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let api = client.get(page("/api/dlq")).send().expect("api");
    assert_eq!(api.headers()["x-frame-options"], "DENY");

    // An unknown page: a page saying so, not an empty 404.
    let missing = client
        .get(page("/no-such-page"))
        .header("cookie", &cookie)
        .send()
        .expect("404");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let text = missing.text().unwrap_or_default();
    assert!(text.contains("There is no page at /no-such-page"), "{text}");

    // Logout revokes the session: the same cookie afterwards gets the login form.
    let body = dlq.text().unwrap_or_default();
    let (csrf, once) = (form_field(&body, "csrf"), form_field(&body, "once"));
    assert!(!csrf.is_empty() && once.len() == 32, "{body}");
    let logout = client
        .post(page("/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("once", once.as_str())])
        .send()
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    let after = client
        .get(page("/dlq"))
        .header("cookie", &cookie)
        .send()
        .expect("after logout");
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);

    // Login attempts: a few per address, then 429 with Retry-After.
    let statuses: Vec<(StatusCode, Option<String>)> = (0..30)
        .map(|_| {
            let response = client
                .post(page("/login"))
                .form(&[("key", "a-guess"), ("next", "/")])
                .send()
                .expect("login attempt");
            let retry = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            (response.status(), retry)
        })
        .collect();
    let limited: Vec<_> = statuses
        .iter()
        .filter(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(limited.len() >= 15, "{statuses:?}");
    assert!(
        limited.iter().all(|(_, retry)| retry
            .as_deref()
            .and_then(|r| r.parse::<u64>().ok())
            .is_some_and(|s| s >= 1)),
        "{statuses:?}"
    );
    // Even the right key waits its turn.
    let right = client
        .post(page("/login"))
        .form(&[("key", "the-key"), ("next", "/")])
        .send()
        .expect("login");
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
    let log = console.output();
    assert!(
        log.contains("too many attempts") && log.contains("127.0.0.1"),
        "{log}"
    );
}
