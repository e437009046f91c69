//! Named servers from `MCP_SERVERS_FILE`, on a real mcp-server: each at its own MCP
//! endpoint for the official Python SDK client in both protocol revisions; listed at
//! `GET /servers` with their health and never their secrets; reloaded when the file
//! changes and on SIGHUP; a bad file refused (at start mcp-server does not start, later
//! the servers in force are kept).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mcp_jobs_e2e::{
    bin, fixture, free_port, server_everything, server_filesystem_entry, tool_result, wait_for,
    worker_command, Deployment, McpServer, Status, API_KEY,
};
use nix::sys::signal::Signal;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A secret only the servers file's `${FX_TOKEN}` and mcp-server's environment hold.
const SECRET: &str = "fx-secret-4711";
const RELOAD: Duration = Duration::from_secs(15);

fn write(path: &Path, servers: Value) {
    std::fs::write(path, json!({ "mcpServers": servers }).to_string()).expect("servers file");
}

/// `GET /servers` with the test key: the raw body and the listing by name.
fn listing(server: &McpServer) -> (String, Value) {
    let body = reqwest::blocking::Client::new()
        .get(server.endpoint("/servers"))
        .bearer_auth(API_KEY)
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.text())
        .expect("GET /servers");
    let parsed: Value = serde_json::from_str(&body).expect("JSON");
    let by_name = parsed["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|s| (s["name"].as_str().unwrap_or_default().to_owned(), s.clone()))
        .collect::<serde_json::Map<_, _>>();
    (body, Value::Object(by_name))
}

fn names(listed: &Value) -> Vec<&str> {
    listed
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn named_servers_are_listed_with_their_health_and_never_their_secrets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("servers.json");
    write(
        &file,
        json!({
            "time": {"command": "mcp-server-time", "disabled": false},
            "fx": {"command": fixture(), "env": {"FX_TOKEN": "${FX_TOKEN}"}},
            "shell": {"command": "sh"},
            "vouched": {"command": "sh", "mcpJobs": {"trusted": true}},
            "remote": {"url": "https://user:${FX_TOKEN}@mcp.example.com/mcp",
                       "headers": {"Authorization": "Bearer ${FX_TOKEN}"}},
        }),
    );
    let path = file.display().to_string();
    let server = McpServer::start(&[("MCP_SERVERS_FILE", &path), ("FX_TOKEN", SECRET)]);

    let anonymous = reqwest::blocking::get(server.endpoint("/servers")).expect("GET");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let (body, listed) = listing(&server);
    assert!(!body.contains(SECRET), "{body}");
    assert_eq!(names(&listed), ["fx", "remote", "shell", "time", "vouched"]);
    assert_eq!(listed["time"]["transport"], "stdio");
    assert_eq!(listed["time"]["target"], "mcp-server-time");
    assert_eq!(listed["time"]["health"]["state"], "idle", "{body}");
    assert_eq!(listed["fx"]["health"]["state"], "idle", "{body}");
    let shell = &listed["shell"]["health"];
    assert_eq!(shell["state"], "refused", "{body}");
    assert!(
        shell["reason"].as_str().is_some_and(|r| r.contains("sh")),
        "{body}"
    );
    assert_eq!(listed["vouched"]["trusted"], true);
    assert_eq!(
        listed["vouched"]["health"]["state"], "idle",
        "a trusted server is not held to the allowlist: {body}"
    );
    assert_eq!(listed["remote"]["transport"], "streamable-http");
    assert_eq!(listed["remote"]["target"], "https://mcp.example.com");
    assert_eq!(listed["remote"]["health"]["state"], "refused", "{body}");

    // A call with the same config shares its pooled child: the server is up.
    let called = server.call(
        "call_tool",
        json!({"serverName": "time", "config": {"command": "mcp-server-time"},
               "tool": "get_current_time", "arguments": {"timezone": "UTC"}}),
    );
    assert!(called["result"].is_object(), "{called}");
    let (body, listed) = listing(&server);
    let time = &listed["time"]["health"];
    assert_eq!(time["state"], "up", "{body}");
    assert_eq!(time["children"], 1, "{body}");
    assert!(
        !server.process.output().contains(SECRET),
        "the log holds no secret"
    );
}

