"""Three replicas on one PostgreSQL, one killed with SIGKILL midway, many tasks in flight at the DashScope emulator.

Run (a throwaway PostgreSQL cluster is started as in the tests; compressed emulator timings):

    .venv/bin/python bench/replicas.py --tasks 200

Figures: paid jobs lost (submitted and never finished), jobs created at the host beyond one per task, results
downloaded more than once, seconds from the host finishing a job to its video on disk (median, p99), how long the
killed replica's jobs waited before another took them, and host calls per task-minute beside the same run's
single-replica anchor (one replica alone doing the same work after).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
KEY = "sk-bench0000000000000000"

EMULATOR = f"""
import json, random, sys, pathlib, tempfile
sys.path.insert(0, {str(ROOT / "tests")!r})
from emulators.dashscope import DashScopeEmulator
import media
lo, hi = float(sys.argv[1]), float(sys.argv[2])
with DashScopeEmulator("{KEY}", media.Results(pathlib.Path(tempfile.mkdtemp()))) as e:
    rng = random.Random(1)
    e.job_timing = lambda: (lambda total: (total * 0.2, total * 0.8))(rng.uniform(lo, hi))
    print(e.base_url, flush=True)
    for line in sys.stdin:
        fetched = {{}}
        for r in e.received:
            if r.path.startswith("/results/"):
                job = r.path[len("/results/"):].removesuffix(".mp4")
                fetched[job] = fetched.get(job, 0) + 1
        calls = sum(1 for r in e.received if r.path.startswith("/api/v1/tasks"))
        done = {{t.task_id: t.done_at(e.timing) for t in e.tasks.values()}}
        print(json.dumps({{"created": len(e.tasks), "fetched": fetched, "calls": calls, "done": done}}), flush=True)
"""


def replica(env: dict[str, str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "wan_r2v_mcp", "serve", "--transport", "http", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("a replica did not start")
        time.sleep(0.1)


async def submit(urls: list[str], count: int, first: int) -> list[str]:
    """`count` requests, spread over the replicas, 20 at a time; the task ids that came back."""
    ids: list[str] = []
    limit = anyio.Semaphore(20)

    async def one(client: Client, i: int) -> None:
        async with limit:
            r = await client.call_tool("generate_r2v", {
                "prompt": f"Image 1 waves, take {i}", "provider": "dashscope", "duration": 2, "resolution": "720p",
                "reference_images": ["https://cdn.example.com/ref.png"], "allow_duplicate": True, "wait_seconds": 0})
            if not r.is_error:
                ids.append((r.structured_content or {})["task_id"])

    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(Client(streamable_http_client(u), mode="legacy")) for u in urls]
        async with anyio.create_task_group() as tg:
            for i in range(count):
                tg.start_soon(one, clients[i % len(clients)], first + i)
    return ids


def settle(url: str, ids: list[str], timeout: float) -> dict[str, tuple]:
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            rows = conn.execute("SELECT task_id, status, provider_task_id, finished_at FROM tasks WHERE "
                                "task_id = ANY(%s)", (ids,)).fetchall()
            ended = [r for r in rows if r[1] in ("succeeded", "failed", "canceled")]
            if len(ended) == len(ids) or time.monotonic() > deadline:
                return {r[0]: r for r in rows}
            time.sleep(0.5)


def run(tasks: int, replicas: int) -> dict:
    import pg

    with pg.cluster() as cluster, tempfile.TemporaryDirectory() as tmp:
        db = pg.fresh_database(cluster)
        emu = subprocess.Popen([sys.executable, "-c", EMULATOR, "4", "12"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
        base = emu.stdout.readline().strip()

        def stats() -> dict:
            emu.stdin.write("\n")
            emu.stdin.flush()
            return json.loads(emu.stdout.readline())

        env = {k: v for k, v in os.environ.items() if not k.startswith(("WAN_R2V_", "DASHSCOPE_"))}
        env.update(WAN_R2V_DATA_DIR=f"{tmp}/data", WAN_R2V_OUTPUT_DIR=f"{tmp}/out", WAN_R2V_TIME_SCALE="0.1",
                   WAN_R2V_PROGRESS_INTERVAL="1", WAN_R2V_DATABASE_URL=db, DASHSCOPE_API_KEY=KEY,
                   DASHSCOPE_BASE_URL=base)
        ports = [pg._free_port() for _ in range(replicas)]
        procs = [replica(env, p) for p in ports]
        urls = [f"http://127.0.0.1:{p}/mcp" for p in ports]
        killed_at: list[float] = []

        def kill() -> None:
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait()
            killed_at.append(time.time())

        try:
            import psycopg

            half = tasks // 2
            ids = anyio.run(submit, urls, half, 0)
            with psycopg.connect(db, autocommit=True) as conn:  # whose tasks the killed replica followed
                holder_pid = str(procs[0].pid)
                orphans = [r[0] for r in conn.execute("SELECT task_id, holder FROM leases").fetchall()
                           if r[1].split(":")[1] == holder_pid]
            kill()
            ids += anyio.run(submit, urls[1:], tasks - half, half)
            rows = settle(db, ids, timeout=300)
            host = stats()
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
                    p.wait(timeout=30)
        lag = [r[3] - host["done"][r[2]] for r in rows.values() if r[1] == "succeeded" and r[2] in host["done"]]
        taken = [rows[t][3] - max(killed_at[0], host["done"].get(rows[t][2], 0)) for t in orphans
                 if t in rows and rows[t][1] == "succeeded"]
        lost = [t for t in ids if t not in rows or rows[t][1] != "succeeded"]
        made = sum(1 for r in rows.values() if r[2])
        emu.stdin.close()
        emu.wait(timeout=30)
        return {
            "replicas": replicas, "tasks": len(ids), "lost": len(lost), "created_at_host": host["created"],
            "created_beyond_one_per_task": host["created"] - made,
            "downloaded_more_than_once": sum(1 for n in host["fetched"].values() if n > 1),
            "done_to_disk_median_s": round(statistics.median(lag), 2) if lag else None,
            "done_to_disk_p99_s": round(sorted(lag)[int(0.99 * (len(lag) - 1))], 2) if lag else None,
            "killed_replicas_tasks": len(orphans),
            "their_wait_after_kill_median_s": round(statistics.median(taken), 2) if taken else None,
            "their_wait_after_kill_max_s": round(max(taken), 2) if taken else None,
            "host_status_calls": host["calls"],
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    args = parser.parse_args()
    figures = run(args.tasks, 3)
    print(json.dumps(figures, indent=2))
    ok = figures["lost"] == 0 and figures["created_beyond_one_per_task"] == 0 and \
        figures["downloaded_more_than_once"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
