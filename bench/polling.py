"""Many tasks in flight against the DashScope emulator: host calls, rate limit, time to disk, leases, list_tasks.

Run (each size takes several minutes of real time: jobs last 60-300 s at the emulated host, as Wan 2.7's do):

    .venv/bin/python bench/polling.py --tasks 200
    .venv/bin/python bench/polling.py --tasks 1000

The emulator runs in its own process with a rate limit on status calls (a 429 past it); the server runs
here, driven through an in-process MCP client, on real (uncompressed) timings. Figures, each beside an anchor
measured in the same run:
- host status calls per task-minute, beside DashScope's advice of one poll per 15 s (4 per task-minute);
- the 429s the host sent (the rate limit was never exceeded when 0);
- seconds from the host finishing a job to its video on disk (median, p90), beside the sweep interval;
- CPU per host call, beside a bare httpx client making the same calls to the same emulator;
- lease renewals that came late (a claim seen expired while its task was still followed): must be 0;
- list_tasks with 10,000 tasks in the ledger, beside the same call with 100.
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx
from mcp import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
KEY = "sk-bench0000000000000000"

EMULATOR = f"""
import json, random, sys, pathlib, tempfile
sys.path.insert(0, {str(ROOT / "tests")!r})
from emulators.dashscope import DashScopeEmulator
import media
lo, hi, rate = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
with DashScopeEmulator("{KEY}", media.Results(pathlib.Path(tempfile.mkdtemp()))) as e:
    rng = random.Random(1)
    e.job_timing = lambda: (lambda total: (total * 0.2, total * 0.8))(rng.uniform(lo, hi))
    e.rate_limit = rate
    print(e.base_url, flush=True)
    for line in sys.stdin:
        polls = sum(1 for r in e.received if r.path.startswith("/api/v1/tasks/") and r.method == "GET")
        lists = sum(1 for r in e.received if r.path == "/api/v1/tasks")
        done = {{t.task_id: t.done_at(e.timing) for t in e.tasks.values()}}
        print(json.dumps({{"polls": polls, "lists": lists, "throttled": e.throttled, "created": len(e.tasks),
                          "done": done}}), flush=True)
