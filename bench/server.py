#!/usr/bin/env python3
"""mcp-server against its peers, side by side in one run (bench/server.sh builds and
installs what this needs, then runs it).

Part 1, a trivial `add` tool over stateless Streamable HTTP (JSON answers): our HTTP
stack (API-key gate, limits, logging) vs bare rmcp, the official TypeScript SDK and
the official Python SDK.

Part 2, proxying `tools/call echo` to one stdio server (server-everything): mcp-server's
named endpoint (`/servers/everything/mcp`) and its `call_tool` meta-tool vs supergateway
(stateful), mcp-proxy (stateless) and mcp-proxy's named servers in front of the same
server, and vs an rmcp client driving the server directly (the ceiling).

Every HTTP contender gets the same load: wrk, one thread, --connections connections,
--seconds seconds, bench/peers/mcp-call.lua (which counts failed answers). RSS is the
peak (VmHWM) of the server's process tree. CPU per request is the user + system time
each process spent during the measurement (from /proc, and getrusage for wrk) divided
by the requests answered; part 2 ends with what those costs allow on this machine.
"""

import argparse
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "bench" / "peers"
RELEASE = ROOT / "target" / "release"
EVERYTHING = ["node", str(PEERS / "node_modules/@modelcontextprotocol/server-everything/dist/index.js"), "stdio"]
API_KEY = "bench-key"
ECHO_ARGS = {"message": "hi"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    """Starts a contender in its own session (so it can be killed with everything it
    started) and waits until its port accepts connections."""
    process = subprocess.Popen(
        command,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{command[0]} exited during start-up")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{command[0]} did not listen on {port}")


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def tree(pid: int) -> list[int]:
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid] + [p for c in children for p in tree(int(c))]


def peak_rss_mb(pid: int) -> float:
    total = 0
    for p in tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        total += int(match.group(1)) if match else 0
    return total / 1024


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15)


def tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of a process, and of all its descendants together."""
    return cpu_seconds(pid), sum(cpu_seconds(p) for p in tree(pid)[1:])


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def post(url: str, body: dict, headers: dict[str, str]) -> tuple[dict[str, str], str]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return dict(response.headers), response.read().decode()


def open_session(url: str) -> str:
    """Initializes a stateful server once; every wrk connection then shares the session."""
    headers, _ = post(url, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}, {})
    session = next(v for k, v in headers.items() if k.lower() == "mcp-session-id")
    post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, {"Mcp-Session-Id": session})
    return session


def wrk(url: str, tool: str, arguments: dict, args, pid: int, auth: str = "", session: str = "") -> dict:
    # Warm up (children started, connections made) before measuring.
    headers = {"Authorization": auth} if auth else {}
    if session:
        headers["Mcp-Session-Id"] = session
    _, body = post(url, {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                         "params": {"name": tool, "arguments": arguments}}, headers)
    if '"error"' in body or '"isError":true' in body:
        sys.exit(f"{url}: the warm-up call failed: {body[:300]}")
    env = {**os.environ, "BENCH_TOOL": tool, "BENCH_ARGS": json.dumps(arguments),
           "BENCH_AUTH": auth, "BENCH_SESSION": session}
    server_before, children_before, wrk_before = *tree_cpu(pid), children_cpu()
    output = subprocess.run(
        ["wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}s", "--timeout", "10s", "--latency",
         "-s", str(PEERS / "mcp-call.lua"), url],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    # wrk's share first: tree_cpu runs `ps`, whose own CPU would count as wrk's.
    wrk_cpu = children_cpu() - wrk_before
    server_after, children_after = tree_cpu(pid)
    line = next(l for l in output.splitlines() if l.startswith("mcp-call:"))
    fields = dict(item.split("=") for item in line.split()[1:])
    socket_errors = re.search(r"Socket errors: (.*)", output)
    per_request = 1e6 / max(int(fields["requests"]), 1)
    return {
        "server_us": (server_after - server_before) * per_request,
        "child_us": (children_after - children_before) * per_request,
        "wrk_us": wrk_cpu * per_request,
        "rps": float(fields["rps"]),
        "p50_ms": float(fields["p50_ms"]),
        "p99_ms": float(fields["p99_ms"]),
        "failed": int(fields["requests"]) - int(fields["ok"]),
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def measure(name: str, command: list[str], env: dict, tool: str, arguments: dict, args,
            auth: str = "", stateful: bool = False, path: str = "/mcp") -> dict:
    port = free_port()
    env = {**env, "PORT": str(port)}
    command = [part.replace("{port}", str(port)) for part in command]
    process = start(command, env, port)
    try:
        url = f"http://127.0.0.1:{port}{path}"
        session = open_session(url) if stateful else ""
        result = wrk(url, tool, arguments, args, process.pid, auth, session)
        result["rss_mb"] = peak_rss_mb(process.pid)
    finally:
        stop(process)
    result["name"] = name
    print(f"  {name}: {result}", file=sys.stderr)
    return result


def direct(args) -> dict:
    output = subprocess.run(
        [str(RELEASE / "stdio-direct"), "--connections", str(args.connections), "--seconds", str(args.seconds),
         "--", *EVERYTHING],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout
    result = json.loads(output.strip().splitlines()[-1])
    per_request = 1e6 / TICK / max(result.pop("requests"), 1)
    result.update(name="direct stdio client (ceiling)", failed=result.pop("errors"), rss_mb=float("nan"),
                  server_us=result.pop("cpu_ticks") * per_request,
                  child_us=result.pop("child_cpu_ticks") * per_request, wrk_us=0.0)
    print(f"  direct: {result}", file=sys.stderr)
    return result


def table(rows: list[dict], base: dict) -> None:
    print(f"| {'contender':<34} | {'req/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} | {'peak RSS MB':>11} | {'CPU µs/req':>10} | {'failed':>6} | {'ours ÷ it':>9} |")
    print(f"|{'-' * 36}|{'-' * 10}:|{'-' * 8}:|{'-' * 8}:|{'-' * 12}:|{'-' * 11}:|{'-' * 7}:|{'-' * 10}:|")
    for row in rows:
        ratio = base["rps"] / row["rps"] if row["rps"] else float("inf")
        rss = "" if row["rss_mb"] != row["rss_mb"] else f"{row['rss_mb']:.1f}"
        cpu = row["server_us"] + row["child_us"]
        print(f"| {row['name']:<34} | {row['rps']:>8.0f} | {row['p50_ms']:>7.2f} | {row['p99_ms']:>7.2f} | {rss:>11} | {cpu:>10.1f} | {row['failed']:>6} | {ratio:>9.2f} |")


def budget(bare_add: dict, proxy: dict, ceiling: dict) -> None:
    """What the measured CPU costs allow: every process of a proxied call shares this
    machine's cores, so no proxy can pass the rate at which they are all used up."""
    cores = os.cpu_count() or 1
    parts = [
        ("wrk, per request (proxy run)", proxy["wrk_us"]),
        ("an rmcp HTTP server answering a tool call (part 1, bare rmcp, add)", bare_add["server_us"]),
        ("a stdio client, at least (direct client)", ceiling["server_us"]),
        ("server-everything, at least (direct run)", ceiling["child_us"]),
    ]
    floor = sum(us for _, us in parts)
    bound = cores * 1e6 / floor
    print(f"\nCPU per proxied call on this machine ({cores} cores), µs:\n")
    for what, us in parts:
        print(f"- {what}: {us:.1f}")
    print(f"- sum: {floor:.1f}, so no proxy on this stack passes {bound:.0f} req/s "
          f"= {bound / ceiling['rps']:.2f} of the direct ceiling")
    print(f"- ours spent: mcp-server {proxy['server_us']:.1f}, server-everything {proxy['child_us']:.1f}, "
          f"wrk {proxy['wrk_us']:.1f}")


