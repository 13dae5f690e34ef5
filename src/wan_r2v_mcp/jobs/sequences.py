"""Sequences: several shots, each a task of its own, joined into one video; and joins of finished tasks (stitch).

A sequence row keeps what was asked (`spec`) and, for each shot, its takes: the task ids made for it, the
last being the current one (`redo_shot` adds a take). Its phase moves only by compare-and-set through
`SequenceBook.move`, along `ALLOWED`; a task id is written into a take before that task is created, so
after a crash a shot is either followed (its task exists) or made then (it does not): never twice.
"""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Any

from ..errors import InputError, NotFoundError
from ..schema import I2V_MODEL_ID, MODEL_ID
from ..store import SequenceRecord, Store
from ..store.records import SEQUENCE_LIVE, SequenceMove

GROUP_PREFIX = "tk_"  # a group of takes (jobs.takes), kept in the sequence book beside sequences and stitches


def is_sequence_id(task_id: str) -> bool:
    """Whether the id is a row of the sequence book: a sequence or stitch (seq_...), or a group of takes (tk_...)."""
    return task_id.startswith(("seq_", GROUP_PREFIX))


# A shot carried on by clip continues the last seconds of the shot before (wan2.7-i2v's first_clip, 2-10 s): the
# shortest clip the model takes, since its seconds are billed again inside the shot's duration.
CARRIED_CLIP_SECONDS = 2


def carried(spec: dict[str, Any]) -> str | None:
    """How the sequence carries one shot into the next: "frame" (it opens on the last frame before), "clip" (it
    continues the last seconds before), or None (hard cuts). Sequences recorded before clips held a bool."""
    value = spec.get("continuity")
    return "frame" if value is True else value if value in ("frame", "clip") else None


def made_by(spec: dict[str, Any], index: int) -> str:
    """Which way a shot is made, in words for the task view."""
    way = carried(spec) if index else None
    if way == "clip":
        return (f"{I2V_MODEL_ID}, continuing shot {index}'s last {CARRIED_CLIP_SECONDS} s (billed inside its "
                f"{spec['shots'][index]['duration'] + CARRIED_CLIP_SECONDS} s; characters carried by the clip)")
    if way == "frame":
        return f"{MODEL_ID}, opening on shot {index}'s last frame"
    return MODEL_ID


class SeqPhase(str, Enum):
    RUNNING = "running"  # shots are being made
    JOINING = "joining"  # every shot is done: the join is being written
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a shot failed (redo_shot takes it up again) or the join did
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in (SeqPhase.SUCCEEDED, SeqPhase.FAILED, SeqPhase.CANCELED)

    @property
    def status(self) -> str:
        return "running" if self in (SeqPhase.RUNNING, SeqPhase.JOINING) else self.value


ALLOWED: dict[SeqPhase, frozenset[SeqPhase]] = {
    # A group of takes ends without a join, and a pick moves it from succeeded to succeeded.
    SeqPhase.RUNNING: frozenset({SeqPhase.JOINING, SeqPhase.FAILED, SeqPhase.CANCELED, SeqPhase.RUNNING,
                                 SeqPhase.SUCCEEDED}),
    SeqPhase.JOINING: frozenset({SeqPhase.SUCCEEDED, SeqPhase.FAILED, SeqPhase.CANCELED}),
    SeqPhase.SUCCEEDED: frozenset({SeqPhase.RUNNING, SeqPhase.JOINING, SeqPhase.SUCCEEDED}),  # redone, joined again
    SeqPhase.FAILED: frozenset({SeqPhase.RUNNING}),  # a failed shot redone
    SeqPhase.CANCELED: frozenset(),
}


class SequenceBook:
    """The sequences' rows in the store, moved only along `ALLOWED`; their only writer."""

    def __init__(self, store: Store):
        self.store = store

    def insert(self, record: SequenceRecord) -> None:
        self.store.insert_sequence(record)

    def get(self, sequence_id: str) -> SequenceRecord | None:
        return self.store.get_sequence(sequence_id)

    def newest(self, owner: str, limit: int, status: str | None = None) -> tuple[list[SequenceRecord], int]:
        """A caller's newest sequences and stitches (status as the task views say it: running covers joining)."""
        phases = {"running": SEQUENCE_LIVE, None: None}.get(status, (status,))
        return self.store.newest_sequences(owner, limit, phases)

    def unclaimed(self) -> list[str]:
        """Unfinished sequences no live claim covers: what the worker takes up."""
        return self.store.unclaimed_sequences()

    def move(self, record: SequenceRecord, to: SeqPhase, **values: Any) -> SequenceRecord | None:
        """Move from the phase `record` was read in, only if nothing wrote the row since (its version); returns the
        row as written, or None when it changed meanwhile or the move is not allowed."""
        move = self.moving(record, to, **values)
        if move is None or not self.store.move_sequence(move):
            return None
        return self.get(record.sequence_id)

    @staticmethod
    def moving(record: SequenceRecord, to: SeqPhase, **values: Any) -> SequenceMove | None:
        """The guarded move, to be applied alone or as a step of an admission (a redo is recorded with its
        reservation); None when the state machine does not have it."""
        if to not in ALLOWED[SeqPhase(record.phase)]:
            return None
        now = time.time()
        values = {**values, "phase": to.value, "updated_at": now, "version": record.version + 1}
        if to.terminal:
            values.setdefault("finished_at", now)
        return SequenceMove(record.sequence_id, record.version, values)

    def finished_video(self, task_id: str, owner: str) -> tuple[Path, dict[str, Any], str, str]:
        """The saved video of a finished task or sequence of `owner`, with its measured facts, its prompt and the
        provider(s) that made it."""
        unknown = NotFoundError(f"no task \"{task_id}\"", fix="use a task_id that a generate tool or generate_sequence "
                                "returned; list_tasks shows recent ones")
        if is_sequence_id(task_id):
            seq = self.get(task_id)
            if seq is None or seq.owner != owner:
                raise unknown
            status, path, output, prompt = SeqPhase(seq.phase).status, seq.local_path, seq.output, \
                f"sequence {task_id}"
            provider = seq.provider
        else:
            task = self.store.get(task_id)
            if task is None or task.owner != owner:
                raise unknown
            status, path, output, prompt = task.status, task.local_path, task.output, task.request.get("prompt", "")
            provider = task.provider
        if status != "succeeded":
            raise InputError(f"{task_id} has not finished ({status})", limit="only succeeded tasks can be joined",
                             fix="wait for it with get_task, or leave it out")
        if not path or not Path(path).is_file():
            raise InputError(f"{task_id}'s video is no longer on disk ({path})", fix="leave it out, or make it again")
        return Path(path), output or {}, prompt, provider