"""


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def bare_httpx_cpu(base_url: str, job_ids: list[str], calls: int) -> float:
    """The anchor: CPU per call of a bare httpx client making the same status calls, 10 at a time."""
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {KEY}"}) as http:
        cpu0 = cpu_seconds()
        limiter = anyio.Semaphore(10)

        async def one(i: int) -> None:
            async with limiter:
                await http.get(f"/tasks/{job_ids[i % len(job_ids)]}")

        async with anyio.create_task_group() as tg:
            for i in range(calls):
                tg.start_soon(one, i)
        return (cpu_seconds() - cpu0) / calls


async def list_tasks_seconds(sizes: tuple[int, ...]) -> dict[int, float]:
    """list_tasks through the MCP client with the ledger at each size (rows added straight to the ledger)."""
    from wan_r2v_mcp.config import Settings
    from wan_r2v_mcp.server import build_server
    from wan_r2v_mcp.store.sqlite import SQLiteStore as Ledger

    out = {}
    folder = Path(tempfile.mkdtemp())
    s = Settings(data_dir=folder, output_dir=folder)
    ledger = Ledger(s.data.ledger)
    have = 0
    request = {"prompt": "Image 1", "resolution": "720p", "aspect_ratio": "16:9", "duration": 5}
    for size in sizes:
        for i in range(have, size):
            ledger.insert(task_id=f"r2v_bench{i:06d}", provider="dashscope", phase="succeeded", status="succeeded",
                          stage="saved", request=request, refs=[], created_at=time.time() - i)
        have = size
        async with Client(build_server(s)) as client:
            for _ in range(3):
                await client.call_tool("list_tasks", {"limit": 20})
            t0 = time.perf_counter()
            for _ in range(20):
                await client.call_tool("list_tasks", {"limit": 20, "status": "succeeded"})
            out[size] = (time.perf_counter() - t0) / 20
    ledger.close()
    return out


async def main(tasks: int, lo: float, hi: float, rate: float) -> dict:
    emu = subprocess.Popen([sys.executable, "-c", EMULATOR, str(lo), str(hi), str(rate)], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    base_url = emu.stdout.readline().strip()

    def host() -> dict:
        emu.stdin.write("\n")
        emu.stdin.flush()
        return json.loads(emu.stdout.readline())

    from wan_r2v_mcp.config import Settings
    from wan_r2v_mcp.server import build_server

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=tmp, output_dir=tmp, hosts={"dashscope": {"api_key": KEY, "base_url": base_url}})
        late = 0
        async with Client(build_server(settings)) as client:
            t0, cpu0 = time.monotonic(), cpu_seconds()
            for i in range(tasks):
                await client.call_tool("generate_r2v", {"prompt": f"Image 1 waves, take {i}", "resolution": "720p",
                                                        "reference_images": ["https://cdn.example.com/a.png"],
                                                        "wait_seconds": 0, "allow_duplicate": True})
            submitted = time.monotonic() - t0
            print(f"{tasks} tasks submitted in {submitted:.1f} s", file=sys.stderr)
            db = sqlite3.connect(settings.data.ledger)
            while True:
                now = time.time()
                late += db.execute(
                    "SELECT COUNT(*) FROM leases JOIN tasks USING (task_id) WHERE until < ? AND phase NOT IN "
                    "('succeeded', 'failed', 'canceled')", (now,)).fetchone()[0]
                done = db.execute("SELECT COUNT(*) FROM tasks WHERE phase IN ('succeeded', 'failed', 'canceled')"
                                  ).fetchone()[0]
                if done >= tasks:
                    break
                await anyio.sleep(1.0)
            elapsed = time.monotonic() - t0
            cpu = cpu_seconds() - cpu0
            figures = host()
            rows = db.execute("SELECT provider_task_id, finished_at, status FROM tasks").fetchall()
            db.close()
        lags = sorted(finished - figures["done"][job] for job, finished, status in rows if status == "succeeded")
        job_ids = [job for job, _, _ in rows if job]
        calls = figures["polls"] + figures["lists"]
        anchor_cpu = await bare_httpx_cpu(base_url, job_ids, min(calls, 3000))
        list_times = await list_tasks_seconds((100, 10_000))
    emu.stdin.close()
    emu.wait(timeout=10)
    task_minutes = tasks * ((lo + hi) / 2 + submitted / 2) / 60  # each task is in flight for its job's length
    # CPU of the whole server over the run (generate calls, sweeps, polls, downloads), per host status call.
    return {
        "tasks": tasks, "job_seconds": [lo, hi], "host_rate_limit_per_s": rate, "created_at_host": figures["created"],
        "succeeded": len(lags), "all_done_seconds": round(elapsed, 1),
        "status_calls": {"polls": figures["polls"], "list_pages": figures["lists"],
                         "per_task_minute": round(calls / task_minutes, 2), "anchor_per_task_minute": 4.0,
                         "ratio": round(calls / task_minutes / 4.0, 2)},
        "throttled_429": figures["throttled"],
        "host_done_to_disk_seconds": {"median": round(statistics.median(lags), 2),
                                      "p90": round(lags[int(len(lags) * 0.9) - 1], 2), "max": round(lags[-1], 2)},
        "cpu_ms_per_host_call": {"server": round(cpu / calls * 1000, 2), "bare_httpx": round(anchor_cpu * 1000, 2),
                                 "ratio": round(cpu / calls / anchor_cpu, 1)},
        "late_lease_observations": late,
        "list_tasks_ms": {str(k): round(v * 1000, 2) for k, v in list_times.items()},
        "list_tasks_ratio_10000_vs_100": round(list_times[10_000] / list_times[100], 2),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--job-seconds", default="60-300", help="each job's length at the host, a range (LO-HI)")
    parser.add_argument("--rate", type=float, default=20.0, help="the emulated host's status calls per second")
    a = parser.parse_args()
    lo, _, hi = a.job_seconds.partition("-")
    result = anyio.run(main, a.tasks, float(lo), float(hi or lo), a.rate)
    print(json.dumps(result, indent=2))
