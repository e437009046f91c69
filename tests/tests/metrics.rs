//! `/metrics` of both binaries after a real run of jobs: the scrape is parsed and shows
//! exactly the jobs, calls and children that happened.

use std::time::Duration;

use mcp_jobs_e2e::{enqueue, fixture_job, free_port, outcomes_of, sample, scrape, Deployment};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::json;

#[test]
fn scrapes_count_what_happened() {
    let metrics_port = free_port();
    let deployment = Deployment::new("metrics")
        .partitions(2)
        .worker_env(&[("METRICS_PORT", &metrics_port.to_string())])
        .start();
    let (broker, topic, _) = deployment.parts();
    let server = &deployment.server;
    let worker = |path: &str| format!("http://127.0.0.1:{metrics_port}{path}");

    let producer: BaseProducer = broker.client_config().create().expect("producer");
    let mut messages: Vec<Vec<u8>> = (0..7)
        .map(|n| {
            fixture_job(&format!("ok-{n}"), "echo", json!({ "text": "hi" }))
                .to_string()
                .into_bytes()
        })
        .collect();
    messages.push(b"{ not json".to_vec());
    messages.push(br#"{"jobID": "typo", "jobType": "tool-cal", "payload": {}}"#.to_vec());
    for message in &messages {
        enqueue(
            &producer,
            BaseRecord::<(), [u8]>::to(topic).payload(message),
        )
        .expect("enqueue");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
    // The malformed message has no jobID: 8 distinct ids, 9 outcome records.
    let outcomes = outcomes_of(broker, topic, 8, Duration::from_secs(60));
    assert_eq!(outcomes.len(), 9);

    for path in ["/health", "/ready"] {
        let status = reqwest::blocking::get(worker(path)).expect(path).status();
        assert!(status.is_success(), "{path}: {status}");
    }
    let jobs = scrape(&worker("/metrics"));
    let jobs_total = |labels: &[(&str, &str)]| sample(&jobs, "mcp_jobs_jobs_total", labels);
    assert_eq!(
        jobs_total(&[("job_type", "tool-call"), ("outcome", "succeeded")]),
        Some(7.0)
    );
    assert_eq!(
        jobs_total(&[("job_type", "invalid"), ("outcome", "failed")]),
        Some(2.0),
        "the two bad messages were dead-lettered"
    );
    assert_eq!(
        sample(
            &jobs,
            "mcp_jobs_job_duration_seconds_count",
            &[("job_type", "tool-call")]
        ),
        Some(7.0)
    );
    assert_eq!(sample(&jobs, "mcp_jobs_jobs_in_flight", &[]), Some(0.0));

    let served = scrape(&server.endpoint("/metrics"));
    assert_eq!(
        sample(
            &served,
            "mcp_server_tool_calls_total",
            &[("tool", "call_tool"), ("outcome", "ok")]
        ),
        Some(7.0)
    );
    assert_eq!(
        sample(&served, "mcp_server_pool_spawns_total", &[]),
        Some(1.0)
    );
    assert_eq!(sample(&served, "mcp_server_pool_children", &[]), Some(1.0));
    assert!(sample(
        &served,
        "mcp_server_http_requests_total",
        &[("path", "/mcp"), ("status", "200")]
    )
    .is_some_and(|n| n >= 7.0));
}
