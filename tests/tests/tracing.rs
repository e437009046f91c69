//! One trace per job: a job published with a `traceparent` header produces spans from
//! kafka-worker and mcp-server in that trace, linked parent to child, and the upstream
//! MCP server receives the context in `_meta`. A job without one starts its own trace;
//! `kafka-worker publish` starts one and sends it along. The spans are exported over OTLP/HTTP
//! by the real exporters to an in-test receiver; the worker's JSON logs carry the
//! trace and job ids.

use std::process::Command;
use std::time::Duration;

use mcp_jobs_e2e::{
    bin, enqueue, fixture_job, outcomes_of, wait_for, Deployment, OtlpReceiver, ReceivedSpan,
    Status,
};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{json, Value};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PRODUCER_SPAN: &str = "00f067aa0ba902b7";

#[test]
fn a_job_is_one_trace_from_producer_to_upstream() {
    let receiver = OtlpReceiver::start();
    let endpoint = receiver.endpoint();
    let otel = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let deployment = Deployment::new("traced")
        .server_env(&otel)
        .worker_env(&[
            otel[0],
            otel[1],
            ("LOG_FORMAT", "json"),
            // The lifecycle (pkg/engine) logs each outcome, at DEBUG for a success.
            ("RUST_LOG", "info,mcp_jobs_engine=debug"),
        ])
        .start();
    let (broker, topic, _) = deployment.parts();
    let worker = &deployment.worker;

    let producer: BaseProducer = broker.client_config().create().expect("producer");
    let traced = fixture_job("traced-1", "meta", json!({})).to_string();
    let traceparent = format!("00-{TRACE_ID}-{PRODUCER_SPAN}-01");
    let headers = OwnedHeaders::new().insert(Header {
        key: "traceparent",
        value: Some(&traceparent),
    });
    enqueue(
        &producer,
        BaseRecord::<(), [u8]>::to(topic)
            .payload(traced.as_bytes())
            .headers(headers),
    )
    .expect("enqueue");
    let untraced = fixture_job("untraced-1", "echo", json!({ "text": "hi" })).to_string();
    enqueue(
        &producer,
        BaseRecord::<(), [u8]>::to(topic).payload(untraced.as_bytes()),
    )
    .expect("enqueue");
    producer.flush(Duration::from_secs(10)).expect("flush");
    // `kafka-worker publish` starts a trace of its own and sends its context along.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("job.json");
    let published = fixture_job("published-1", "echo", json!({ "text": "hi" }));
    std::fs::write(&file, published.to_string()).expect("job file");
    let status = Command::new(bin("kafka-worker"))
        .arg("publish")
        .arg(&file)
        .env("KAFKA_BROKERS", &broker.address)
        .env("KAFKA_TOPIC", topic)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .status()
        .expect("kafka-worker publish");
    assert!(status.success());
    let outcomes = outcomes_of(broker, topic, 3, Duration::from_secs(60));
    assert!(
        outcomes.iter().all(|o| o.status == Status::Succeeded),
        "{outcomes:#?}"
    );

    // Four spans per job: the worker's job and its call to mcp-server, mcp-server's tool
    // call and its call upstream. (The producer's span is the producer's to export.)
    let spans = wait_for("13 spans at the receiver", Duration::from_secs(30), || {
        let spans = receiver.spans();
        (spans.len() >= 13).then_some(spans)
    });
    let find = |service: &str, name: &str, trace: &str| -> ReceivedSpan {
        spans
            .iter()
            .find(|s| s.service == service && s.name == name && s.trace_id == trace)
            .cloned()
            .unwrap_or_else(|| panic!("no {service} span {name:?} in trace {trace}: {spans:#?}"))
    };

    let job = find("kafka-worker", "job", TRACE_ID);
    assert_eq!(
        job.parent_span_id, PRODUCER_SPAN,
        "child of the producer's span"
    );
    assert_eq!(job.attributes["job_id"], "traced-1");
    assert_eq!(job.attributes["job_type"], "tool-call");
    let call = find("kafka-worker", "tools/call call_tool", TRACE_ID);
    assert_eq!(call.parent_span_id, job.span_id);
    let served = find("mcp-server", "tools/call call_tool", TRACE_ID);
    assert_eq!(
        served.parent_span_id, call.span_id,
        "continues the worker's call"
    );
    assert_eq!(served.attributes["job_id"], "traced-1");
    let upstream = find("mcp-server", "tools/call fx", TRACE_ID);
    assert_eq!(upstream.parent_span_id, served.span_id);

    // The upstream server got the upstream call's context in `_meta`.
    let traced_outcome = outcomes
        .iter()
        .find(|o| o.job_id.as_deref() == Some("traced-1"))
        .expect("traced job's outcome");
    let meta = &traced_outcome.result("fx").expect("fx answered")["structuredContent"]["meta"];
    assert_eq!(
        meta["traceparent"],
        format!("00-{TRACE_ID}-{}-01", upstream.span_id),
        "{traced_outcome:#?}"
    );

    // A job without a traceparent starts its own trace, still one across both processes.
    let root = spans
        .iter()
        .find(|s| {
            s.name == "job" && s.attributes.get("job_id").map(String::as_str) == Some("untraced-1")
        })
        .unwrap_or_else(|| panic!("no job span for untraced-1: {spans:#?}"));
    assert_eq!(root.parent_span_id, "", "a root span");
    assert_ne!(root.trace_id, TRACE_ID);
    find("mcp-server", "tools/call call_tool", &root.trace_id);
    find("mcp-server", "tools/call fx", &root.trace_id);

    let publish = spans
        .iter()
        .find(|s| s.name == "publish")
        .unwrap_or_else(|| panic!("no publish span: {spans:#?}"));
    assert_eq!(publish.attributes["job_id"], "published-1");
    let published_job = find("kafka-worker", "job", &publish.trace_id);
    assert_eq!(published_job.parent_span_id, publish.span_id);
    assert_eq!(published_job.attributes["job_id"], "published-1");
    find("mcp-server", "tools/call fx", &publish.trace_id);

    // JSON logs: a line logged inside the job's span names the job and the trace.
    let logged = worker
        .output()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .any(|line| {
            line["spans"].as_array().is_some_and(|spans| {
                spans
                    .iter()
                    .any(|s| s["job_id"] == "traced-1" && s["trace_id"] == TRACE_ID)
            })
        });
    assert!(
        logged,
        "no JSON log line with the job and trace ids:\n{}",
        worker.output()
    );
}
