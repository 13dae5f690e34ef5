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
whose joined video is not the sum of their shots, and tool calls that ran past the wait cap. A short
version runs in the default suite (tests/test_harness.py).
"""

from __future__ import annotations

import argparse
import json
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
    faults_injected: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.paid_jobs_lost or self.created_twice or self.wrong_jobs_adopted or self.wrong_videos
                    or self.not_terminal or self.calls_past_cap or self.sequences_not_joined)


async def run(jobs: int = 500, *, concurrency: int = 20, seed: int = 7, folder: Path | None = None) -> Figures:
    rng = random.Random(seed)
    dirs, image = truth.workspace(folder, "r2v-soak-")
    figures = Figures(jobs=jobs)
    started = time.monotonic()
    with truth.host(KEY, dirs, pending=0.2, running=0.3) as host:
        settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"], allowed_dirs=str(dirs["refs"]),
                            dashscope_api_key=KEY, dashscope_base_url=host.base_url, wait_cap_seconds=CAP,
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
            seen = truth.compare(settings.ledger_path, host, set(prompts))
            figures.host_jobs, figures.paid_jobs_lost, figures.created_twice = (seen.host_jobs,
                                                                                seen.paid_not_delivered,
                                                                                seen.created_twice)
            figures.wrong_jobs_adopted, figures.wrong_videos, figures.not_terminal = (seen.wrong_jobs_adopted,
                                                                                      seen.wrong_videos,
                                                                                      seen.not_terminal)
            figures.outcomes = seen.outcomes
            figures.sequences, figures.sequences_not_joined, unfinished, figures.sequence_outcomes = truth.sequences(
                settings.ledger_path)
            figures.not_terminal += unfinished
    figures.calls_past_cap = sum(d > CAP + SLACK for d in durations)
    figures.longest_call_seconds = round(max(durations, default=0.0), 2)
    figures.seconds = round(time.monotonic() - started, 1)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    figures = anyio.run(lambda: run(args.jobs, concurrency=args.concurrency, seed=args.seed))
    print(json.dumps({**asdict(figures), "ok": figures.ok}, indent=2))
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
