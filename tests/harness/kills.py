"""kill -9 loop: the real server killed at random points across upload, create, poll and download, then restarted.

Run it (about two minutes for 50 kills):

    .venv/bin/python tests/harness/kills.py --kills 50

Each round starts the command line (`wan-r2v-mcp generate ... --wait 60`) as its own process (forked from one that
imported the package, tests/cli_runner.py, so it reaches the host in a tenth of a second) against the
DashScope emulator, with a unique prompt, a local reference (so an upload happens) or a URL, and faults
that hold the host's answers open so a kill can land between a create and the storing of its id, or in the
middle of a download; then kills it with SIGKILL at a random moment. A quarter of the rounds make a
3-shot sequence with continuity instead (`wan-r2v-mcp sequence ...`, a saved character), so kills land
between shots, while a shot's frame is carried over and while shots are joined. Every new process takes up
what the killed ones left. At the end a server is started once more and every task and sequence is
followed to its end. Then it counts what must be zero: paid jobs orphaned at the host, jobs created twice,
wrong videos, tasks or sequences not terminal, sequences whose joined video is not the sum of its shots,
half-written files; and runs `PRAGMA integrity_check`. A short version runs in the default suite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import anyio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import cli_runner  # noqa: E402
from harness import truth  # noqa: E402
from mcp import Client  # noqa: E402

from wan_r2v_mcp.config import Settings  # noqa: E402
from wan_r2v_mcp.server import build_server  # noqa: E402

KEY = "sk-kill0123456789abcdef"


@dataclass
class Figures:
    kills: int = 0
    ended_before_the_kill: int = 0  # rounds whose process had finished before its kill came
    tasks: int = 0
    host_jobs: int = 0
    orphaned_paid_jobs: int = 0
    duplicate_creates: int = 0
    wrong_videos: int = 0
    not_terminal: int = 0
    sequences: int = 0
    sequence_outcomes: dict[str, int] = field(default_factory=dict)
    sequences_not_joined: int = 0  # every shot done, and no joined video that is the sum of them
    half_written_files: int = 0
    integrity_check: str = ""
    outcomes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.orphaned_paid_jobs or self.duplicate_creates or self.wrong_videos or self.not_terminal
                    or self.half_written_files or self.sequences_not_joined) and self.integrity_check == "ok"


def run(kills: int = 50, *, seed: int = 11, folder: Path | None = None) -> Figures:
    rng = random.Random(seed)
    dirs, image = truth.workspace(folder, "r2v-kills-")
    figures = Figures(kills=kills)
    started = time.monotonic()
    prompts: set[str] = set()
    with truth.host(KEY, dirs, pending=0.3, running=0.5) as host:
        env = {**os.environ, "WAN_R2V_DATA_DIR": str(dirs["data"]), "WAN_R2V_OUTPUT_DIR": str(dirs["out"]),
               "WAN_R2V_ALLOWED_DIRS": str(dirs["refs"]), "DASHSCOPE_API_KEY": KEY,
               "DASHSCOPE_BASE_URL": host.base_url, "WAN_R2V_TIME_SCALE": "0.05",
               "WAN_R2V_REQUEST_DEADLINE": "3"}
        saved = cli_runner.run(["character", "save", "hero", str(image)], cwd=dirs["refs"], env=env, timeout=120)
        assert saved.returncode == 0, saved.stderr
        for i in range(kills):
            if rng.random() < 0.25:  # a sequence round: kills land between shots, in carrying a frame, in the join
                shots = [f"walks, sequence round {i} of run {seed}, shot {k}" for k in (1, 2, 3)]
                prompts.update(f"Image 1 {shot}" for shot in shots)
                command = ["sequence", *[a for shot in shots for a in ("-s", f"@hero {shot}")], "-c", "hero",
                           "--duration", "2"]
                proc = cli_runner.start([*command, "--provider", "dashscope", "--resolution", "720p", "--wait", "60"],
                                        env=env)
                time.sleep(rng.uniform(0.2, 3.4))
                figures.ended_before_the_kill += not proc.kill()
                proc.communicate()
                continue
            where = rng.choice(["create", "create", "result", "poll", "upload", "anywhere"])
            if where == "create":
                host.fault("create", hold=2.0)  # the job is made; its answer is held while the kill lands
            elif where == "result":
                host.fault("result", partial=1500, hold=2.0)
            elif where == "poll":
                host.fault("poll", hold=1.0)
            elif where == "upload":
                host.fault("upload", delay=1.5)
            prompt = f"Image 1 waves, kill round {i} of run {seed}"
            prompts.add(prompt)
            ref = str(image) if where == "upload" or rng.random() < 0.3 else "https://cdn.example.com/ref.png"
            proc = cli_runner.start(["generate", prompt, "-i", ref, "--provider", "dashscope", "--resolution", "720p",
                                     "--duration", "2", "--wait", "60", "--allow-duplicate"], env=env)
            time.sleep(rng.uniform(0.1, 2.4))
            figures.ended_before_the_kill += not proc.kill()
            proc.communicate()
            host.clear_faults()  # what the killed process did not meet is not for the next one
        anyio.run(_finish_everything, Settings(
            data_dir=dirs["data"], output_dir=dirs["out"], allowed_dirs=str(dirs["refs"]),
            hosts={"dashscope": {"api_key": KEY, "base_url": host.base_url}},
            time_scale=0.05, request_deadline_seconds=3.0))
        seen = truth.compare(dirs["data"] / "tasks.sqlite3", host, prompts)
        figures.tasks, figures.host_jobs, figures.orphaned_paid_jobs = seen.tasks, seen.host_jobs, seen.paid_not_delivered
        figures.duplicate_creates, figures.wrong_videos, figures.not_terminal = (seen.created_twice, seen.wrong_videos,
                                                                                 seen.not_terminal)
        figures.integrity_check, figures.outcomes = seen.integrity_check, seen.outcomes
        figures.sequences, unjoined, unfinished, figures.sequence_outcomes = truth.sequences(
            dirs["data"] / "tasks.sqlite3")
        figures.sequences_not_joined, figures.not_terminal = unjoined, figures.not_terminal + unfinished
        figures.half_written_files = sum(1 for p in dirs["out"].iterdir() if p.name.endswith(".part"))
    figures.seconds = round(time.monotonic() - started, 1)
    return figures


async def _finish_everything(settings: Settings) -> None:
    """Start a server once more (it takes up every unfinished task) and follow each task to its end."""
    async with Client(build_server(settings)) as client:
        with anyio.fail_after(300):
            while True:
                unfinished = []
                for status in ("queued", "running"):
                    listed = (await client.call_tool("list_tasks", {"limit": 100, "status": status})).structured_content
                    unfinished += [t["task_id"] for t in listed["tasks"]]
                if not unfinished:
                    return
                await client.call_tool("get_task", {"task_id": unfinished[0], "wait_seconds": 10})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    figures = run(args.kills, seed=args.seed)
    print(json.dumps({**asdict(figures), "ok": figures.ok}, indent=2))
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
