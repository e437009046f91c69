//! The contract against the seed's sample message and a catalogue of bad ones.

use mcp_jobs_contract::{
    ContractError, JobType, RemoteTransport, ScheduledJobEnvelope, ServerConfig,
};

/// The sample message of seeds/001 (payload as a JSON string), byte for byte.
const SEED_SAMPLE: &str = r#"{
  "jobID": "job-123",
  "jobType": "server-init",
  "payload": "{\"mcpServers\":{\"MariaDB_Server\":{\"command\":\"uv\",\"args\":[\"--directory\",\"path/to/server\",\"run\",\"server.py\"],\"envFile\":\"path/to/.env\"}}}"
}"#;

fn parse(text: &str) -> Result<ScheduledJobEnvelope, ContractError> {
    ScheduledJobEnvelope::from_slice(text.as_bytes())
}

#[test]
fn seed_sample_parses() {
    let job = parse(SEED_SAMPLE).expect("the seed's sample is a valid job");
    assert_eq!(job.job_id, "job-123");
    assert_eq!(job.job_type, JobType::ServerInit);
    let Some(ServerConfig::Stdio(server)) = job.mcp_servers.get("MariaDB_Server") else {
        panic!(
            "MariaDB_Server should be a stdio server: {:?}",
            job.mcp_servers
        );
    };
    assert_eq!(server.command, "uv");
    assert_eq!(
        server.args,
        ["--directory", "path/to/server", "run", "server.py"]
    );
    assert_eq!(server.env_file.as_deref(), Some("path/to/.env"));
    assert!(job.calls.is_empty());
}

#[test]
fn payload_as_object_with_remote_server_and_extras() {
    let job = parse(
        r#"{"jobID":"j","jobType":"tool-call","scheduledAt":"2026-11-21T10:00:00Z","timeoutMs":1500,
            "unknownField": true,
            "payload":{"mcpServers":{"remote":{"url":"https://tools.example.com/mcp","type":"sse","headers":{"Authorization":"Bearer x"}}},
                       "server":"remote","tool":"echo","arguments":{"message":"hi"}}}"#,
    )
    .expect("valid");
    assert_eq!(job.timeout, Some(std::time::Duration::from_millis(1500)));
    assert!(job.scheduled_at.is_some());
    let Some(ServerConfig::Remote(remote)) = job.mcp_servers.get("remote") else {
        panic!("remote server expected");
    };
    assert_eq!(remote.transport, RemoteTransport::Sse);
    assert_eq!(job.calls.len(), 1);
    assert_eq!(job.calls[0].tool, "echo");
    assert_eq!(job.calls[0].arguments["message"], "hi");
}

#[test]
fn calls_array_runs_in_order() {
    let job = parse(
        r#"{"jobID":"j","jobType":"tool-call","payload":{"mcpServers":{"a":{"command":"x"},"b":{"command":"y","type":"stdio"}},
            "calls":[{"server":"b","tool":"t1"},{"server":"a","tool":"t2","arguments":{"k":1}}]}}"#,
    )
    .expect("valid");
    let order: Vec<_> = job
        .calls
        .iter()
        .map(|c| (c.server.as_str(), c.tool.as_str()))
        .collect();
    assert_eq!(order, [("b", "t1"), ("a", "t2")]);
}

/// A call may name a server the job does not describe: one of mcp-server's servers
/// file, so that the job carries no secret; mcp-server says if there is none.
#[test]
fn a_call_may_name_a_server_of_mcp_servers_servers_file() {
    let job = parse(
        r#"{"jobID":"j","jobType":"tool-call","payload":{"server":"github","tool":"search","arguments":{"q":"x"}}}"#,
    )
    .expect("a tool-call naming a server only");
    assert!(job.mcp_servers.is_empty());
    assert_eq!(job.calls[0].server, "github");
    let mixed = parse(
        r#"{"jobID":"j","jobType":"tool-call","payload":{"mcpServers":{"s":{"command":"x"}},"calls":[{"server":"s","tool":"a"},{"server":"time","tool":"b"}]}}"#,
    )
    .expect("described and named servers in one job");
    assert_eq!(mixed.calls[1].server, "time");
    assert!(!mixed.mcp_servers.contains_key("time"));
}

#[test]
fn secrets_do_not_show_in_debug() {
    let job = parse(
        r#"{"jobID":"j","jobType":"list-tools","payload":{"mcpServers":{
            "s":{"command":"x","env":{"TOKEN":"hunter2"}},
            "r":{"url":"https://u:pw@example.com/mcp?key=topsecret","headers":{"Authorization":"Bearer sekrit"}}}}}"#,
    )
    .expect("valid");
    let shown = format!("{job:?}");
    for secret in ["hunter2", "sekrit", "topsecret", "pw@"] {
        assert!(!shown.contains(secret), "{secret} leaked into {shown}");
    }
    assert!(shown.contains("TOKEN"), "env names stay visible: {shown}");
}