#[test]
fn the_file_is_reloaded_on_change_and_on_sighup_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("servers.json");
    write(&file, json!({"time": {"command": "mcp-server-time"}}));
    let path = file.display().to_string();
    let server = McpServer::start(&[("MCP_SERVERS_FILE", &path), ("FX_TOKEN", SECRET)]);
    assert_eq!(names(&listing(&server).1), ["time"]);

    write(
        &file,
        json!({"time": {"command": "mcp-server-time"}, "fx": {"command": fixture()}}),
    );
    wait_for("the added server", RELOAD, || {
        (names(&listing(&server).1) == ["fx", "time"]).then_some(())
    });
    server
        .process
        .wait_for_output("servers file reloaded", 1, RELOAD);

    write(
        &file,
        json!({"x": {"url": "http://127.0.0.1/mcp", "headers": {"K": "${NOT_SET_ANYWHERE}"}}}),
    );
    server
        .process
        .wait_for_output("servers file refused", 1, RELOAD);
    let log = server.process.output();
    assert!(
        log.contains("mcpServers.x.headers.K: ${NOT_SET_ANYWHERE} is not set"),
        "{log}"
    );
    assert_eq!(
        names(&listing(&server).1),
        ["fx", "time"],
        "the servers in force are kept"
    );

    std::fs::write(&file, "{ not json").expect("write");
    server
        .process
        .wait_for_output("servers file refused", 2, RELOAD);
    assert_eq!(names(&listing(&server).1), ["fx", "time"]);

    write(&file, json!({"time": {"command": "mcp-server-time"}}));
    wait_for("the removed server", RELOAD, || {
        (names(&listing(&server).1) == ["time"]).then_some(())
    });
    let reloads = server
        .process
        .output()
        .matches("servers file reloaded")
        .count();
    server.process.signal(Signal::SIGHUP);
    server
        .process
        .wait_for_output("servers file reloaded", reloads + 1, RELOAD);
    assert!(server.process.output().contains("named servers loaded"));
}

#[test]
fn a_bad_servers_file_stops_mcp_server_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("servers.json");
    write(&file, json!({"fx": {"command": "x", "args": "--flag"}}));
    let refused = Command::new(bin("mcp-server"))
        .env("MCP_API_KEYS", API_KEY)
        .env("MCP_SERVERS_FILE", &file)
        .env("PORT", free_port().to_string())
        .output()
        .expect("run mcp-server");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("mcpServers.fx.args"), "{stderr}");
}

