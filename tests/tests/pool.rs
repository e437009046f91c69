//! mcp-server's supervised pool under abuse: many configs, children that crash, hang,
//! or ignore stdin EOF behind `sh -c`. Afterwards the pool is within its bounds, no
//! child is a zombie, and nothing is left once the server exits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mcp_jobs_e2e::{fixture, processes, processes_with_env, wait_for, McpServer};
use serde_json::{json, Value};

const CONFIGS: usize = 50;
const CALLS: usize = 500;
const MAX_TOTAL: usize = 8;

/// The kinds of child among the configs, by `config % 5`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// The fixture itself: answers, and sometimes crashes mid-call.
    Plain,
    /// The fixture behind `sh -c`, exec'd.
    Wrapped,
    /// Behind `sh -c` that ignores SIGTERM and, once the fixture exits on stdin EOF,
    /// sleeps on: only a SIGKILL to the group ends it.
    IgnoresEof,
    /// Answers, but its tool sleeps past the call's deadline.
    Slow,
    /// Never speaks MCP at all.
    Silent,
}

fn kind(config: usize) -> Kind {
    [
        Kind::Plain,
        Kind::Wrapped,
        Kind::IgnoresEof,
        Kind::Slow,
        Kind::Silent,
    ][config % 5]
}

fn server_config(config: usize, marker: &str) -> Value {
    let fixture = fixture();
    let env = json!({ "POOL_TEST_MARKER": marker, "CONFIG": config.to_string() });
    match kind(config) {
        Kind::Plain | Kind::Slow => json!({ "command": fixture, "env": env }),
        Kind::Wrapped => {
            json!({ "command": "sh", "args": ["-c", format!("exec {fixture}")], "env": env })
        }
        Kind::IgnoresEof => json!({
            "command": "sh",
            "args": ["-c", format!("trap '' TERM; {fixture}; sleep 600")],
            "env": env,
        }),
        Kind::Silent => json!({ "command": "sh", "args": ["-c", "sleep 600"], "env": env }),
    }
}

