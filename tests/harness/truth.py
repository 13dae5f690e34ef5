"""What both harnesses share: a workspace, a tagged DashScope emulator, and the ledger held against the host's record."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import media
from emulators.dashscope import DashScopeEmulator


def workspace(folder: Path | None, prefix: str) -> tuple[dict[str, Path], Path]:
    """Folders for the ledger, the videos, the references and the host's results; and one reference image."""
    folder = folder or Path(tempfile.mkdtemp(prefix=prefix))
    dirs = {name: folder / name for name in ("data", "out", "refs", "results")}
    for p in dirs.values():
        p.mkdir(parents=True, exist_ok=True)
    return dirs, media.image(dirs["refs"] / "ref.png", 320, 240)


def host(key: str, dirs: dict[str, Path], pending: float, running: float) -> DashScopeEmulator:
    """A DashScope emulator whose every result carries its job id, so a wrong video can be told."""
    emulator = DashScopeEmulator(key, media.Results(dirs["results"]))
    emulator.tag_results = True
    emulator.timing.pending, emulator.timing.running = pending, running
    return emulator


@dataclass
class Truth:
    tasks: int = 0
    host_jobs: int = 0
    paid_not_delivered: int = 0  # made (and paid) at the host, and no task delivered its video
    created_twice: int = 0
    wrong_jobs_adopted: int = 0
    wrong_videos: int = 0
    not_terminal: int = 0
    integrity_check: str = ""
    outcomes: dict[str, int] = field(default_factory=dict)


def compare(ledger: Path, emulator: DashScopeEmulator, prompts: set[str]) -> Truth:
    """The ledger against the host's own record of what was made, for the jobs of these prompts."""
    with sqlite3.connect(ledger) as db:
        db.row_factory = sqlite3.Row
        rows = [dict(r) for r in db.execute("SELECT * FROM tasks")]
        truth = Truth(tasks=len(rows), integrity_check=db.execute("PRAGMA integrity_check").fetchone()[0])
    by_job = {r["provider_task_id"]: r for r in rows if r["provider_task_id"]}
    ours = [t for t in emulator.tasks.values() if t.body["input"]["prompt"] in prompts]
    truth.host_jobs = len(ours)
    truth.created_twice = sum(n - 1 for n in Counter(t.body["input"]["prompt"] for t in ours).values() if n > 1)
    truth.paid_not_delivered = sum(1 for job in ours if (by_job.get(job.task_id) or {}).get("status") != "succeeded")
    for row in rows:
        key = row["status"] if row["status"] != "failed" else f"failed:{json.loads(row['error'])['code']}"
        truth.outcomes[key] = truth.outcomes.get(key, 0) + 1
        if row["status"] not in ("succeeded", "failed", "canceled"):
            truth.not_terminal += 1
        job = emulator.tasks.get(row["provider_task_id"] or "")
        if job is not None and job.body["input"]["prompt"] != json.loads(row["request"])["prompt"]:
            truth.wrong_jobs_adopted += 1
        if row["status"] == "succeeded" and media.comment(Path(row["local_path"])) != row["provider_task_id"]:
            truth.wrong_videos += 1
    return truth


def sequences(ledger: Path) -> tuple[int, int, int, dict[str, int]]:
    """(sequences, those whose shots all succeeded without a joined video of exactly their frames, unfinished, and
    how they ended)."""
    with sqlite3.connect(ledger) as db:
        rows = db.execute("SELECT phase, takes, local_path FROM sequences").fetchall()
        ended = Counter(p for (p,) in db.execute("SELECT phase FROM sequences"))
        status = dict(db.execute("SELECT task_id, status FROM tasks").fetchall())
        paths = dict(db.execute("SELECT task_id, local_path FROM tasks").fetchall())
    unjoined = unfinished = 0
    for phase, takes, local_path in rows:
        shots = json.loads(takes)
        current = [t[-1] for t in shots if t]
        if phase in ("running", "joining"):
            unfinished += 1
        if len(current) == len(shots) and all(status.get(t) == "succeeded" for t in current):
            frames = sum(media.decode(Path(paths[t]))["frames"] for t in current)
            if phase != "succeeded" or not local_path or media.decode(Path(local_path))["frames"] != frames:
                unjoined += 1
    return len(rows), unjoined, unfinished, dict(ended)