/// An official SDK's client (`program` running `script`, under tests/) against a named
/// endpoint, given `args` after the URL and key (a connection mode first): its output.
fn sdk_host(program: &str, script: &str, url: &str, args: &[&str]) -> String {
    let mode = args.first().copied().unwrap_or_default();
    let output = Command::new(program)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(script))
        .args([url, API_KEY])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/install-deps.sh installs the SDKs)"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{script} in mode {mode} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn an_mcp_host_uses_a_named_servers_own_tools_resources_prompts_and_completions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("servers.json");
    let shared = tempfile::tempdir().expect("temp dir");
    let shared = std::fs::canonicalize(shared.path()).expect("canonical dir");
    std::fs::write(shared.join("notes.txt"), "through the gateway\n").expect("file");
    // Not on the test server's allowlist: the operator vouches for it.
    let files = json!({"command": "node",
                       "args": [server_filesystem_entry(), shared.display().to_string()],
                       "mcpJobs": {"trusted": true}});
    write(
        &file,
        json!({"everything": server_everything(), "time": {"command": "mcp-server-time"},
               "files": files}),
    );
    let path = file.display().to_string();
    let server = McpServer::start(&[("MCP_SERVERS_FILE", &path)]);
    let everything = server.endpoint("/servers/everything/mcp");
    for mode in ["2026-07-28", "legacy", "auto"] {
        let said = sdk_host("python3", "python/named_client.py", &everything, &[mode]);
        eprintln!("{said}");
        assert!(said.contains("completion: ['Engineering']"), "{said}");
        let said = sdk_host("node", "node/named-client.mjs", &everything, &[mode]);
        eprintln!("{said}");
        assert!(said.contains("completion: Engineering"), "{said}");
    }

    // The inspector CLI, as a person trying a server would.
    let inspect = |args: &[&str]| -> Value {
        let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("node/node_modules");
        let output = Command::new(modules.join(".bin/mcp-inspector-cli"))
            .current_dir(&modules)
            .args([
                "--cli",
                &server.endpoint("/servers/time/mcp"),
                "--transport",
                "http",
            ])
            .args(["--header", &format!("Authorization: Bearer {API_KEY}")])
            .args(args)
            .output()
            .expect("the inspector CLI (scripts/install-deps.sh installs it)");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "inspector {args:?}: {stdout}");
        serde_json::from_str(&stdout[stdout.find('{').unwrap_or(0)..])
            .unwrap_or_else(|e| panic!("{e}: {stdout}"))
    };
    let listed = inspect(&["--method", "tools/list"]);
    assert_eq!(listed["tools"][0]["name"], "get_current_time", "{listed}");
    let called = inspect(&[
        "--method",
        "tools/call",
        "--tool-name",
        "get_current_time",
        "--tool-arg",
        "timezone=Europe/Paris",
    ]);
    assert_eq!(
        called["structuredContent"]["timezone"], "Europe/Paris",
        "{called}"
    );

    // server-filesystem's own tools, on the directory the operator gave it.
    let read = McpServer::call_url(
        &server.endpoint("/servers/files/mcp"),
        "read_text_file",
        json!({"path": shared.join("notes.txt").display().to_string()}),
    );
    assert_eq!(
        read["result"]["content"][0]["text"], "through the gateway\n",
        "{read}"
    );

    // A plain JSON-RPC call, as a script would make it.
    let answer = McpServer::call_url(
        &server.endpoint("/servers/time/mcp"),
        "get_current_time",
        json!({"timezone": "Asia/Tokyo"}),
    );
    assert_eq!(
        answer["result"]["structuredContent"]["timezone"], "Asia/Tokyo",
        "{answer}"
    );

    let client = reqwest::blocking::Client::new();
    let unknown = client
        .post(server.endpoint("/servers/nowhere/mcp"))
        .bearer_auth(API_KEY)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .expect("POST");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let anonymous = client
        .post(&everything)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .expect("POST");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn a_key_scoped_to_some_servers_finds_the_others_and_the_meta_tools_absent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("servers.json");
    write(
        &file,
        json!({"time": {"command": "mcp-server-time"}, "fx": {"command": fixture()}}),
    );
    let path = file.display().to_string();
    let keys = format!("{API_KEY}, ide-key servers=time");
    let server = McpServer::start(&[("MCP_SERVERS_FILE", &path), ("MCP_API_KEYS", &keys)]);
    let client = reqwest::blocking::Client::new();
    let status_of = |method: reqwest::Method, path: &str, key: &str| {
        client
            .request(method, server.endpoint(path))
            .bearer_auth(key)
            .header("Accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send()
            .expect("request")
            .status()
    };
    for (method, path) in [
        (Method::POST, "/servers/fx/mcp"),
        (Method::POST, "/mcp"),
        (Method::GET, "/tools"),
        (Method::GET, "/stats"),
    ] {
        assert_eq!(
            status_of(method.clone(), path, "ide-key"),
            StatusCode::NOT_FOUND,
            "{path}"
        );
        assert_ne!(
            status_of(method, path, API_KEY),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(
        status_of(Method::POST, "/servers/time/mcp", "ide-key"),
        StatusCode::OK
    );
    let listed: Value = client
        .get(server.endpoint("/servers"))
        .bearer_auth("ide-key")
        .send()
        .and_then(|r| r.json())
        .expect("GET /servers");
    let names: Vec<&str> = listed["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["time"], "only the servers the key may use");
    assert_eq!(names_of_full_listing(&server), ["fx", "time"]);
}

fn names_of_full_listing(server: &McpServer) -> Vec<String> {
    names(&listing(server).1)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// A job names a server of the servers file instead of describing it: it runs there,
/// and its secret is on no topic; a name that is nowhere fails once, as the job's fault.
#[test]
fn a_job_naming_a_server_carries_no_secret() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("servers.json");
    write(
        &file,
        json!({"fx": {"command": fixture(), "env": {"FX_TOKEN": "${FX_TOKEN}"}}}),
    );
    let path = file.display().to_string();
    let deployment = Deployment::new("named-jobs")
        .server_env(&[("MCP_SERVERS_FILE", &path), ("FX_TOKEN", SECRET)])
        .start();
    let job = |id: &str, server: &str| {
        json!({"jobID": id, "jobType": "tool-call",
               "payload": {"server": server, "tool": "echo", "arguments": {"text": "named"}}})
        .to_string()
        .into_bytes()
    };
    deployment.publish(&[
        (None, job("by-name", "fx")),
        (None, job("nowhere", "no-such-server")),
    ]);
    let outcomes = deployment.outcomes_by_job(2);
    let by_name = &outcomes["by-name"];
    assert_eq!(by_name.status, Status::Succeeded, "{by_name:?}");
    let nowhere = &outcomes["nowhere"];
    assert_eq!(nowhere.status, Status::Failed);
    assert_eq!(nowhere.error_kind(), Some("unknown_server"));
    assert_eq!(nowhere.attempts, 1, "the job's fault: not retried");
    assert!(
        nowhere
            .error_message()
            .is_some_and(|m| m.contains("no-such-server") && m.contains("MCP_SERVERS_FILE")),
        "{nowhere:?}"
    );

    // `kafka-worker publish` asks mcp-server first: a name it lacks is refused before
    // anything is published, one it has goes out.
    let dir_jobs = tempfile::tempdir().expect("temp dir");
    let publish = |id: &str, server: &str| {
        let file = dir_jobs.path().join(format!("{id}.json"));
        std::fs::write(&file, job(id, server)).expect("job file");
        let url = deployment.server.url();
        worker_command(
            &deployment.broker,
            &deployment.topic,
            "cli",
            &[("MCP_SERVER_URL", &url)],
        )
        .args(["publish", &file.display().to_string()])
        .output()
        .expect("kafka-worker publish")
    };
    let schedules = dir_jobs.path().join("schedules.json");
    let nightly = json!({"schedules": [{"name": "nightly", "cron": "0 3 * * *",
        "job": {"jobType": "tool-call", "payload": {"server": "fxx", "tool": "echo"}}}]});
    std::fs::write(&schedules, nightly.to_string()).expect("schedules file");
    let url = deployment.server.url();
    let applied = worker_command(
        &deployment.broker,
        &deployment.topic,
        "cli",
        &[("MCP_SERVER_URL", &url)],
    )
    .args(["schedules", "apply", &schedules.display().to_string()])
    .output()
    .expect("kafka-worker schedules apply");
    let said = String::from_utf8_lossy(&applied.stderr);
    assert!(!applied.status.success(), "{said}");
    assert!(said.contains("the schedules file names servers"), "{said}");
    let refused = publish("typo", "fxx");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("[\"fxx\"]") && said.contains("does not have"),
        "{said}"
    );
    let accepted = publish("checked", "fx");
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    let outcomes = deployment.outcomes_by_job(3);
    assert_eq!(outcomes["checked"].status, Status::Succeeded);
    assert!(
        !outcomes.contains_key("typo"),
        "nothing was published for the typo"
    );

    let topic = &deployment.topic;
    for name in [
        topic.clone(),
        format!("{topic}.results"),
        format!("{topic}.dlq"),
    ] {
        for record in deployment.broker.read_all(&name) {
            let text = String::from_utf8_lossy(&record.payload).into_owned();
            assert!(!text.contains(SECRET), "{name} holds the secret: {text}");
            assert!(
                record.headers.iter().all(|(_, v)| !v.contains(SECRET)),
                "{name}'s headers hold the secret"
            );
        }
    }
}

/// `tools/call` of `tool` at a named endpoint, bounded: the JSON-RPC answer, or why
/// there was none.
fn call_named(
    client: &reqwest::blocking::Client,
    server: &McpServer,
    name: &str,
    tool: &str,
    arguments: Value,
) -> Result<Value, String> {
    client
        .post(server.endpoint(&format!("/servers/{name}/mcp")))
        .bearer_auth(API_KEY)
        .header("Accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": tool, "arguments": arguments}}))
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .map_err(|e| e.to_string())
}