#[test]
fn oversized_message_is_refused_before_parsing() {
    let err = ScheduledJobEnvelope::from_slice_limited(SEED_SAMPLE.as_bytes(), 10).unwrap_err();
    assert_eq!(
        err,
        ContractError::TooLarge {
            size: SEED_SAMPLE.len(),
            limit: 10
        }
    );
}

#[test]
fn job_id_is_recovered_from_a_refused_message() {
    let bad = r#"{"jobID":"keep-me","jobType":"nope","payload":{}}"#;
    assert_eq!(
        ScheduledJobEnvelope::job_id_of(bad.as_bytes()).as_deref(),
        Some("keep-me")
    );
    assert_eq!(ScheduledJobEnvelope::job_id_of(b"{not json"), None);
}

/// Each malformed message, the error kind it must give, and text the message must contain.
const MALFORMED: &[(&str, &str, &str, &str)] = &[
    (
        "truncated JSON",
        r#"{"jobID":"j","#,
        "malformed_json",
        "(message)",
    ),
    ("not an object", r#"[1,2,3]"#, "invalid_field", "(message)"),
    (
        "trailing garbage",
        r#"{"jobID":"j","jobType":"server-init","payload":{}} extra"#,
        "malformed_json",
        "(message)",
    ),
    (
        "missing jobID",
        r#"{"jobType":"server-init","payload":{"mcpServers":{"a":{"command":"x"}}}}"#,
        "missing_field",
        "`jobID`",
    ),
    (
        "jobID is a number",
        r#"{"jobID":5,"jobType":"server-init","payload":{}}"#,
        "invalid_field",
        "jobID",
    ),
    (
        "empty jobID",
        r#"{"jobID":"","jobType":"server-init","payload":{"mcpServers":{"a":{"command":"x"}}}}"#,
        "invalid_field",
        "jobID: must be 1 to 256",
    ),
    (
        "missing jobType",
        r#"{"jobID":"j","payload":{}}"#,
        "missing_field",
        "`jobType`",
    ),
    (
        "unknown jobType",
        r#"{"jobID":"j","jobType":"reboot","payload":{}}"#,
        "unknown_job_type",
        "\"reboot\"",
    ),
    (
        "missing payload",
        r#"{"jobID":"j","jobType":"server-init"}"#,
        "missing_field",
        "`payload`",
    ),
    (
        "payload is a number",
        r#"{"jobID":"j","jobType":"server-init","payload":42}"#,
        "invalid_field",
        "payload: must be a JSON object",
    ),
    (
        "payload string is not JSON",
        r#"{"jobID":"j","jobType":"server-init","payload":"{oops"}"#,
        "malformed_json",
        "payload",
    ),
    (
        "payload without mcpServers",
        r#"{"jobID":"j","jobType":"server-init","payload":{}}"#,
        "missing_field",
        "`payload.mcpServers`",
    ),
    (
        "mcpServers is an array",
        r#"{"jobID":"j","jobType":"server-init","payload":{"mcpServers":[]}}"#,
        "invalid_field",
        "payload.mcpServers",
    ),
    (
        "empty mcpServers",
        r#"{"jobID":"j","jobType":"server-init","payload":{"mcpServers":{}}}"#,
        "invalid_field",
        "describes no server",
    ),
    (
        "server with command and url",
        r#"{"jobID":"j","jobType":"server-init","payload":{"mcpServers":{"s":{"command":"x","url":"http://h/mcp"}}}}"#,
        "invalid_field",
        "payload.mcpServers.s: has both",
    ),
    (
        "server with neither",
        r#"{"jobID":"j","jobType":"server-init","payload":{"mcpServers":{"s":{"args":["a"]}}}}"#,
        "invalid_field",
        "payload.mcpServers.s: needs either",
    ),
    (
        "args not strings",
        r#"{"jobID":"j","jobType":"server-init","payload":{"mcpServers":{"s":{"command":"x","args":[1]}}}}"#,
        "invalid_field",
        "payload.mcpServers.s",
    ),
    (
        "env value not a string",
        r#"{"jobID":"j","jobType":"server-init","payload":{"mcpServers":{"s":{"command":"x","env":{"A":1}}}}}"#,
        "invalid_field",
        "payload.mcpServers.s",
    ),
    (
        "empty command",
        r#"{"jobID":"j","jobType":"server-init","payload":{"mcpServers":{"s":{"command":" "}}}}"#,
        "invalid_field",
        "`command` is empty",
    ),
    (
        "url not a URL",
        r#"{"jobID":"j","jobType":"server-init","payload":{"mcpServers":{"s":{"url":"not a url"}}}}"#,
        "invalid_field",
        "is not a URL",
    ),
    (
        "url with ftp scheme",
        r#"{"jobID":"j","jobType":"server-init","payload":{"mcpServers":{"s":{"url":"ftp://h/x"}}}}"#,
        "invalid_field",
        "must be http or https",
    ),
    (
        "unknown remote type",
        r#"{"jobID":"j","jobType":"server-init","payload":{"mcpServers":{"s":{"url":"http://h/mcp","type":"grpc"}}}}"#,
        "invalid_field",
        "\"grpc\" is not a remote transport",
    ),
    (
        "stdio with remote type",
        r#"{"jobID":"j","jobType":"server-init","payload":{"mcpServers":{"s":{"command":"x","type":"sse"}}}}"#,
        "invalid_field",
        "stdio `command`",
    ),
    (
        "tool-call without server",
        r#"{"jobID":"j","jobType":"tool-call","payload":{"mcpServers":{"s":{"command":"x"}},"tool":"t"}}"#,
        "missing_field",
        "`payload.server`",
    ),
    (
        "tool-call without tool",
        r#"{"jobID":"j","jobType":"tool-call","payload":{"mcpServers":{"s":{"command":"x"}},"server":"s"}}"#,
        "missing_field",
        "`payload.tool`",
    ),
    (
        "list-tools naming no server",
        r#"{"jobID":"j","jobType":"list-tools","payload":{}}"#,
        "missing_field",
        "payload.mcpServers",
    ),
    (
        "arguments not an object",
        r#"{"jobID":"j","jobType":"tool-call","payload":{"mcpServers":{"s":{"command":"x"}},"server":"s","tool":"t","arguments":[1]}}"#,
        "invalid_field",
        "payload.arguments",
    ),
    (
        "empty calls",
        r#"{"jobID":"j","jobType":"tool-call","payload":{"mcpServers":{"s":{"command":"x"}},"calls":[]}}"#,
        "invalid_field",
        "payload.calls: is empty",
    ),
    (
        "calls and server both",
        r#"{"jobID":"j","jobType":"tool-call","payload":{"mcpServers":{"s":{"command":"x"}},"server":"s","tool":"t","calls":[{"server":"s","tool":"t"}]}}"#,
        "invalid_field",
        "not both",
    ),
    (
        "timeoutMs negative",
        r#"{"jobID":"j","jobType":"server-init","timeoutMs":-5,"payload":{"mcpServers":{"s":{"command":"x"}}}}"#,
        "invalid_field",
        "timeoutMs",
    ),
    (
        "timeoutMs zero",
        r#"{"jobID":"j","jobType":"server-init","timeoutMs":0,"payload":{"mcpServers":{"s":{"command":"x"}}}}"#,
        "invalid_field",
        "timeoutMs: must be greater than 0",
    ),
    (
        "bad scheduledAt",
        r#"{"jobID":"j","jobType":"server-init","scheduledAt":"yesterday","payload":{"mcpServers":{"s":{"command":"x"}}}}"#,
        "invalid_field",
        "scheduledAt",
    ),
];

#[test]
fn malformed_messages_each_give_the_right_error() {
    assert!(MALFORMED.len() >= 20);
    for (name, message, kind, must_contain) in MALFORMED {
        let err = match parse(message) {
            Ok(job) => panic!("{name}: expected an error, parsed {job:?}"),
            Err(err) => err,
        };
        assert_eq!(
            err.kind().as_str(),
            *kind,
            "{name}: wrong kind for error {err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(must_contain),
            "{name}: {text:?} should mention {must_contain:?}"
        );
    }
}

#[test]
fn invalid_utf8_is_refused() {
    let err = parse_bytes(b"{\"jobID\":\"\xff\"}");
    assert_eq!(err, ContractError::NotUtf8 { at: 10 });
}

fn parse_bytes(bytes: &[u8]) -> ContractError {
    ScheduledJobEnvelope::from_slice(bytes).unwrap_err()
}

#[test]
fn a_refused_message_error_does_not_quote_its_secrets() {
    // serde quotes the value it refused: here an env given as a string.
    let message = serde_json::json!({"jobID": "j", "jobType": "tool-call", "payload": {
        "mcpServers": {"t": {"command": "nc", "env": "DB_PASSWORD=pa55word-xyz"}},
        "server": "t", "tool": "x"}});
    let error = parse(&message.to_string()).err().map(|e| e.to_string());
    let error = error.unwrap_or_default();
    assert!(error.contains("payload.mcpServers"), "{error}");
    assert!(!error.contains("pa55word-xyz"), "{error}");
}
