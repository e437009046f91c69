"""Durable MCP tasks: mcp-jobs (mcp-server + kafka-worker on Apache Kafka) against FastMCP
with fastmcp-tasks (Docket on Redis), side by side in one run, both driven by the same
client, FastMCP's own tasks client (`call_tool_task`, then `result()`, which polls with
its own backoff), on a trivial tool (`echo`) that always runs as a task:

- one at a time: create → completed, p50/p99 (latency: nothing hides a fixed wait);
- tasks/s at concurrency 20 and 200 (each task created, then followed to its result);
- memory per 10,000 waiting tasks: what the serving processes (and Redis, for the peer)
  grow by while that many tasks are created and not yet run.

Each side at its defaults but the poll interval both tell clients (1,000 ms): mcp-jobs
one worker (WORKER_CONCURRENCY 64) and one mcp-server whose tool is the Rust test fixture
over stdio; FastMCP one process, its in-process Docket worker (concurrency 10) and a tool
in-process. Run by bash bench/tasks.sh, under the venv that holds FastMCP.

Usage: bash bench/tasks.sh [--tasks N] [--concurrency 20,200] [--waiting N]
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import fastmcp_tasks
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"
KEY = "bench-key"
POLL_MS = "1000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, process: subprocess.Popen, what: str) -> None:
    for _ in range(300):
        if process.poll() is not None:
            sys.exit(f"{what} exited during start-up")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what} does not listen on {port}")


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its descendants, in MB."""
    total = 0
    for p in [pid, *descendants(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def descendants(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    found = [int(c) for c in children]
    for child in list(found):
        found += descendants(child)
    return found


class Stack:
    """Processes started for one side, stopped in reverse order."""

    def __init__(self, log_dir: Path):
        self.processes: list[subprocess.Popen] = []
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, command: list[str], env: dict) -> subprocess.Popen:
        with open(self.log_dir / f"{name}.log", "w") as log:
            process = subprocess.Popen(command, env={**os.environ, **env}, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is not None:
                continue
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()


def start_ours(stack: Stack, work: Path) -> dict:
    kafka_dir = work / "kafka"
    brokers = subprocess.run(["bash", str(ROOT / "scripts/kafka.sh"), "start", str(kafka_dir),
                              str(free_port())], check=True, capture_output=True,
                             text=True).stdout.strip()
    topic = "bench-tasks"
    kafka = {"KAFKA_BROKERS": brokers, "KAFKA_TOPIC": topic}
    subprocess.run([str(RELEASE / "kafka-worker"), "create-topics", "--partitions", "4"],
                   env={**os.environ, **kafka}, check=True, capture_output=True)
    servers = work / "servers.json"
    servers.write_text(json.dumps({"mcpServers": {"fx": {
        "command": str(RELEASE / "mcp-fixture"),
        "mcpJobs": {"trusted": True, "tasks": "required"}}}}))
    port = free_port()
    server = stack.start("mcp-server", [str(RELEASE / "mcp-server")], {
        **kafka, "PORT": str(port), "MCP_BIND": "127.0.0.1", "MCP_API_KEYS": KEY,
        "MCP_SERVERS_FILE": str(servers), "MCP_TASK_POLL_MS": POLL_MS, "RUST_LOG": "warn"})
    wait_port(port, server, "mcp-server")
    worker_env = {**kafka, "MCP_SERVER_URL": f"http://127.0.0.1:{port}", "MCP_API_KEY": KEY,
                  "MCP_CONSUMER_GROUP": "bench-workers", "METRICS_PORT": str(free_port()),
                  "RUST_LOG": "warn"}
    worker = stack.start("kafka-worker", [str(RELEASE / "kafka-worker"), "run"], worker_env)
    return {"url": f"http://127.0.0.1:{port}/servers/fx/mcp", "pids": [server.pid], "push": True,
            "worker": worker, "worker_env": worker_env, "kafka_dir": kafka_dir}


def stop_ours(stack: Stack) -> None:
    stack.stop()
    subprocess.run(["bash", str(ROOT / "scripts/kafka.sh"), "stop", str(stack.log_dir / "kafka")],
                   check=False, capture_output=True)


def start_fastmcp(stack: Stack) -> dict:
    redis_port = free_port()
    redis = stack.start("redis", ["redis-server", "--port", str(redis_port), "--bind",
                                  "127.0.0.1", "--save", "", "--appendonly", "no"], {})
    wait_port(redis_port, redis, "redis-server")
    port = free_port()
    server = stack.start("fastmcp", [sys.executable, str(ROOT / "bench/peers/fastmcp_tasks_server.py"),
                                     str(port)],
                         {"FM_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "FM_TOKEN": KEY,
                          "FM_POLL_INTERVAL_MS": POLL_MS})
    wait_port(port, server, "the FastMCP server")
    return {"url": f"http://127.0.0.1:{port}/mcp", "pids": [server.pid], "redis_port": redis_port}


def redis_used_mb(port: int) -> float:
    info = subprocess.run(["redis-cli", "-p", str(port), "info", "memory"], check=True,
                          capture_output=True, text=True).stdout
    used = next(line for line in info.splitlines() if line.startswith("used_memory:"))
    return int(used.split(":")[1]) / 1024 / 1024


async def clients(url: str, n: int) -> list[Client]:
    opened = [Client(StreamableHttpTransport(url, auth=KEY), timeout=60) for _ in range(n)]
    for client in opened:
        await client.__aenter__()
    return opened


async def one_task(client: Client, text: str) -> float:
    started = time.perf_counter()
    task = await fastmcp_tasks.call_tool_task(client, "echo", {"text": text})
    result = await task.result()
    if getattr(result, "is_error", False):
        raise RuntimeError(f"the task failed: {result!r}")
    return (time.perf_counter() - started) * 1000


async def run(url: str, total: int, concurrency: int) -> dict:
    opened = await clients(url, min(concurrency, 20))
    gate = asyncio.Semaphore(concurrency)

    async def gated(i: int) -> float:
        async with gate:
            return await one_task(opened[i % len(opened)], f"task {i}")

    await asyncio.gather(*(gated(i) for i in range(min(total, 20))), return_exceptions=True)
    started = time.perf_counter()
    ended = await asyncio.gather(*(gated(i) for i in range(total)), return_exceptions=True)
    elapsed = time.perf_counter() - started
    for client in opened:
        await client.__aexit__(None, None, None)
    latencies = [t for t in ended if isinstance(t, float)]
    failed = [e for e in ended if not isinstance(e, float)]
    if failed:
        print(f"  {len(failed)} of {total} failed, e.g. {failed[0]!r}", file=sys.stderr)
    if len(latencies) < 2:
        return {"per_s": 0.0, "p50": float("nan"), "p99": float("nan"), "failed": len(failed)}
    q = statistics.quantiles(latencies, n=100)
    return {"per_s": len(latencies) / elapsed, "p50": statistics.median(latencies), "p99": q[98],
            "failed": len(failed)}


async def create_waiting(url: str, tool: str, arguments: dict, n: int) -> None:
    opened = await clients(url, 10)
    gate = asyncio.Semaphore(50)

    async def create(i: int) -> None:
        async with gate:
            await fastmcp_tasks.call_tool_task(opened[i % 10], tool, arguments)

    await asyncio.gather(*(create(i) for i in range(n)))
    for client in opened:
        await client.__aexit__(None, None, None)


def light(url: str, total: int, concurrency: int, push: bool = False) -> dict:
    """The same load from tasks-load, a Rust client that costs the machine little."""
    command = [str(RELEASE / "tasks-load"), "--url", url, "--key", KEY, "--tasks", str(total),
               "--concurrency", str(concurrency)] + (["--push"] if push else [])
    ran = subprocess.run(command, check=True, capture_output=True, text=True)
    measured = json.loads(ran.stdout)
    if measured["failed"]:
        print(f"  {measured['failed']} of {total} failed, e.g. {measured['first_failure']}",
              file=sys.stderr)
    return measured


def measure(name: str, side: dict, args) -> list[dict]:
    """Two rows: FastMCP's client, and the light one (with pushed status where served)."""
    rows = []
    clients = [("FastMCP's client", lambda total, c: asyncio.run(run(side["url"], total, c))),
               ("tasks-load", lambda total, c: light(side["url"], total, c))]
    if side.get("push"):
        clients.append(("tasks-load, pushed status",
                        lambda total, c: light(side["url"], total, c, push=True)))
    for client, load in clients:
        row = {"name": f"{name}, {client}"}
        print(f"{row['name']}: one at a time", file=sys.stderr)
        single = load(args.latency_tasks, 1)
        row["p50_1"], row["p99_1"] = single["p50"], single["p99"]
        for c in args.concurrency:
            print(f"{row['name']}: concurrency {c}", file=sys.stderr)
            row[f"c{c}"] = load(args.tasks, c)
        row["rss"] = sum(rss_mb(pid) for pid in side["pids"])
        print(f"{row['name']}: {row}", file=sys.stderr)
        rows.append(row)
    return rows


def waiting_memory(name: str, side: dict, args, before_extra, after_extra, tool, arguments) -> float:
    print(f"{name}: {args.waiting} waiting tasks", file=sys.stderr)
    before = sum(rss_mb(pid) for pid in side["pids"]) + before_extra()
    asyncio.run(create_waiting(side["url"], tool, arguments, args.waiting))
    time.sleep(2)
    after = sum(rss_mb(pid) for pid in side["pids"]) + after_extra()
    return after - before


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000, help="tasks per concurrency level")
    parser.add_argument("--latency-tasks", type=int, default=100)
    parser.add_argument("--concurrency", default="20,200")
    parser.add_argument("--waiting", type=int, default=10000)
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        print(f"logs in {work}", file=sys.stderr)
        rows = []
        # Waiting, on a fresh stack: no worker takes them, so each stays queued on Kafka.
        stack = Stack(work / "waiting")
        try:
            ours = start_ours(stack, stack.log_dir)
            os.killpg(ours["worker"].pid, signal.SIGTERM)
            ours["worker"].wait(30)
            ours_waiting = waiting_memory("mcp-jobs", ours, args, lambda: 0, lambda: 0,
                                          "echo", {"text": "waiting"})
        finally:
            stop_ours(stack)
        stack = Stack(work / "load")
        try:
            rows += measure("mcp-jobs", start_ours(stack, stack.log_dir), args)
        finally:
            stop_ours(stack)
        stack = Stack(work)
        try:
            peer = start_fastmcp(stack)
            rows += measure("FastMCP + Docket (Redis)", peer, args)

            def redis() -> float:
                return redis_used_mb(peer["redis_port"])

            # Waiting: its worker runs 10 at a time; tasks of a long sleep keep the rest queued.
            peer_waiting = waiting_memory("FastMCP", peer, args, redis, redis,
                                          "sleep", {"ms": 600_000})
        finally:
            stack.stop()

    levels = " | ".join(f"tasks/s at {c}" for c in args.concurrency)
    print(f"\nDurable tasks, `echo` always a task ({args.latency_tasks} one at a time, "
          f"{args.tasks} per concurrency level; failed tasks counted)\n")
    print(f"| server, client | create→completed p50 | p99 | {levels} | RSS after |")
    print("|---|---:|---:|" + "---:|" * len(args.concurrency) + "---:|")
    for row in rows:
        rates = " | ".join(rate(row[f"c{c}"]) for c in args.concurrency)
        print(f"| {row['name']} | {row['p50_1']:.1f} ms | {row['p99_1']:.1f} ms | {rates} | "
              f"{row['rss']:.0f} MB |")
    by_name = {row["name"]: row for row in rows}
    for client in ["FastMCP's client", "tasks-load"]:
        ours, peer = by_name[f"mcp-jobs, {client}"], by_name[f"FastMCP + Docket (Redis), {client}"]
        ratios = ", ".join(f"tasks/s at {c} {ratio(ours[f'c{c}']['per_s'], peer[f'c{c}']['per_s'])}"
                           for c in args.concurrency)
        print(f"\nmcp-jobs ÷ FastMCP with {client}: {ratios}; one at a time p50 "
              f"{ratio(ours['p50_1'], peer['p50_1'])} (lower is faster)")
    per_task = [mb * 1024 * 1024 / args.waiting for mb in (ours_waiting, peer_waiting)]
    print(f"\nMemory per waiting task ({args.waiting:,} waiting): mcp-jobs {per_task[0]:.0f} B "
          f"(mcp-server; the tasks wait on Kafka's disk), FastMCP {per_task[1]:.0f} B (its "
          f"process and Redis)")


def rate(measured: dict) -> str:
    failed = f", {measured['failed']} failed" if measured["failed"] else ""
    return f"{measured['per_s']:.0f} (p50 {measured['p50']:.0f} ms{failed})"


def ratio(ours: float, peer: float) -> str:
    return f"{ours / peer:.2f}×" if peer else "∞ (the peer finished none)"


if __name__ == "__main__":
    main()
