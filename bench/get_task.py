"""get_task on a finished task over streamable HTTP at 1, 10 and 50 callers: latency and the server's CPU per call,
beside a one-tool `MCPServer` (an echo) served by the same HTTP stack, in the same run.

Run:  .venv/bin/python bench/get_task.py [--seconds 10] [--callers 1,10,50]

Both servers run as their own processes; the server's CPU is read from /proc before and after each load (user +
system time of the whole process, divided by the calls it answered). Each figure is reported beside the anchor's
and as a ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from remote import ANCHOR, KEY, ROOT, _client, _pcts, _port, _wait_up  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def _load(url: str, token: str | None, tool: str, args: dict, callers: int, seconds: float) -> list[float]:
    latencies: list[float] = []

    async def caller() -> None:
        async with _client(url, token) as client:
            await client.call_tool(tool, args)  # connected and warm before the clock starts
            start.wait_ready.append(1)
            await start.go.wait()
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                t0 = time.perf_counter()
                result = await client.call_tool(tool, args)
                latencies.append(time.perf_counter() - t0)
                if result.is_error:
                    raise RuntimeError(result.content[0].text)

    class start:
        wait_ready: list[int] = []
        go = anyio.Event()

    async with anyio.create_task_group() as tg:
        for _ in range(callers):
            tg.start_soon(caller)
        while len(start.wait_ready) < callers:
            await anyio.sleep(0.01)
        start.go.set()
    return latencies


def measure(pid: int, url: str, token: str | None, tool: str, args: dict, callers: int, seconds: float) -> dict:
    before = _cpu_seconds(pid)
    latencies = anyio.run(_load, url, token, tool, args, callers, seconds)
    cpu = _cpu_seconds(pid) - before
    return {**_pcts(latencies), "server_cpu_ms_per_call": round(1000 * cpu / max(1, len(latencies)), 2)}


async def _finished_task(url: str, token: str) -> str:
    async with _client(url, token) as client:
        made = await client.call_tool("generate_r2v", {"prompt": "Image 1 waves", "resolution": "720p",
                                                       "reference_images": ["https://cdn.example.com/a.png"],
                                                       "wait_seconds": 0})
        task_id = made.structured_content["task_id"]
        while (await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 30})
               ).structured_content["status"] != "succeeded":
            pass
        return task_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--callers", default="1,10,50")
    args = parser.parse_args()

    import media
    from emulators.dashscope import DashScopeEmulator

    token = f"bench-caller-token-{os.urandom(6).hex()}"
    rows = []
    with tempfile.TemporaryDirectory() as tmp, DashScopeEmulator(KEY, media.Results(Path(tmp))) as host:
        host.timing.pending, host.timing.running = 0.1, 0.2
        port, anchor_port = _port(), _port()
        env = {**os.environ, "WAN_R2V_DATA_DIR": f"{tmp}/data", "WAN_R2V_OUTPUT_DIR": f"{tmp}/out",
               "WAN_R2V_HTTP_TOKENS": json.dumps({token: "caller"}), "DASHSCOPE_API_KEY": KEY,
               "DASHSCOPE_BASE_URL": host.base_url}
        server = subprocess.Popen([sys.executable, "-m", "wan_r2v_mcp", "serve", "--transport", "http", "--port",
                                   str(port)], env=env, stderr=subprocess.DEVNULL)
        anchor = subprocess.Popen([sys.executable, "-c", ANCHOR, str(anchor_port)], stderr=subprocess.DEVNULL)
        try:
            _wait_up(f"http://127.0.0.1:{port}/health")
            _wait_up(f"http://127.0.0.1:{anchor_port}/mcp")
            url, anchor_url = f"http://127.0.0.1:{port}/mcp", f"http://127.0.0.1:{anchor_port}/mcp"
            task_id = anyio.run(_finished_task, url, token)
            for callers in (int(c) for c in args.callers.split(",")):  # paired: ours, then the anchor, per load
                ours = measure(server.pid, url, token, "get_task", {"task_id": task_id, "wait_seconds": 0}, callers,
                               args.seconds)
                base = measure(anchor.pid, anchor_url, None, "echo", {"text": "x"}, callers, args.seconds)
                rows.append({"callers": callers, "get_task": ours, "anchor_echo": base,
                             "p50_ratio": round(ours["p50_ms"] / base["p50_ms"], 2),
                             "cpu_ratio": round(ours["server_cpu_ms_per_call"] / base["server_cpu_ms_per_call"], 2)})
        finally:
            for proc in (server, anchor):
                proc.terminate()
                proc.wait(timeout=20)
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
