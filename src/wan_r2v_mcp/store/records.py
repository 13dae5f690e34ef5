"""The rows the store keeps, as plain values: what every store (SQLite, in memory, PostgreSQL) reads and writes.

Times are Unix epoch seconds (a float, which every database holds as a double); the dict and list fields are JSON
values (TEXT in SQLite, which PostgreSQL holds as text or jsonb).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

TASK_DONE = ("succeeded", "failed", "canceled")  # a task in one of these phases is never written again
SEQUENCE_LIVE = ("running", "joining")  # a sequence in one of these phases has a driver
DEFAULT_MODEL = "wan2.7-r2v"  # what a task made before models were recorded was made with


@dataclass
class TaskRecord:
    task_id: str
    created_at: float
    updated_at: float
    finished_at: float | None
    provider: str
    provider_task_id: str | None
    status: str
    stage: str
    progress: float | None
    request: dict[str, Any]
    refs: list[dict[str, Any]]
    payload: dict[str, Any] | None
    fingerprint: str | None
    video_url: str | None
    video_url_expires_at: float | None
    local_path: str | None
    poster_path: str | None
    sidecar_path: str | None
    cost_estimate: float | None
    billable_seconds: float | None
    error: dict[str, Any] | None
    owner: str
    phase: str
    submitted_at: float | None
    candidates: list[str] | None
    key_from: str | None  # "caller": the caller's own host key, held in memory only; else the operator's
    creates: int  # create requests sent: a second only after the host's list proved the first made nothing
    output: dict[str, Any] | None  # the saved video as measured: width, height, seconds (and how it differs)
    sequence_id: str | None = None  # the sequence this task is a take of a shot of
    model: str = DEFAULT_MODEL  # the models/ spec the task was made with


TASK_COLUMNS = tuple(f.name for f in fields(TaskRecord))
TASK_JSON = ("request", "refs", "payload", "error", "candidates", "output")


@dataclass
class SequenceRecord:
    sequence_id: str
    owner: str
    kind: str  # sequence | stitch
    created_at: float
    updated_at: float
    finished_at: float | None
    phase: str
    stage: str
    provider: str
    spec: dict[str, Any]
    takes: list[list[str]]
    cost_estimate: float | None
    billable_seconds: float | None
    local_path: str | None
    poster_path: str | None
    sidecar_path: str | None
    output: dict[str, Any] | None
    error: dict[str, Any] | None
    version: int

    def current(self, shot: int) -> str | None:
        """The take the shot uses: the one picked (pick_take), else its newest."""
        takes = self.takes[shot]
        picked = (self.spec.get("picks") or {}).get(str(shot))
        if picked in takes:
            return picked
        return takes[-1] if takes else None


SEQUENCE_COLUMNS = tuple(f.name for f in fields(SequenceRecord))
SEQUENCE_JSON = ("spec", "takes", "output", "error")


@dataclass(frozen=True)
class SequenceMove:
    """A compare-and-set of a sequence row: write `values` only if the row is still at `version`."""

    sequence_id: str
    version: int
    values: dict[str, Any]


@dataclass
class Character:
    owner: str
    key: str
    name: str
    description: str
    kind: str  # image | video
    format: str
    media: str  # file name in the cast folder
    size_bytes: int
    width: int | None
    height: int | None
    seconds: float | None
    voice: str | None
    voice_format: str | None
    voice_seconds: float | None
    thumbnail: str | None
    created_at: float
    last_used_at: float | None
    uses: int


CHARACTER_COLUMNS = tuple(f.name for f in fields(Character))


@dataclass(frozen=True)
class CastRoom:
    """What a caller's cast holds, for deciding whether one more character fits."""

    count: int  # the caller's characters
    mine: int  # bytes of the caller's characters, leaving out the one of the name being saved
    everyone: int  # bytes of every caller's characters


@dataclass(frozen=True)
class Spend:
    """USD counted against the caps: `day`, the caller's last 24 hours (tasks that may have reached a host, and the
    planned shots of running sequences); `sequence`, one sequence's whole (every take and the shots still planned)."""

    day: float
    sequence: float | None = None


class Conflict(Exception):
    """A row changed between reading it and deciding on it: read it again."""


def counts_against_caps(task: TaskRecord) -> bool:
    """A task counts once it may have reached a host (a failure before any job was made costs nothing)."""
    return task.status in ("queued", "running", "succeeded") or (
        task.phase == "canceled" and task.provider_task_id is not None)