/// Callers hammer a named server while the file is rewritten and reloaded (the
/// server's own config changed twice, others added and removed, SIGHUP): no call fails.
/// Then a child crashes under load: every caller gets an answer (a result, or an error
/// that says the upstream went away), none hangs, and the pool starts it again.
#[test]
fn reloads_under_load_fail_no_call_and_a_crash_under_load_hangs_none() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("servers.json");
    let fx = |generation: u32| json!({"command": fixture(), "env": {"GENERATION": generation.to_string()}});
    write(&file, json!({"fx": fx(1)}));
    let path = file.display().to_string();
    let server = McpServer::start(&[("MCP_SERVERS_FILE", &path)]);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let answers = std::thread::scope(|scope| {
        let callers: Vec<_> = (0..4)
            .map(|caller| {
                let (client, server, stop) = (&client, &server, &stop);
                scope.spawn(move || {
                    let mut answers = Vec::new();
                    let mut n = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        n += 1;
                        let text = format!("{caller}-{n}");
                        answers.push((
                            text.clone(),
                            call_named(client, server, "fx", "echo", json!({"text": text})),
                        ));
                    }
                    answers
                })
            })
            .collect();
        for (generation, extra) in [(1, "a"), (2, "b"), (3, "c")] {
            std::thread::sleep(Duration::from_millis(1500));
            write(
                &file,
                json!({"fx": fx(generation), extra: {"command": "mcp-server-time"}}),
            );
            server.process.signal(Signal::SIGHUP);
        }
        std::thread::sleep(Duration::from_millis(1500));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        callers
            .into_iter()
            .flat_map(|caller| caller.join().expect("caller"))
            .collect::<Vec<_>>()
    });
    assert!(answers.len() > 100, "only {} calls", answers.len());
    for (text, answer) in &answers {
        let answer = answer
            .as_ref()
            .unwrap_or_else(|e| panic!("call {text}: {e}"));
        assert_eq!(answer["result"]["isError"], false, "call {text}: {answer}");
        assert_eq!(
            answer["result"]["content"][0]["text"], *text,
            "call {text}: {answer}"
        );
    }
    eprintln!("{} calls across 3 reloads, none failed", answers.len());

    let crashed = std::thread::scope(|scope| {
        let callers: Vec<_> = (0..4)
            .map(|caller| {
                let (client, server) = (&client, &server);
                scope.spawn(move || {
                    (0..50)
                        .map(|n| {
                            let text = format!("after-{caller}-{n}");
                            call_named(client, server, "fx", "echo", json!({"text": text}))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let crash = call_named(&client, &server, "fx", "crash", json!({}));
        let answers: Vec<_> = callers
            .into_iter()
            .flat_map(|caller| caller.join().expect("caller"))
            .collect();
        (crash, answers)
    });
    let (crash, answers) = crashed;
    let crash = crash.expect("the crashing call is answered");
    assert_eq!(crash["result"]["isError"], true, "{crash}");
    let mut failed = 0;
    for answer in &answers {
        let answer = answer.as_ref().expect("every call is answered, none hangs");
        if answer["result"]["isError"] == true {
            failed += 1;
            let said = answer["result"]["content"][0]["text"]
                .as_str()
                .unwrap_or_default();
            assert!(said.contains("fx"), "a failure names its server: {answer}");
        }
    }
    assert!(failed < answers.len(), "the pool started the child again");
    let after =
        call_named(&client, &server, "fx", "echo", json!({"text": "again"})).expect("answered");
    assert_eq!(after["result"]["content"][0]["text"], "again", "{after}");
    eprintln!(
        "crash under load: {} calls, {failed} failed with the crash",
        answers.len()
    );
}

/// A caller that goes away mid-call (its connection closed) cancels the call, at a named
/// endpoint and through the meta-tool, with or without progress: the pooled child's
/// slot is free at once, not when the tool ends.
#[test]
fn a_caller_that_goes_away_cancels_its_call() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("servers.json");
    write(&file, json!({"fx": {"command": fixture()}}));
    let path = file.display().to_string();
    let server = McpServer::start(&[("MCP_SERVERS_FILE", &path)]);
    let impatient = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(800))
        .build()
        .expect("client");
    let sleep = json!({"ms": 20000});
    // The same call at the named endpoint, and through the meta-tool (the same config,
    // so the same pooled child).
    let calls = [
        (
            "/servers/fx/mcp",
            json!({"name": "sleep", "arguments": sleep}),
        ),
        (
            "/mcp",
            json!({"name": "call_tool", "arguments": {"serverName": "fx",
            "config": {"command": fixture()}, "tool": "sleep", "arguments": sleep}}),
        ),
    ];
    for ((path, params), meta) in calls
        .iter()
        .flat_map(|call| [(call, json!({})), (call, json!({"progressToken": "p1"}))])
    {
        let mut params = params.clone();
        params["_meta"] = meta;
        let gone = impatient
            .post(server.endpoint(path))
            .bearer_auth(API_KEY)
            .header("Accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}))
            .send()
            .and_then(|r| r.text());
        assert!(
            gone.is_err(),
            "the 20 s call outlived its caller's 0.8 s: {gone:?}"
        );
        wait_for("the cancelled call's slot", Duration::from_secs(5), || {
            let (_, listed) = listing(&server);
            (listed["fx"]["health"]["inFlight"] == 0).then_some(())
        });
    }
}

/// A tool that asks its caller (sampling, elicitation; tests/python/reference_server.py),
/// through a named endpoint: a 2026-07-28 host answers the upstream's input-required
/// result itself; a legacy host is asked on its session (the server's `sessions`
/// option), and refused at once where it has none; a meta-tool call, with nobody to
/// ask, declines the elicitation and cannot sample.
#[test]
fn a_tool_that_asks_its_caller_reaches_the_host_in_every_revision() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("servers.json");
    let reference = |options: Value| {
        json!({"command": "python3",
               "args": [mcp_jobs_e2e::python_script("reference_server.py"), "stdio"],
               "mcpJobs": options})
    };
    write(
        &file,
        json!({
            "reference": reference(json!({"trusted": true})),
            "with-sessions": reference(json!({"trusted": true, "sessions": true})),
        }),
    );
    let path = file.display().to_string();
    let server = McpServer::start(&[("MCP_SERVERS_FILE", &path)]);
    let stateless = server.endpoint("/servers/reference/mcp");
    let sessions = server.endpoint("/servers/with-sessions/mcp");
    for (url, mode, expect) in [
        (&stateless, "2026-07-28", "answered"),
        (&sessions, "2026-07-28", "answered"),
        (&sessions, "legacy", "answered"),
        (&stateless, "legacy", "refused"),
    ] {
        let said = sdk_host("python3", "python/asking_client.py", url, &[mode, expect]);
        eprintln!("{said}");
    }

    let declined = server.call(
        "call_tool",
        json!({"serverName": "reference", "tool": "test_elicitation",
               "arguments": {"message": "anyone there?"}}),
    );
    let (is_error, _, text) = tool_result(&declined);
    assert!(!is_error, "{declined:#}");
    assert!(text.contains("action=decline"), "{text}");
    let unsampled = server.call(
        "call_tool",
        json!({"serverName": "reference", "tool": "test_sampling",
               "arguments": {"prompt": "anyone there?"}}),
    );
    assert_eq!(
        unsampled["error"]["data"]["kind"], "upstream_rejected",
        "{unsampled:#}"
    );
    let message = unsampled["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("asked its caller for input"),
        "{unsampled:#}"
    );
}