#[test]
fn the_pool_stays_bounded_and_leaves_nothing_behind() {
    let marker = format!("pool-{}", std::process::id());
    let mut server = McpServer::start(&[
        ("MCP_ALLOWED_COMMANDS", &format!("sh,{}", fixture())),
        ("MCP_POOL_MAX_TOTAL", &MAX_TOTAL.to_string()),
        ("MCP_POOL_MAX_PER_SERVER", "2"),
        ("MCP_POOL_MAX_CALLS_PER_CHILD", "4"),
        ("MCP_POOL_RESTART_BACKOFF_MS", "20"),
        ("MCP_POOL_RESTART_BACKOFF_MAX_MS", "200"),
    ]);

    let next = AtomicUsize::new(0);
    let tally: Vec<(Kind, &'static str)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..16)
            .map(|_| {
                scope.spawn(|| {
                    let mut seen = Vec::new();
                    loop {
                        let call = next.fetch_add(1, Ordering::Relaxed);
                        if call >= CALLS {
                            return seen;
                        }
                        seen.push(one_call(&server, call, &marker));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("caller thread"))
            .collect()
    });

    let count = |k: Kind, outcome: &str| tally.iter().filter(|t| **t == (k, outcome)).count();
    let of_kind = |k: Kind| tally.iter().filter(|(kind, _)| *kind == k).count();
    println!("outcomes: {:?}", summary(&tally));
    assert_eq!(tally.len(), CALLS);
    assert!(count(Kind::Plain, "crashed") > 0, "some children crashed");
    assert!(count(Kind::Plain, "answered") > 0);
    for wrapped in [Kind::Wrapped, Kind::IgnoresEof] {
        assert_eq!(
            count(wrapped, "answered"),
            of_kind(wrapped),
            "{wrapped:?} children answer every call"
        );
    }
    assert_eq!(
        count(Kind::Slow, "timed out") + count(Kind::Slow, "unavailable"),
        of_kind(Kind::Slow),
        "a tool past its deadline fails within it"
    );
    assert!(count(Kind::Slow, "timed out") > 0);
    assert_eq!(
        count(Kind::Silent, "timed out") + count(Kind::Silent, "unavailable"),
        of_kind(Kind::Silent),
        "a child that never answers fails every call, within its deadline"
    );

    let stats = server.stats();
    let pool = &stats["pool"];
    assert!(
        pool["children"]
            .as_u64()
            .is_some_and(|n| n <= MAX_TOTAL as u64),
        "{pool:#}"
    );
    assert!(
        pool["evicted"].as_u64() > Some(0),
        "50 configs through 8 slots evict: {pool:#}"
    );
    assert!(pool["crashed"].as_u64() > Some(0), "{pool:#}");

    // Direct children of the server: within the bound, and none left unreaped once
    // the closes under way have finished.
    wait_for(
        "children within the bound and no zombie",
        Duration::from_secs(15),
        || {
            let children: Vec<_> = processes()
                .into_iter()
                .filter(|p| p.parent == server.process.pid())
                .collect();
            let zombies = children.iter().filter(|p| p.state == 'Z').count();
            (children.len() <= MAX_TOTAL && zombies == 0).then_some(())
        },
    );
    assert!(
        !processes_with_env("POOL_TEST_MARKER", &marker).is_empty(),
        "the pool keeps some children warm"
    );

    let status = server.process.terminate(Duration::from_secs(20));
    assert!(status.success(), "mcp-server exits cleanly: {status}");
    // SIGKILLed processes vanish from /proc a moment after the kill.
    wait_for(
        "no process of the pool left after mcp-server exited",
        Duration::from_secs(5),
        || {
            processes_with_env("POOL_TEST_MARKER", &marker)
                .is_empty()
                .then_some(())
        },
    );
}

/// Makes call number `call` and says how it ended. Calls come in runs of ten per
/// config, the way jobs for one server tend to arrive together.
fn one_call(server: &McpServer, call: usize, marker: &str) -> (Kind, &'static str) {
    let config = (call / 10) % CONFIGS;
    let kind = kind(config);
    let (tool, arguments, timeout_ms) = match kind {
        Kind::Plain if call.is_multiple_of(4) => ("crash", json!({}), 5_000),
        Kind::Slow => ("sleep", json!({ "ms": 3_000 }), 300),
        Kind::Silent => ("echo", json!({}), 300),
        _ => ("echo", json!({ "text": format!("call {call}") }), 10_000),
    };
    let response = server.call(
        "call_tool",
        json!({
            "serverName": format!("config-{config}"),
            "config": server_config(config, marker),
            "tool": tool,
            "arguments": arguments,
            "timeoutMs": timeout_ms,
        }),
    );
    let error = &response["error"];
    let outcome = match error["data"]["kind"].as_str() {
        None => {
            assert_eq!(
                response["result"]["content"][0]["text"],
                format!("call {call}"),
                "{response:#}"
            );
            "answered"
        }
        Some("upstream_unavailable")
            if error["message"]
                .as_str()
                .is_some_and(|m| m.contains("went away mid-call")) =>
        {
            "crashed"
        }
        // A crash's restart backoff, or a silent child's, outlasting the call's
        // deadline; or a crash of the child another call was using.
        Some("upstream_unavailable") => "unavailable",
        Some("upstream_timeout") => "timed out",
        Some(other) => panic!("call {call} ({kind:?}) failed as {other}: {response:#}"),
    };
    (kind, outcome)
}

fn summary(tally: &[(Kind, &'static str)]) -> Vec<((Kind, &'static str), usize)> {
    let mut counts: Vec<((Kind, &'static str), usize)> = Vec::new();
    for t in tally {
        match counts.iter_mut().find(|(k, _)| k == t) {
            Some((_, n)) => *n += 1,
            None => counts.push((*t, 1)),
        }
    }
    counts
}

#[test]
fn idle_children_are_reaped() {
    let server = McpServer::start(&[("MCP_POOL_IDLE_SECONDS", "2")]);
    let echo = json!({ "serverName": "f", "config": { "command": fixture() }, "tool": "echo", "arguments": { "text": "once" } });
    assert_eq!(server.call("call_tool", echo)["result"]["isError"], false);
    assert_eq!(server.stats()["pool"]["children"], 1);
    let pool = wait_for(
        "the idle child to be reaped",
        Duration::from_secs(10),
        || {
            let pool = server.stats()["pool"].clone();
            (pool["children"] == 0).then_some(pool)
        },
    );
    assert_eq!(pool["reaped"], 1, "{pool:#}");
    wait_for("the reaped child to exit", Duration::from_secs(10), || {
        processes()
            .iter()
            .all(|p| p.parent != server.process.pid())
            .then_some(())
    });
}
