"""Sequences: several shots, each a task of its own, joined into one video; and joins of finished tasks (stitch).

A sequence row keeps what was asked (`spec`) and, for each shot, its takes: the task ids made for it, the
last being the current one (`redo_shot` adds a take). Its phase moves only by compare-and-set through
`SequenceBook.move`, along `ALLOWED`; a task id is written into a take before that task is created, so
after a crash a shot is either followed (its task exists) or made then (it does not): never twice.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any

from .ledger import Ledger


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
    SeqPhase.RUNNING: frozenset({SeqPhase.JOINING, SeqPhase.FAILED, SeqPhase.CANCELED, SeqPhase.RUNNING}),
    SeqPhase.JOINING: frozenset({SeqPhase.SUCCEEDED, SeqPhase.FAILED, SeqPhase.CANCELED}),
    SeqPhase.SUCCEEDED: frozenset({SeqPhase.RUNNING, SeqPhase.JOINING}),  # a shot redone, or joined again
    SeqPhase.FAILED: frozenset({SeqPhase.RUNNING}),  # a failed shot redone
    SeqPhase.CANCELED: frozenset(),
}

_JSON = ("spec", "takes", "output", "error")


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
        takes = self.takes[shot]
        return takes[-1] if takes else None


_COLUMNS = [f.name for f in fields(SequenceRecord)]


class SequenceBook:
    """The sequences table, in the ledger's file; its only writer."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger  # whose schema has the sequences table

    def insert(self, record: SequenceRecord) -> None:
        self.ledger.transaction(self.inserting(record))

    @staticmethod
    def inserting(record: SequenceRecord) -> Callable[[sqlite3.Connection], bool]:
        """The insert as a step of a larger transaction (a sequence is recorded with its reservations)."""
        values = [_encode(c, getattr(record, c)) for c in _COLUMNS]

        def work(db: sqlite3.Connection) -> bool:
            db.execute(f"INSERT INTO sequences ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})",
                       values)
            return True

        return work

    def get(self, sequence_id: str) -> SequenceRecord | None:
        rows = self.ledger.read(f"SELECT {', '.join(_COLUMNS)} FROM sequences WHERE sequence_id = ?", (sequence_id,))
        return _decode(rows[0]) if rows else None

    def newest(self, owner: str, limit: int, status: str | None = None) -> tuple[list[SequenceRecord], int]:
        """A caller's newest sequences and stitches (status as the task views say it: running covers joining)."""
        phases = {"running": ("running", "joining"), None: None}.get(status, (status,))
        where, params = "owner = ?", [owner]
        if phases:
            where += f" AND phase IN ({', '.join('?' for _ in phases)})"
            params += list(phases)
        total = self.ledger.read(f"SELECT COUNT(*) FROM sequences WHERE {where}", params)[0][0]
        rows = self.ledger.read(f"SELECT {', '.join(_COLUMNS)} FROM sequences WHERE {where} "
                                "ORDER BY created_at DESC LIMIT ?", [*params, limit])
        return [_decode(r) for r in rows], total

    def unfinished(self) -> list[SequenceRecord]:
        rows = self.ledger.read(f"SELECT {', '.join(_COLUMNS)} FROM sequences WHERE phase IN ('running', 'joining')")
        return [_decode(r) for r in rows]

    def move(self, record: SequenceRecord, to: SeqPhase, **values: Any) -> SequenceRecord | None:
        """Move from the phase `record` was read in, only if nothing wrote the row since (its version); returns the
        row as written, or None when it changed meanwhile or the move is not allowed."""
        work = self.moving(record, to, **values)
        if work is None or not self.ledger.transaction(work):
            return None
        return self.get(record.sequence_id)

    @staticmethod
    def moving(record: SequenceRecord, to: SeqPhase, **values: Any) -> Callable[[sqlite3.Connection], bool] | None:
        """The guarded move as a step of a larger transaction (a redo is recorded with its reservation); None when
        the state machine does not have it."""
        if to not in ALLOWED[SeqPhase(record.phase)]:
            return None
        values = {**values, "phase": to.value, "updated_at": time.time(), "version": record.version + 1}
        if to.terminal:
            values.setdefault("finished_at", time.time())
        sets = ", ".join(f"{k} = ?" for k in values)
        params = [*(_encode(k, v) for k, v in values.items()), record.sequence_id, record.version]

        def work(db: sqlite3.Connection) -> bool:
            return db.execute(f"UPDATE sequences SET {sets} WHERE sequence_id = ? AND version = ?", params).rowcount > 0

        return work


def _encode(column: str, value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if column in _JSON and value is not None else value


def _decode(row: tuple[Any, ...]) -> SequenceRecord:
    values = dict(zip(_COLUMNS, row))
    for c in _JSON:
        if values[c] is not None:
            values[c] = json.loads(values[c])
    return SequenceRecord(**values)
