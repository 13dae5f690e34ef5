"""Three replicas on one PostgreSQL, one killed with SIGKILL midway, many tasks in flight at the DashScope emulator.

Run (a throwaway PostgreSQL cluster is started as in the tests; compressed emulator timings):

    .venv/bin/python bench/replicas.py --tasks 200

Figures, for three replicas with one killed and then, as the anchor, one replica alone doing the same work: paid
jobs lost (submitted and never finished), jobs created at the host beyond one per task, results downloaded more
than once, jobs polled by two replicas (other than the killed one's, taken over), seconds from the host finishing
a job to its video on disk (median, p99), how long the killed replica's jobs waited before another took them, the
host's status calls (per task; per minute of the tasks' lives and per minute of their jobs at the host; the
busiest second), and get_task (wait 0) p50/p99 from five callers while the tasks run; the ratios of three replicas
to one. Each replica calls with a key of its own, so the emulator knows which replica made each call.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
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
import json, random, sys, pathlib, tempfile, time
sys.path.insert(0, {str(ROOT / "tests")!r})
from emulators.dashscope import DashScopeEmulator
import media
lo, hi = float(sys.argv[1]), float(sys.argv[2])

class Bench(DashScopeEmulator):
    # Each replica has its own key ("<key>-r<n>"), so every host call says which replica made it.
    log = []

    def handle(self, req):
        auth = req.headers.get("authorization", "")
        who = auth.rsplit("-r", 1)[1] if auth.startswith("Bearer {KEY}-r") else "?"
        if who != "?":
            req.headers["authorization"] = "Bearer {KEY}"
        name = self.name_of(req)
        if name in ("create", "poll", "list", "cancel"):
            job = req.path.split("/tasks/", 1)[1].split("/")[0] if name in ("poll", "cancel") else ""
            self.log.append((time.time(), who, name, job))
        return super().handle(req)

with Bench("{KEY}", media.Results(pathlib.Path(tempfile.mkdtemp()))) as e:
    rng = random.Random(1)
    e.job_timing = lambda: (lambda total: (total * 0.2, total * 0.8))(rng.uniform(lo, hi))
    print(e.base_url, flush=True)
    for line in sys.stdin:
        fetched = {{}}
        for r in e.received:
            if r.path.startswith("/results/"):
                job = r.path[len("/results/"):].removesuffix(".mp4")
                fetched[job] = fetched.get(job, 0) + 1
        done = {{t.task_id: t.done_at(e.timing) for t in e.tasks.values()}}
        made = {{t.task_id: t.created for t in e.tasks.values()}}
        print(json.dumps({{"created": len(e.tasks), "fetched": fetched, "log": e.log, "done": done, "made": made}}),
              flush=True)
"""


