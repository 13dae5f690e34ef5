"""Fault-injection soak: hundreds of randomised paid jobs against the DashScope emulator, every host fault at once.

Run it (a few minutes for 500 jobs):

    .venv/bin/python tests/harness/faults.py --jobs 500

Each job gets a unique prompt, and random faults are queued on the routes its requests will meet: 429
storms with Retry-After, 5xx before and after the host makes the job, connection resets before and after,
stalls past the request deadline, malformed and HTML bodies, wrong content types, drip-fed, truncated and
oversized downloads, hanging upload policies; foreign pending jobs are made on the same key, and pairs of
jobs lose their create answers at the same moment. One job in ten is a 2-shot sequence with continuity (a
saved character), whose shots meet the same faults. Then it counts what must be zero: paid jobs lost, jobs
created twice, wrong jobs adopted, wrong videos delivered, tasks and sequences left unfinished, sequences
whose joined video is not the sum of their shots, and tool calls that ran past the wait cap. One result in
ten lasts shorter or longer than asked: it must be kept, not fetched again until it expires.

Then three more rounds, in the same command:
- the job list forbidden (403), failing (500) and garbled for good, one after the other: every job must still
  land on disk, polled at the host's own pace; it reports the time from the host finishing to the file on disk;
- 20 concurrent requests straddling a daily cap: the jobs made must never together pass it;
- sequences and redos straddling both caps at once: no sequence past the per-task cap, nothing past the daily one.

A short version runs in the default suite (tests/test_harness.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from harness import truth  # noqa: E402
from mcp import Client  # noqa: E402

from wan_r2v_mcp.config import Settings  # noqa: E402
from wan_r2v_mcp.server import build_server  # noqa: E402

KEY = "sk-soak0123456789abcdef"
CAP = 3.0  # the wait cap of every tool call
DEADLINE = 1.0  # each host request's overall deadline
SLACK = 3.0  # "a few seconds" past the cap that a call may take

FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("create", {"status": 429, "body": {"code": "Throttling.RateQuota", "message": "Requests rate limit exceeded"},
                "headers": {"Retry-After": "1"}}),
    ("create", {"status": 500, "body": {"code": "InternalError", "message": "before"}}),  # nothing made
    ("create", {"status": 500, "acts": True, "body": {"code": "InternalError", "message": "after"}}),  # made
    ("create", {"drop": True, "acts": False}),  # reset before the host saw it
    ("create", {"drop": True}),  # reset after the host made it
    ("create", {"hold": DEADLINE + 1.0}),  # made, then the answer stalls past the deadline
    ("create", {"raw": b"<html><body>502 Bad Gateway</body></html>", "acts": True}),  # made, answer malformed
    ("poll", {"status": 429, "times": 4, "headers": {"Retry-After": "0.2"}, "body": {"code": "Throttling"}}),
    ("poll", {"status": 503, "times": 2, "body": {"code": "ServiceUnavailable"}}),
    ("poll", {"drop": True}),
    ("poll", {"raw": b"{\"output\": {\"task_status"}),
    ("poll", {"hold": DEADLINE + 0.5}),
    ("list", {"status": 500, "body": {"code": "InternalError"}}),
    ("list", {"hold": DEADLINE + 0.5}),
    ("policy", {"hold": DEADLINE + 1.0}),  # a hanging upload-policy call
    ("policy", {"status": 503, "body": {"code": "ServiceUnavailable"}}),
    ("upload", {"status": 503, "body": b"<Error><Code>ServiceUnavailable</Code></Error>"}),
    ("upload", {"drop": True, "acts": False}),
    ("result", {"status": 503, "body": b"<Error>SlowDown</Error>"}),
    ("result", {"partial": 1000, "hold": 0.1}),  # truncated
    ("result", {"drip": 0.8}),  # drip-fed past the download deadline
    ("result", {"declare_length": 5 * 1024**3}),  # oversized
    ("result", {"raw": b"<html><body>Access is being verified</body></html>", "headers": {"Content-Type": "text/html"}}),
    ("result", {"raw": b"<html>not a video</html>", "headers": {"Content-Type": "video/mp4"}}),
    ("result", {"headers": {"Content-Type": "application/octet-stream"}}),  # a wrong type on a real video: fine
]


@dataclass
class Figures:
    jobs: int = 0
    host_jobs: int = 0
    paid_jobs_lost: int = 0
    created_twice: int = 0
    wrong_jobs_adopted: int = 0
    wrong_videos: int = 0
    not_terminal: int = 0
    calls_past_cap: int = 0
    sequences: int = 0
    sequence_outcomes: dict[str, int] = field(default_factory=dict)
    sequences_not_joined: int = 0
    longest_call_seconds: float = 0.0
    foreign_jobs: int = 0
    results_of_another_length: int = 0  # asked one length, served another
    results_not_kept: int = 0  # of those, not saved with a note of how they differ
    faults_injected: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.paid_jobs_lost or self.created_twice or self.wrong_jobs_adopted or self.wrong_videos
                    or self.not_terminal or self.calls_past_cap or self.sequences_not_joined
                    or self.results_not_kept)


async def run(jobs: int = 500, *, concurrency: int = 20, seed: int = 7, folder: Path | None = None) -> Figures:
    rng = random.Random(seed)
    dirs, image = truth.workspace(folder, "r2v-soak-")
    figures = Figures(jobs=jobs)
    started = time.monotonic()
    with truth.host(KEY, dirs, pending=0.2, running=0.3) as host:
        skewed: dict[str, float] = {}  # host job -> the seconds its result really lasts
        plain: set[str] = set()

        def length_of(task: Any, seconds: float) -> float:
            # Decided once per job (a result is fetched again after a fault), and well past the tolerance.
            if task.task_id not in skewed and task.task_id not in plain:
                if rng.random() < 0.1:
                    skewed[task.task_id] = rng.choice([0.4, seconds + 4.0])
                else:
                    plain.add(task.task_id)
            return skewed.get(task.task_id, seconds)

        host.length_of = length_of
        settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"], allowed_dirs=str(dirs["refs"]),
                            hosts={"dashscope": {"api_key": KEY, "base_url": host.base_url}}, wait_cap_seconds=CAP,
                            progress_interval_seconds=1.0, request_deadline_seconds=DEADLINE,
                            upload_deadline_seconds=DEADLINE * 2, download_deadline_seconds=3.0, time_scale=0.05)
        prompts: dict[str, int] = {}
        durations: list[float] = []
        limiter = anyio.Semaphore(concurrency)

        async def timed(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
            t0 = time.monotonic()
            result = await client.call_tool(tool, args)
            durations.append(time.monotonic() - t0)
            if result.structured_content is None:
                raise AssertionError(f"{tool} answered without a task view: {result.content}")
            return result.structured_content

        async def one(client: Client, i: int, faults: list[tuple[str, dict[str, Any]]]) -> None:
            async with limiter:
                for route, kw in faults:
                    host.fault(route, **kw)
                if rng.random() < 0.1:  # a sequence: its shots meet the faults too
                    shots = [f"waves, soak sequence {i} of run {seed}, shot {k}" for k in (1, 2)]
                    for shot in shots:
                        prompts[f"Image 1 {shot}"] = i
                    view = await timed(client, "generate_sequence", {
                        "shots": [{"prompt": f"@hero {shot}", "duration": 2} for shot in shots],
                        "characters": ["hero"], "provider": "dashscope", "resolution": "720p", "wait_seconds": 0})
                    while view["status"] in ("queued", "running"):
                        view = await timed(client, "get_task", {"task_id": view["task_id"], "wait_seconds": CAP})
                    return
                prompt = f"Image 1 waves, soak job {i} of run {seed}"
                prompts[prompt] = i
                local = rng.random() < 0.3
                args = {"prompt": prompt, "provider": "dashscope", "resolution": "720p", "duration": 2,
                        "reference_images": [str(image) if local else "https://cdn.example.com/ref.png"],
                        "wait_seconds": rng.choice([0, 1, CAP]), "allow_duplicate": True}
                view = await timed(client, "generate_r2v", args)
                while view["status"] in ("queued", "running"):
                    view = await timed(client, "get_task", {"task_id": view["task_id"], "wait_seconds": CAP})

        async with Client(build_server(settings)) as client:
            saved = await client.call_tool("save_character", {"name": "hero", "reference": str(image)})
            assert not saved.is_error, saved.content
            async with anyio.create_task_group() as tg:
                i = 0
                while i < jobs:
                    if rng.random() < 0.05:  # another client on the same key makes a job of its own
                        figures.foreign_jobs += 1
                        host.make_job({"model": "wan2.7-r2v", "input": {"prompt": f"someone else's prompt {i}",
                                                                        "media": []}, "parameters": {"duration": 2}})
                    if rng.random() < 0.06 and i + 1 < jobs:  # two creates lose their answers at the same moment
                        host.fault("create", drop=True)
                        host.fault("create", drop=True)
                        figures.faults_injected += 2
                        tg.start_soon(one, client, i, [])
                        tg.start_soon(one, client, i + 1, [])
                        i += 2
                        continue
                    faults = [rng.choice(FAULTS) for _ in range(rng.choice([0, 1, 1, 2]))]
                    figures.faults_injected += len(faults)
                    tg.start_soon(one, client, i, faults)
                    i += 1
                    await anyio.sleep(0.01)
            seen = truth.compare(settings.data.ledger, host, set(prompts))
            figures.host_jobs, figures.paid_jobs_lost, figures.created_twice = (seen.host_jobs,
                                                                                seen.paid_not_delivered,
                                                                                seen.created_twice)
            figures.wrong_jobs_adopted, figures.wrong_videos, figures.not_terminal = (seen.wrong_jobs_adopted,
                                                                                      seen.wrong_videos,
                                                                                      seen.not_terminal)
            figures.outcomes = seen.outcomes
            figures.sequences, figures.sequences_not_joined, unfinished, figures.sequence_outcomes = truth.sequences(
                settings.data.ledger)
            figures.not_terminal += unfinished
            figures.results_of_another_length = len(skewed)
            figures.results_not_kept = _not_kept(settings.data.ledger, set(skewed))
    figures.calls_past_cap = sum(d > CAP + SLACK for d in durations)
    figures.longest_call_seconds = round(max(durations, default=0.0), 2)
    figures.seconds = round(time.monotonic() - started, 1)
    return figures


def _not_kept(ledger: Path, jobs: set[str]) -> int:
    """Results of another length than asked whose task did not save them, saying how they differ."""
    import sqlite3

    with sqlite3.connect(ledger) as db:
        rows = dict(db.execute("SELECT provider_task_id, output FROM tasks WHERE provider_task_id IS NOT NULL"))
    return sum(1 for job in jobs if job in rows and "differs" not in json.loads(rows[job] or "{}"))


# ------------------------------------------------------------------ the job list failing for good

LIST_FAULTS = {
    "forbidden": {"status": 403, "body": {"code": "AccessDenied", "message": "this key may not list tasks"}},
    "failing": {"status": 500, "body": {"code": "InternalError", "message": "list unavailable"}},
    "garbled": {"raw": b"{\"data\": [{\"task_id\": ", "headers": {"Content-Type": "application/json"}},
}


@dataclass
class ListFigures:
    mode: str
    jobs: int = 0
    delivered: int = 0
    poll_interval_seconds: float = 0.0  # DashScope's documented 15 s, compressed like every timing here
    done_to_disk_median: float = 0.0  # seconds from the host finishing a job to its video on disk
    done_to_disk_max: float = 0.0

    @property
    def ok(self) -> bool:
        return self.delivered == self.jobs and self.done_to_disk_max <= 2 * self.poll_interval_seconds + 2.0


async def run_list_failing(jobs: int = 20, *, seed: int = 7, folder: Path | None = None) -> list[ListFigures]:
    import sqlite3
    import statistics

    rng = random.Random(seed)
    found = []
    for mode, fault in LIST_FAULTS.items():
        dirs, _ = truth.workspace(folder / mode if folder else None, f"r2v-list-{mode}-")
        scale = 0.05
        with truth.host(KEY, dirs, pending=0.2, running=0.3) as host:
            host.job_timing = lambda: (rng.uniform(0.2, 1.0), rng.uniform(0.3, 2.0))
            host.fault("list", times=10**9, **fault)
            # Creates keep their answers here (losing them is the main soak's part): this round is about the list.
            settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"],
                                hosts={"dashscope": {"api_key": KEY, "base_url": host.base_url}},
                                wait_cap_seconds=CAP, progress_interval_seconds=1.0,
                                request_deadline_seconds=20.0, download_deadline_seconds=20.0, time_scale=scale)
            figures = ListFigures(mode=mode, jobs=jobs, poll_interval_seconds=15.0 * scale)
            async with Client(build_server(settings)) as client:
                async def one(i: int, mode: str = mode) -> None:
                    result = await client.call_tool("generate_r2v", {
                        "prompt": f"Image 1 waves, list {mode} job {i}", "provider": "dashscope", "duration": 2,
                        "resolution": "720p", "reference_images": ["https://cdn.example.com/ref.png"],
                        "wait_seconds": 0, "allow_duplicate": True})
                    view = result.structured_content or {}
                    while view.get("status") in ("queued", "running"):
                        view = (await client.call_tool("get_task", {"task_id": view["task_id"],
                                                                    "wait_seconds": CAP})).structured_content or {}

                async with anyio.create_task_group() as tg:
                    for i in range(jobs):
                        tg.start_soon(one, i)
            with sqlite3.connect(settings.data.ledger) as db:
                rows = db.execute("SELECT provider_task_id, status, finished_at FROM tasks").fetchall()
            delays = []
            for job_id, status, finished in rows:
                task = host.tasks.get(job_id or "")
                if task is not None and status == "succeeded":
                    figures.delivered += 1
                    delays.append(max(0.0, finished - task.done_at(host.timing)))
            figures.done_to_disk_median = round(statistics.median(delays), 2) if delays else 0.0
            figures.done_to_disk_max = round(max(delays, default=0.0), 2)
        found.append(figures)
    return found


# ------------------------------------------------------------------ the caps, straddled

@dataclass
class CapFigures:
    requests: int = 0
    jobs_made: int = 0
    refused_over_budget: int = 0
    daily_cap: float = 0.0
    spent: float = 0.0  # what the jobs made cost, by the same estimates the caps use
    past_daily_cap: int = 0
    sequences: int = 0
    redos_asked: int = 0
    redos_made: int = 0
    per_task_cap: float = 0.0
    sequences_past_task_cap: int = 0
    other_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.past_daily_cap or self.sequences_past_task_cap or self.other_errors)


async def run_caps(*, seed: int = 7, folder: Path | None = None) -> CapFigures:
    """20 concurrent $0.20 requests under a $1.00 daily cap; then, with a fresh budget, five concurrent $0.40
    sequences and redo storms under a $0.80 per-task cap and a $2.40 daily cap."""
    import sqlite3

    rng = random.Random(seed)
    figures = CapFigures(daily_cap=1.0, per_task_cap=0.8)
    dirs, image = truth.workspace(folder / "single" if folder else None, "r2v-caps-")
    with truth.host(KEY, dirs, pending=0.1, running=0.2) as host:
        settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"], allowed_dirs=str(dirs["refs"]),
                            hosts={"dashscope": {"api_key": KEY, "base_url": host.base_url}}, wait_cap_seconds=CAP,
                            progress_interval_seconds=1.0, time_scale=0.05, max_cost_per_day_usd=1.0)
        async with Client(build_server(settings)) as client:
            async def one(i: int) -> None:
                result = await client.call_tool("generate_r2v", {
                    "prompt": f"Image 1 waves, cap request {i}", "provider": "dashscope", "duration": 2,
                    "resolution": "720p", "reference_images": ["https://cdn.example.com/ref.png"], "wait_seconds": 0})
                words = result.content[0].text if result.content else ""
                if result.is_error:
                    if "[over_budget]" in words:
                        figures.refused_over_budget += 1
                    else:
                        figures.other_errors.append(words[:200])

            figures.requests = 20
            async with anyio.create_task_group() as tg:
                for i in range(figures.requests):
                    tg.start_soon(one, i)
        with sqlite3.connect(settings.data.ledger) as db:
            costs = [c for (c,) in db.execute("SELECT cost_estimate FROM tasks")]
        figures.jobs_made = len(host.tasks)
        figures.spent = round(sum(costs), 2)
        figures.past_daily_cap = int(figures.spent > figures.daily_cap + 1e-9) + abs(len(costs) - figures.jobs_made)

    dirs, image = truth.workspace(folder / "sequences" if folder else None, "r2v-caps-seq-")
    with truth.host(KEY, dirs, pending=0.1, running=0.3) as host:
        settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"], allowed_dirs=str(dirs["refs"]),
                            hosts={"dashscope": {"api_key": KEY, "base_url": host.base_url}}, wait_cap_seconds=CAP,
                            progress_interval_seconds=1.0, time_scale=0.05, max_cost_per_task_usd=0.8,
                            max_cost_per_day_usd=2.4)
        async with Client(build_server(settings)) as client:
            await client.call_tool("save_character", {"name": "hero", "reference": str(image)})

            async def sequence(i: int) -> None:  # $0.40: two 2 s shots at 720p
                result = await client.call_tool("generate_sequence", {
                    "shots": [{"prompt": f"@hero walks, sequence {i} shot {k}", "duration": 2} for k in (1, 2)],
                    "characters": ["hero"], "provider": "dashscope", "resolution": "720p", "wait_seconds": 0})
                if result.is_error:
                    words = result.content[0].text
                    if "[over_budget]" not in words:
                        figures.other_errors.append(words[:200])
                    return
                figures.sequences += 1
                seq = (result.structured_content or {})["task_id"]

                async def settle() -> None:
                    view = {"status": "running"}
                    while view.get("status") in ("queued", "running"):
                        view = (await client.call_tool("get_task", {"task_id": seq, "wait_seconds": CAP})
                                ).structured_content or {}

                async def redo(shot: int) -> None:
                    figures.redos_asked += 1
                    answer = await client.call_tool("redo_shot", {"task_id": seq, "shot": shot})
                    words = answer.content[0].text if answer.content else ""
                    if not answer.is_error:
                        figures.redos_made += 1
                    elif not any(w in words for w in ("[over_budget]", "is still being made", "has not been started",
                                                      "being joined", "changed while")):
                        figures.other_errors.append(words[:200])

                await settle()
                for _ in range(rng.choice([1, 2])):  # a storm: both shots redone at once, the second opening on
                    async with anyio.create_task_group() as storm:  # the first's new take
                        for shot in rng.sample([1, 2], rng.choice([1, 2])):
                            storm.start_soon(redo, shot)
                    await settle()

            async with anyio.create_task_group() as tg:
                for i in range(5):
                    tg.start_soon(sequence, i)
        with sqlite3.connect(settings.data.ledger) as db:
            rows = db.execute("SELECT sequence_id, cost_estimate, status, phase, provider_task_id FROM tasks").fetchall()
        counted = [(s, c) for s, c, status, phase, job in rows
                   if status in ("queued", "running", "succeeded") or (phase == "canceled" and job)]
        by_sequence: dict[str, float] = {}
        for sequence_id, cost in counted:
            by_sequence[sequence_id] = by_sequence.get(sequence_id, 0.0) + cost
        figures.sequences_past_task_cap = sum(total > 0.8 + 1e-9 for total in by_sequence.values())
        figures.past_daily_cap += int(sum(c for _, c in counted) > 2.4 + 1e-9)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--list-jobs", type=int, default=30, help="jobs per job-list fault")
    args = parser.parse_args()

    async def everything() -> tuple[Figures, list[ListFigures], CapFigures]:
        return (await run(args.jobs, concurrency=args.concurrency, seed=args.seed),
                await run_list_failing(args.list_jobs, seed=args.seed), await run_caps(seed=args.seed))

    logging.basicConfig(level=logging.ERROR)  # refused calls are the point here, not news
    figures, lists, caps = anyio.run(everything)
    ok = figures.ok and caps.ok and all(f.ok for f in lists)
    print(json.dumps({"soak": {**asdict(figures), "ok": figures.ok},
                      "job_list_failing": [{**asdict(f), "ok": f.ok} for f in lists],
                      "caps": {**asdict(caps), "ok": caps.ok}, "ok": ok}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
