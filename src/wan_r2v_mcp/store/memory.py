"""The in-memory twin of the SQLite store: the same contract, held in dicts behind one lock. The contract suite
runs against both, so it is the reference a new store is read against. Rows are copied in and out, so a caller
never holds a row the store is also holding."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from .base import Store
from .records import (
    SEQUENCE_LIVE,
    TASK_COLUMNS,
    TASK_DONE,
    CastRoom,
    Character,
    Conflict,
    SequenceMove,
    SequenceRecord,
    Spend,
    TaskRecord,
    counts_against_caps,
)

_TASK_DEFAULTS: dict[str, Any] = {
    "finished_at": None, "provider_task_id": None, "progress": None, "payload": None, "fingerprint": None,
    "video_url": None, "video_url_expires_at": None, "local_path": None, "poster_path": None, "sidecar_path": None,
    "cost_estimate": None, "billable_seconds": None, "error": None, "owner": "", "phase": "pending",
    "submitted_at": None, "candidates": None, "key_from": None, "creates": 0, "output": None,
}


class MemoryStore(Store):
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._tasks: dict[str, TaskRecord] = {}  # in insertion order, which breaks ties of created_at
        self._leases: dict[str, tuple[str, float]] = {}
        self._sequences: dict[str, SequenceRecord] = {}
        self._reservations: dict[tuple[str, int], tuple[str, float]] = {}  # (sequence, shot) -> (owner, usd)
        self._characters: dict[tuple[str, str], Character] = {}

    # -- task rows

    def insert(self, **values: Any) -> None:
        with self._lock:
            self._insert_task(values, time.time())

    def _insert_task(self, values: dict[str, Any], now: float) -> None:
        row = {**_TASK_DEFAULTS, "created_at": now, "updated_at": now,
               **{k: copy.deepcopy(v) for k, v in values.items() if k in TASK_COLUMNS}}
        record = TaskRecord(**row)
        if record.task_id in self._tasks:
            raise ValueError(f"task {record.task_id} is already recorded")
        if record.provider_task_id is not None and self._following(record.provider, record.provider_task_id):
            raise ValueError(f"{record.provider} job {record.provider_task_id} is already followed")
        self._tasks[record.task_id] = record

    def _following(self, provider: str, provider_task_id: str) -> TaskRecord | None:
        return next((t for t in self._tasks.values()
                     if t.provider == provider and t.provider_task_id == provider_task_id), None)

    def transition(self, task_id: str, from_phases: Sequence[str], phase: str, status: str,
                   values: dict[str, Any], *, durable: bool = True) -> bool:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or task.phase not in from_phases:
                return False
            self._tasks[task_id] = self._set(task, phase, status, values)
            return True

    def adopt(self, task_id: str, provider: str, provider_task_id: str, from_phases: Sequence[str], phase: str,
              status: str, values: dict[str, Any]) -> bool:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or task.phase not in from_phases:
                return False
            taken = self._following(provider, provider_task_id)
            if taken is not None and taken.task_id != task_id:
                return False
            if taken is None and task.provider_task_id is not None:
                return False
            self._tasks[task_id] = self._set(task, phase, status, {**values, "provider_task_id": provider_task_id})
            return True

    @staticmethod
    def _set(task: TaskRecord, phase: str, status: str, values: dict[str, Any]) -> TaskRecord:
        return replace(task, **copy.deepcopy(values), phase=phase, status=status, updated_at=time.time())

    def get(self, task_id: str) -> TaskRecord | None:
        with self._lock:
            return copy.deepcopy(self._tasks.get(task_id))

    def list(self, *, limit: int = 20, status: str | None = None, owner: str = "") -> tuple[list[TaskRecord], int]:
        with self._lock:
            rows = [t for t in self._tasks.values() if t.owner == owner and (not status or t.status == status)]
            newest = [t for _, t in sorted(enumerate(rows), key=lambda p: (p[1].created_at, p[0]), reverse=True)]
            return copy.deepcopy(newest[:limit]), len(rows)

    def followed(self, provider: str, provider_task_ids: Sequence[str]) -> set[str]:
        wanted = set(provider_task_ids)
        with self._lock:
            return {t.provider_task_id for t in self._tasks.values()
                    if t.provider == provider and t.provider_task_id in wanted}  # type: ignore[misc]

    def unfinished(self) -> list[TaskRecord]:
        with self._lock:
            rows = [t for t in self._tasks.values() if t.phase not in TASK_DONE]
            return copy.deepcopy(sorted(rows, key=lambda t: t.created_at))

    # -- money

    def admit(self, *, owner: str, check: Callable[[Spend], None], task: dict[str, Any] | None = None,
              duplicate_of: tuple[str, float] | None = None, sequence_id: str | None = None,
              shot: int | None = None, reserve: dict[int, float] | None = None,
              new_sequence: SequenceRecord | None = None, move: SequenceMove | None = None) -> TaskRecord | None:
        now = time.time()
        with self._lock:
            if duplicate_of is not None:
                fingerprint, since = duplicate_of
                same = [t for t in self._tasks.values() if t.fingerprint == fingerprint and t.owner == owner and (
                    t.status in ("queued", "running") or (t.status == "succeeded" and (t.finished_at or 0) >= since))]
                if same:
                    return copy.deepcopy(max(same, key=lambda t: t.created_at))
            released = 0.0
            if sequence_id is not None and shot is not None and task is not None:
                released = self._reservations.get((sequence_id, shot), ("", 0.0))[1]
            replaced = sum(self._reservations.get((sequence_id, i), ("", 0.0))[1]
                           for i in (reserve or {})) if sequence_id is not None else 0.0
            spend = self._spend(owner, now - 86400, sequence_id)
            freed = released + replaced
            check(Spend(day=spend.day - freed, sequence=None if spend.sequence is None else spend.sequence - freed))
            if move is not None:
                current = self._sequences.get(move.sequence_id)
                if current is None or current.version != move.version:
                    raise Conflict("the sequence changed while this was being decided")
            if task is not None:
                self._insert_task(task, now)
                if released:
                    del self._reservations[(sequence_id, shot)]  # type: ignore[arg-type]
            for index, usd in (reserve or {}).items():
                self._reservations[(sequence_id, index)] = (owner, usd)  # type: ignore[index]
            if new_sequence is not None:
                self._insert_sequence(new_sequence)
            if move is not None:
                self._apply(move)
            return None

    def _spend(self, owner: str, since: float, sequence_id: str | None) -> Spend:
        tasks = sum(t.cost_estimate or 0.0 for t in self._tasks.values()
                    if t.owner == owner and t.created_at >= since and counts_against_caps(t))
        planned = sum(usd for (seq, _), (who, usd) in self._reservations.items() if who == owner and (
            seq == sequence_id or (seq in self._sequences and self._sequences[seq].phase in SEQUENCE_LIVE)))
        if sequence_id is None:
            return Spend(day=tasks + planned)
        made, plan = self._sequence_cost(sequence_id)
        return Spend(day=tasks + planned, sequence=made + plan)

    def spent(self, owner: str = "", sequence_id: str | None = None) -> Spend:
        with self._lock:
            return self._spend(owner, time.time() - 86400, sequence_id)

    def free_work_since(self, owner: str, since: float, providers: Sequence[str]) -> int:
        with self._lock:
            tasks = sum(1 for t in self._tasks.values() if t.owner == owner and t.created_at >= since
                        and t.provider in providers and t.sequence_id is None)
            stitches = sum(1 for s in self._sequences.values()
                           if s.owner == owner and s.created_at >= since and s.kind == "stitch")
            return tasks + stitches

    def sequence_cost(self, sequence_id: str) -> tuple[float, float]:
        with self._lock:
            return self._sequence_cost(sequence_id)

    def _sequence_cost(self, sequence_id: str) -> tuple[float, float]:
        made = sum(t.cost_estimate or 0.0 for t in self._tasks.values()
                   if t.sequence_id == sequence_id and counts_against_caps(t))
        planned = sum(usd for (seq, _), (_, usd) in self._reservations.items() if seq == sequence_id)
        return round(made, 4), round(planned, 4)

    # -- leases

    def take_lease(self, task_id: str, holder: str, seconds: float, is_stale: Callable[[str], bool]) -> float:
        now = time.time()
        with self._lock:
            held = self._leases.get(task_id)
            if held and held[0] != holder and held[1] > now and not is_stale(held[0]):
                return held[1] - now
            self._leases[task_id] = (holder, now + seconds)
            return 0.0

    def renew_leases(self, holder: str, seconds: float) -> set[str]:
        until = time.time() + seconds
        with self._lock:
            mine = [k for k, (who, _) in self._leases.items() if who == holder]
            for key in mine:
                self._leases[key] = (holder, until)
            return set(mine)

    def holds_lease(self, task_id: str, holder: str) -> bool:
        with self._lock:
            held = self._leases.get(task_id)
        return held is not None and held[0] == holder and held[1] > time.time()

    def release_lease(self, task_id: str, holder: str) -> None:
        with self._lock:
            if self._leases.get(task_id, ("",))[0] == holder:
                del self._leases[task_id]

    # -- sequences

    def insert_sequence(self, record: SequenceRecord) -> None:
        with self._lock:
            self._insert_sequence(record)

    def _insert_sequence(self, record: SequenceRecord) -> None:
        if record.sequence_id in self._sequences:
            raise ValueError(f"sequence {record.sequence_id} is already recorded")
        self._sequences[record.sequence_id] = copy.deepcopy(record)

    def get_sequence(self, sequence_id: str) -> SequenceRecord | None:
        with self._lock:
            return copy.deepcopy(self._sequences.get(sequence_id))

    def newest_sequences(self, owner: str, limit: int, phases: Sequence[str] | None = None,
                         ) -> tuple[list[SequenceRecord], int]:
        with self._lock:
            rows = [s for s in self._sequences.values() if s.owner == owner and (not phases or s.phase in phases)]
            newest = [s for _, s in sorted(enumerate(rows), key=lambda p: (p[1].created_at, p[0]), reverse=True)]
            return copy.deepcopy(newest[:limit]), len(rows)

    def unfinished_sequences(self) -> list[SequenceRecord]:
        with self._lock:
            return copy.deepcopy(sorted((s for s in self._sequences.values() if s.phase in SEQUENCE_LIVE),
                                        key=lambda s: s.created_at))

    def move_sequence(self, move: SequenceMove) -> bool:
        with self._lock:
            current = self._sequences.get(move.sequence_id)
            if current is None or current.version != move.version:
                return False
            self._apply(move)
            return True

    def _apply(self, move: SequenceMove) -> None:
        self._sequences[move.sequence_id] = replace(self._sequences[move.sequence_id], **copy.deepcopy(move.values))

    # -- characters

    def get_character(self, owner: str, key: str) -> Character | None:
        with self._lock:
            return copy.deepcopy(self._characters.get((owner, key)))

    def list_characters(self, owner: str) -> list[Character]:
        with self._lock:
            return copy.deepcopy([c for (who, _), c in sorted(self._characters.items()) if who == owner])

    def cast_room(self, owner: str, key: str) -> CastRoom:
        with self._lock:
            return self._room(owner, key)

    def _room(self, owner: str, key: str) -> CastRoom:
        mine = [c for (who, _), c in self._characters.items() if who == owner]
        return CastRoom(count=len(mine), mine=sum(c.size_bytes for c in mine if c.key != key),
                        everyone=sum(c.size_bytes for c in self._characters.values()))

    def save_character(self, character: Character,
                       check: Callable[[Character | None, CastRoom], None]) -> Character | None:
        with self._lock:
            old = self._characters.get((character.owner, character.key))
            check(copy.deepcopy(old), self._room(character.owner, character.key))
            self._characters[(character.owner, character.key)] = copy.deepcopy(character)
            return old

    def delete_character(self, owner: str, key: str) -> Character | None:
        with self._lock:
            return self._characters.pop((owner, key), None)

    def characters_used(self, owner: str, keys: Sequence[str], at: float) -> None:
        with self._lock:
            for key in keys:
                if (found := self._characters.get((owner, key))) is not None:
                    self._characters[(owner, key)] = replace(found, last_used_at=at, uses=found.uses + 1)

    def file_in_use(self, name: str) -> bool:
        with self._lock:
            return any(name in (c.media, c.voice, c.thumbnail) for c in self._characters.values())