def replica(env: dict[str, str], port: int) -> subprocess.Popen:
    """A replica serving HTTP on `port`; its log goes to BENCH_LOGS/replica-<port>.log when that folder is given."""
    logs = os.environ.get("BENCH_LOGS")
    log = open(Path(logs) / f"replica-{port}.log", "w") if logs else subprocess.DEVNULL  # noqa: SIM115 - the child's
    proc = subprocess.Popen([sys.executable, "-m", "wan_r2v_mcp", "serve", "--transport", "http", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=log)
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


def _ended(url: str, ids: list[str]) -> dict[str, tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT task_id, status, provider_task_id, finished_at, created_at FROM tasks WHERE "
                            "task_id = ANY(%s)", (ids,)).fetchall()
    return {r[0]: r for r in rows}


def _say_unfinished(url: str, ids: list[str]) -> None:
    """What the tasks that never ended were doing, and who held them (on stderr)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT t.phase, left(t.stage, 70), split_part(l.holder, ':', 2), round((l.until - extract(epoch from "
            "clock_timestamp()))::numeric, 1) > 0 FROM tasks t LEFT JOIN leases l ON l.task_id = t.task_id WHERE "
            "t.task_id = ANY(%s) AND t.finished_at IS NULL", (ids,)).fetchall()
        print("unfinished (phase, stage, holder pid, lease live):", file=sys.stderr)
        for what, n in collections.Counter(rows).most_common(20):
            print(f"  {n} x {what}", file=sys.stderr)
        print("claims:", conn.execute("SELECT task_id, holder FROM leases WHERE task_id NOT LIKE 'r2v_%'").fetchall(),
              "replicas:", conn.execute("SELECT holder FROM replicas").fetchall(), file=sys.stderr)


def watch_claims(db: str, orphans: list[str], dead: str, claimed: list[float]) -> None:
    """Record when no orphan is left to the dead replica: each finished, or claimed by a live one (read from the
    database every 20 ms, from the bench, not from any replica)."""
    import psycopg

    with psycopg.connect(db, autocommit=True) as conn:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            left = conn.execute(
                "SELECT count(*) FROM tasks t LEFT JOIN leases l ON l.task_id = t.task_id WHERE t.task_id = ANY(%s) "
                "AND t.finished_at IS NULL AND (l.holder IS NULL OR position(%s in l.holder) > 0)",
                (orphans, dead)).fetchone()[0]
            if not left:
                claimed.append(time.time())
                return
            time.sleep(0.02)


async def settle(db: str, urls: list[str], ids: list[str], timeout: float, callers: int = 5) -> tuple[dict, list]:
    """Wait until every task ended, while `callers` clients ask get_task (wait 0) of random tasks on the replicas
    in turn; the rows, and each get_task's seconds."""
    import random

    rng = random.Random(2)
    seconds: list[float] = []
    done = anyio.Event()

    async def caller(n: int) -> None:
        async with Client(streamable_http_client(urls[n % len(urls)]), mode="legacy") as client:
            while not done.is_set():
                start = time.perf_counter()
                await client.call_tool("get_task", {"task_id": rng.choice(ids), "wait_seconds": 0})
                seconds.append(time.perf_counter() - start)

    deadline = time.monotonic() + timeout
    async with anyio.create_task_group() as tg:
        for n in range(callers):
            tg.start_soon(caller, n)
        while True:
            rows = await anyio.to_thread.run_sync(_ended, db, ids)
            ended = [r for r in rows.values() if r[1] in ("succeeded", "failed", "canceled")]
            if len(ended) == len(ids):
                break
            if time.monotonic() > deadline:
                await anyio.to_thread.run_sync(_say_unfinished, db, ids)
                break
            await anyio.sleep(0.5)
        done.set()
    return rows, seconds


def _pct(values: list[float], q: float) -> float | None:
    return round(sorted(values)[int(q * (len(values) - 1))], 3) if values else None


def run(tasks: int, replicas: int, kill: bool) -> dict:
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
                   WAN_R2V_PROGRESS_INTERVAL="1", WAN_R2V_DATABASE_URL=db, DASHSCOPE_BASE_URL=base)
        ports = [pg._free_port() for _ in range(replicas)]
        procs = [replica({**env, "DASHSCOPE_API_KEY": f"{KEY}-r{n}"}, p) for n, p in enumerate(ports)]
        urls = [f"http://127.0.0.1:{p}/mcp" for p in ports]
        killed_at: list[float] = []
        orphans: list[str] = []
        claimed: list[float] = []  # when every orphan was claimed by a live replica (or had finished)
        started = time.time()
        try:
            import psycopg

            half = tasks // 2
            ids = anyio.run(submit, urls, half, 0)
            live = urls
            if kill:
                with psycopg.connect(db, autocommit=True) as conn:
                    # Killed midway: once the first half is at the host (answered at wait 0, a task's create goes
                    # out after its answer; a kill among creates in flight is the harness kills.py's part).
                    deadline = time.monotonic() + 60
                    while conn.execute("SELECT count(*) FROM tasks WHERE task_id = ANY(%s) AND provider_task_id IS "
                                       "NULL AND status NOT IN ('failed', 'canceled')", (ids,)).fetchone()[0]:
                        if time.monotonic() > deadline:
                            break
                        time.sleep(0.1)
                with psycopg.connect(db, autocommit=True) as conn:  # whose tasks the killed replica followed
                    holder_pid = str(procs[0].pid)
                    orphans = [r[0] for r in conn.execute("SELECT task_id, holder FROM leases").fetchall()
                               if r[1].split(":")[1] == holder_pid]
                procs[0].send_signal(signal.SIGKILL)
                procs[0].wait()
                killed_at.append(time.time())
                live = urls[1:]
                watcher = threading.Thread(target=watch_claims, args=(db, orphans, f":{holder_pid}:", claimed),
                                           daemon=True)
                watcher.start()
            ids += anyio.run(submit, live, tasks - half, half)
            rows, get_task_s = anyio.run(settle, db, live, ids, 300 + tasks * 0.5)
            host = stats()
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
                    p.wait(timeout=30)
        elapsed = time.time() - started
        task_minutes = sum((r[3] or time.time()) - r[4] for r in rows.values()) / 60
        # The minutes a job needed following: from its create at the host to its video on disk (a task waiting for
        # its create to go out is not polled; a replica slower to send creates would look thriftier per minute).
        followed_minutes = sum((r[3] or time.time()) - host["made"][r[2]] for r in rows.values()
                               if r[2] in host["made"]) / 60
        lag = [r[3] - host["done"][r[2]] for r in rows.values() if r[1] == "succeeded" and r[2] in host["done"]]
        taken = [rows[t][3] - max(killed_at[0], host["done"].get(rows[t][2], 0)) for t in orphans
                 if t in rows and rows[t][1] == "succeeded"]
        lost = [t for t in ids if t not in rows or rows[t][1] != "succeeded"]
        made = sum(1 for r in rows.values() if r[2])
        job_of = {r[2]: r[0] for r in rows.values() if r[2]}
        pollers: dict[str, set[str]] = {}
        for _, who, name, job in host["log"]:
            if name == "poll":
                pollers.setdefault(job, set()).add(who)
        taken_over = {rows[t][2] for t in orphans if t in rows}
        status = sorted(t for t, _, name, _ in host["log"] if name in ("poll", "list"))
        busiest = max((bisect.bisect_left(status, t + 1.0) - i for i, t in enumerate(status)), default=0)
        emu.stdin.close()
        emu.wait(timeout=30)
        return {
            "replicas": replicas, "tasks": len(ids), "lost": len(lost), "created_at_host": host["created"],
            "created_beyond_one_per_task": host["created"] - made,
            # a download begun again: of the killed replica's jobs (cut off by the kill), and of any other
            "downloaded_more_than_once": sum(1 for j, n in host["fetched"].items() if n > 1 and j not in taken_over),
            "killed_replicas_downloads_begun_again": sum(1 for j, n in host["fetched"].items()
                                                        if n > 1 and j in taken_over),
            # a job polled by two replicas, other than the killed replica's jobs taken over after its death
            "followed_by_two_replicas": sum(1 for job, who in pollers.items()
                                            if len(who) > 1 and job not in taken_over and job in job_of),
            "done_to_disk_median_s": round(statistics.median(lag), 2) if lag else None,
            "done_to_disk_p99_s": _pct(lag, 0.99),
            "done_to_disk_p99_of_the_others_s": _pct([r[3] - host["done"][r[2]] for t, r in rows.items()
                                                      if t not in orphans and r[1] == "succeeded"
                                                      and r[2] in host["done"]], 0.99),
            "killed_replicas_tasks": len(orphans),
            "their_wait_after_kill_median_s": round(statistics.median(taken), 2) if taken else None,
            "their_wait_after_kill_max_s": round(max(taken), 2) if taken else None,
            "their_claims_taken_after_kill_s": round(claimed[0] - killed_at[0], 2) if claimed and killed_at else None,
            "host_status_calls": len(status),
            "of_them_list_pages": sum(1 for _, _, name, _ in host["log"] if name == "list"),
            "list_pages_by_replica": dict(sorted(collections.Counter(who for _, who, name, _ in host["log"]
                                                                      if name == "list").items())),
            "host_status_calls_per_task": round(len(status) / max(1, len(ids)), 2),
            # per minute of the tasks' own lives (each from its request to its end), summed
            "host_status_calls_per_task_minute": round(len(status) / max(1e-9, task_minutes), 3),
            # per minute of the jobs at the host (each from its create to its video on disk), summed
            "host_status_calls_per_followed_minute": round(len(status) / max(1e-9, followed_minutes), 3),
            "host_status_calls_busiest_second": busiest,
            "get_task_calls": len(get_task_s),
            "get_task_p50_ms": round(1000 * statistics.median(get_task_s), 1) if get_task_s else None,
            "get_task_p99_ms": round(1000 * _pct(get_task_s, 0.99), 1) if get_task_s else None,
            "seconds": round(elapsed, 1),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    args = parser.parse_args()
    figures = {"three_replicas_one_killed": run(args.tasks, 3, kill=True),
               "one_replica_anchor": run(args.tasks, 1, kill=False)}
    three, one = figures.values()
    figures["ratios"] = {
        "status_calls_per_task": round(three["host_status_calls_per_task"] / one["host_status_calls_per_task"], 2),
        "status_calls_per_task_minute": round(three["host_status_calls_per_task_minute"] /
                                              one["host_status_calls_per_task_minute"], 2),
        "status_calls_per_followed_minute": round(three["host_status_calls_per_followed_minute"] /
                                                  one["host_status_calls_per_followed_minute"], 2),
        "busiest_second": round(three["host_status_calls_busiest_second"] /
                                max(1, one["host_status_calls_busiest_second"]), 2),
        "get_task_p50": round(three["get_task_p50_ms"] / one["get_task_p50_ms"], 2),
        "get_task_p99": round(three["get_task_p99_ms"] / one["get_task_p99_ms"], 2),
    }
    print(json.dumps(figures, indent=2))
    ok = all(f["lost"] == 0 and f["created_beyond_one_per_task"] == 0 and f["downloaded_more_than_once"] == 0
             and f["followed_by_two_replicas"] == 0 for f in (three, one))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
