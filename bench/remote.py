"""50 callers at once over streamable HTTP for 60 s, with the DashScope emulator behind the server.

Run:  .venv/bin/python bench/remote.py [--callers 50] [--seconds 60]

The server runs as its own process (`wan-r2v-mcp serve --transport http`, one bearer token per caller); each
caller is an MCP client over HTTP that, in a loop, generates (wait 0), gets one of its tasks, lists its tasks,
and asks for another caller's task. Figures: errors (must be 0), p50/p99 latency per tool, and how often a
caller saw a task not its own (must be 0). The anchor, in the same run: the same 50 clients calling a
one-tool `MCPServer` (an echo) served by the same HTTP stack, for p50/p99 of a call that does nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
KEY = "sk-bench0000000000000000"

ANCHOR = """
import sys, uvicorn
from mcp.server.mcpserver import MCPServer
server = MCPServer("anchor")

@server.tool()
def echo(text: str) -> str:
    return text

uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(url: str) -> None:
    for _ in range(200):
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def _client(url: str, token: str | None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers,
                                                                            timeout=httpx2.Timeout(60.0))))


def _pcts(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {"calls": len(values), "p50_ms": round(statistics.median(values) * 1000, 1),
            "p99_ms": round(values[max(0, int(len(values) * 0.99) - 1)] * 1000, 1)}


async def load(callers: int, seconds: float, url: str, tokens: list[str]) -> dict:
    latencies: dict[str, list[float]] = {}
    errors: list[str] = []
    foreign_seen = 0
    owned: dict[int, list[str]] = {i: [] for i in range(callers)}

    async def timed(client: Client, tool: str, args: dict) -> dict:
        t0 = time.perf_counter()
        result = await client.call_tool(tool, args)
        latencies.setdefault(tool, []).append(time.perf_counter() - t0)
        return {"is_error": result.is_error, "view": result.structured_content,
                "text": result.content[0].text if result.content else ""}

    async def caller(i: int) -> None:
        nonlocal foreign_seen
        rng = random.Random(i)
        end = time.monotonic() + seconds
        async with _client(url, tokens[i]) as client:
            n = 0
            while time.monotonic() < end:
                n += 1
                made = await timed(client, "generate_r2v", {"prompt": f"Image 1 waves, caller {i} take {n}",
                                                            "resolution": "720p", "reference_images":
                                                            ["https://cdn.example.com/a.png"], "wait_seconds": 0})
                if made["view"] is not None:
                    owned[i].append(made["view"]["task_id"])  # a task that failed is the caller's too
                if made["is_error"]:
                    errors.append(made["text"])
                    continue
                got = await timed(client, "get_task", {"task_id": rng.choice(owned[i]), "wait_seconds": 0})
                if got["is_error"]:
                    errors.append(got["text"])
                listed = await timed(client, "list_tasks", {"limit": 100})
                mine = set(owned[i])
                foreign_seen += sum(1 for t in listed["view"]["tasks"] if t["task_id"] not in mine)
                others = [t for j, ts in owned.items() if j != i for t in ts]
                if others:
                    theirs = await timed(client, "get_task", {"task_id": rng.choice(others), "wait_seconds": 0})
                    if not (theirs["is_error"] and "[not_found]" in theirs["text"]):
                        foreign_seen += 1

    async with anyio.create_task_group() as tg:
        for i in range(callers):
            tg.start_soon(caller, i)
    return {"errors": len(errors), "first_errors": errors[:3], "foreign_tasks_seen": foreign_seen,
            "tools": {tool: _pcts(v) for tool, v in latencies.items()}}


async def anchor_load(callers: int, seconds: float, url: str) -> dict:
    latencies: list[float] = []

    async def caller(i: int) -> None:
        end = time.monotonic() + seconds
        async with _client(url, None) as client:
            while time.monotonic() < end:
                t0 = time.perf_counter()
                await client.call_tool("echo", {"text": str(i)})
                latencies.append(time.perf_counter() - t0)

    async with anyio.create_task_group() as tg:
        for i in range(callers):
            tg.start_soon(caller, i)
    return _pcts(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()

    import media
    from emulators.dashscope import DashScopeEmulator

    tokens = [f"bench-caller-token-{i:04d}-{os.urandom(6).hex()}" for i in range(args.callers)]
    with tempfile.TemporaryDirectory() as tmp, DashScopeEmulator(KEY, media.Results(Path(tmp))) as host:
        host.timing.pending, host.timing.running = 5.0, 20.0
        port, anchor_port = _port(), _port()
        env = {**os.environ, "WAN_R2V_DATA_DIR": f"{tmp}/data", "WAN_R2V_OUTPUT_DIR": f"{tmp}/out",
               "WAN_R2V_HTTP_TOKENS": json.dumps({t: f"caller-{i}" for i, t in enumerate(tokens)}),
               "DASHSCOPE_API_KEY": KEY, "DASHSCOPE_BASE_URL": host.base_url}
        server = subprocess.Popen([sys.executable, "-m", "wan_r2v_mcp", "serve", "--transport", "http", "--port",
                                   str(port)], env=env, stderr=subprocess.DEVNULL)
        anchor = subprocess.Popen([sys.executable, "-c", ANCHOR, str(anchor_port)], stderr=subprocess.DEVNULL)
        try:
            _wait_up(f"http://127.0.0.1:{port}/health")
            _wait_up(f"http://127.0.0.1:{anchor_port}/mcp")
            ours = anyio.run(load, args.callers, args.seconds, f"http://127.0.0.1:{port}/mcp", tokens)
            base = anyio.run(anchor_load, args.callers, min(args.seconds, 20.0), f"http://127.0.0.1:{anchor_port}/mcp")
        finally:
            for proc in (server, anchor):
                proc.terminate()
                proc.wait(timeout=20)
    get = ours["tools"].get("get_task", {"p50_ms": 0, "p99_ms": 0})
    print(json.dumps({"callers": args.callers, "seconds": args.seconds, **ours, "anchor_echo": base,
                      "get_task_p50_vs_anchor": round(get["p50_ms"] / base["p50_ms"], 2),
                      "get_task_p99_vs_anchor": round(get["p99_ms"] / base["p99_ms"], 2)}, indent=2))


if __name__ == "__main__":
    main()