def check(what: str, ok: bool, detail: str) -> bool:
    print(f"- {'PASS' if ok else 'FAIL'} {what}: {detail}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()
    auth = f"Bearer {API_KEY}"
    ours_env = {"MCP_API_KEYS": API_KEY, "MCP_BIND": "127.0.0.1", "MCP_ALLOWED_COMMANDS": f"node {EVERYTHING[1]}"}
    add = {"a": 1, "b": 2}

    print("part 1: add tool", file=sys.stderr)
    ours = measure("ours (mcp-server's stack: auth, metrics, tracing)", [str(RELEASE / "our-add-server")], ours_env, "add", add, args, auth)
    part1 = [
        ours,
        measure("bare rmcp 3.9", [str(RELEASE / "bare-rmcp-add")], {}, "add", add, args),
        measure("TypeScript SDK (Express)", ["node", str(PEERS / "ts-add-server.mjs")], {}, "add", add, args),
        measure("Python SDK MCPServer", [sys.executable, str(PEERS / "py_add_server.py")], {}, "add", add, args),
    ]

    print("part 2: proxying echo to server-everything", file=sys.stderr)
    call = {"serverName": "everything", "config": {"command": EVERYTHING[0], "args": EVERYTHING[1:]},
            "tool": "echo", "arguments": ECHO_ARGS}
    # One child, as each peer and the direct client drive: the pool would otherwise
    # start a second one past MCP_POOL_MAX_CALLS_PER_CHILD calls in flight.
    one_child = {**ours_env, "MCP_POOL_MAX_PER_SERVER": "1", "MCP_POOL_MAX_CALLS_PER_CHILD": str(args.connections)}
    servers_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-servers-{os.getpid()}.json"
    servers_file.write_text(json.dumps({"mcpServers": {"everything": {"command": EVERYTHING[0], "args": EVERYTHING[1:]}}}))
    named = {**one_child, "MCP_SERVERS_FILE": str(servers_file)}
    named_ours = measure("ours (named endpoint)", [str(RELEASE / "mcp-server")], named, "echo", ECHO_ARGS, args, auth,
                         path="/servers/everything/mcp")
    proxy_ours = measure("ours (mcp-server call_tool)", [str(RELEASE / "mcp-server")], one_child, "call_tool", call, args, auth)
    part2 = [
        named_ours,
        proxy_ours,
        measure("supergateway 4 (stateful)", [str(PEERS / "node_modules/.bin/supergateway"), "--stdio", " ".join(EVERYTHING),
                "--outputTransport", "streamableHttp", "--stateful", "--port", "{port}", "--streamableHttpPath", "/mcp",
                "--logLevel", "none"], {}, "echo", ECHO_ARGS, args, stateful=True),
        measure("mcp-proxy 0.13 (stateless)", [str(PEERS / ".venv-mcp-proxy/bin/mcp-proxy"), "--host", "127.0.0.1", "--port", "{port}",
                "--stateless", "--log-level", "WARNING", "--", *EVERYTHING], {}, "echo", ECHO_ARGS, args),
        measure("mcp-proxy 0.13 named server (stateless)", [str(PEERS / ".venv-mcp-proxy/bin/mcp-proxy"), "--host", "127.0.0.1",
                "--port", "{port}", "--stateless", "--log-level", "WARNING", "--named-server-config", str(servers_file)],
                {}, "echo", ECHO_ARGS, args, path="/servers/everything/mcp"),
        direct(args),
    ]
    servers_file.unlink()

    print(f"\nPart 1: `add` tool, stateless JSON, wrk -t1 -c{args.connections} -d{args.seconds}s\n")
    table(part1, ours)
    print(f"\nPart 2: tools/call echo proxied to one server-everything, wrk -t1 -c{args.connections} -d{args.seconds}s\n")
    table(part2, named_ours)
    ceiling = part2[-1]
    peers = part2[2:-1]
    budget(part1[1], proxy_ours, ceiling)
    floors = part1[1]["server_us"] + ceiling["server_us"]
    print(f"- the named endpoint spent: mcp-server {named_ours['server_us']:.1f} µs per call "
          f"= {named_ours['server_us'] / floors:.2f}× the floors ({floors:.1f} µs: an rmcp HTTP server answering "
          f"+ a stdio client calling)")

    bare, ts, py = part1[1], part1[2], part1[3]
    faster_peer = max(peers, key=lambda r: r["rps"])
    print("\nTargets:")
    results = [
        check("ours ≥ 80% of bare rmcp", ours["rps"] >= 0.8 * bare["rps"], f"{ours['rps'] / bare['rps']:.2f}"),
        check("ours ≥ 15× TypeScript SDK", ours["rps"] >= 15 * ts["rps"], f"{ours['rps'] / ts['rps']:.1f}×"),
        check("ours ≥ 25× Python SDK", ours["rps"] >= 25 * py["rps"], f"{ours['rps'] / py['rps']:.1f}×"),
        check("ours p99 ≤ 5 ms", ours["p99_ms"] <= 5, f"{ours['p99_ms']:.2f} ms"),
        check("ours RSS ≤ 30 MB", ours["rss_mb"] <= 30, f"{ours['rss_mb']:.1f} MB"),
        check(f"proxy ≥ 3× the faster peer ({faster_peer['name']})", proxy_ours["rps"] >= 3 * faster_peer["rps"],
              f"{proxy_ours['rps'] / faster_peer['rps']:.2f}×"),
        check("proxy ≥ 70% of the direct ceiling", proxy_ours["rps"] >= 0.7 * ceiling["rps"],
              f"{proxy_ours['rps'] / ceiling['rps']:.2f}"),
        check("proxy p99 no worse than the peers'", proxy_ours["p99_ms"] <= min(r["p99_ms"] for r in peers),
              f"{proxy_ours['p99_ms']:.2f} ms vs {min(r['p99_ms'] for r in peers):.2f} ms"),
        check("named endpoint ≥ 3× the faster peer", named_ours["rps"] >= 3 * faster_peer["rps"],
              f"{named_ours['rps'] / faster_peer['rps']:.2f}×"),
        check("named endpoint's mcp-server CPU per call ≤ 1.3× the floors", named_ours["server_us"] <= 1.3 * floors,
              f"{named_ours['server_us'] / floors:.2f}×"),
        check("no failed requests", all(r["failed"] == 0 for r in part1 + part2), "all answers were successes"),
    ]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
