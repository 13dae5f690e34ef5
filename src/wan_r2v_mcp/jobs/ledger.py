"""The task ledger: one SQLite row per task, written before anything is sent to a host.

WAL with synchronous=FULL, so a row that was committed survives a crash of the server; every write is
its own short `BEGIN IMMEDIATE` transaction (reliability.md D2). Task rows change only through
`transition` and `adopt`, compare-and-set on the task's phase, which `jobs.lifecycle` alone calls.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL,
    provider TEXT NOT NULL,
    provider_task_id TEXT,
    status TEXT NOT NULL,
    stage TEXT NOT NULL,
    progress REAL,
    request TEXT NOT NULL,
    refs TEXT NOT NULL,
    payload TEXT,
    fingerprint TEXT,
    video_url TEXT,
    video_url_expires_at REAL,
    local_path TEXT,
    poster_path TEXT,
    sidecar_path TEXT,
    cost_estimate REAL,
    billable_seconds REAL,
    error TEXT,
    owner TEXT NOT NULL DEFAULT '',
    phase TEXT NOT NULL DEFAULT 'pending',
    submitted_at REAL,
    candidates TEXT,
    key_from TEXT,
    creates INTEGER NOT NULL DEFAULT 0,
    output TEXT,
    sequence_id TEXT
);
CREATE TABLE IF NOT EXISTS leases (
    task_id TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_by_holder ON leases(holder);
CREATE TABLE IF NOT EXISTS sequences (
    sequence_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL,
    phase TEXT NOT NULL,
    stage TEXT NOT NULL,
    provider TEXT NOT NULL,
    spec TEXT NOT NULL,
    takes TEXT NOT NULL,
    cost_estimate REAL,
    billable_seconds REAL,
    local_path TEXT,
    poster_path TEXT,
    sidecar_path TEXT,
    output TEXT,
    error TEXT,
    version INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sequences_by_phase ON sequences(phase);
CREATE INDEX IF NOT EXISTS sequences_by_owner ON sequences(owner, created_at);
-- Money planned but not yet recorded as a task: one row per shot of a sequence whose next take is still to be made.
-- It counts against the caps while its sequence is running, so a sequence is admitted once, as the whole of its work.
CREATE TABLE IF NOT EXISTS reservations (
    sequence_id TEXT NOT NULL,
    shot INTEGER NOT NULL,
    owner TEXT NOT NULL,
    usd REAL NOT NULL,
    PRIMARY KEY (sequence_id, shot)
);
CREATE INDEX IF NOT EXISTS reservations_by_owner ON reservations(owner);
"""

# Made after any migration, since older ledgers lack some of these columns.
_INDEXES = """
CREATE INDEX IF NOT EXISTS tasks_by_owner_created ON tasks(owner, created_at);
CREATE INDEX IF NOT EXISTS tasks_by_owner_status_created ON tasks(owner, status, created_at);
CREATE INDEX IF NOT EXISTS tasks_by_phase ON tasks(phase);
CREATE INDEX IF NOT EXISTS tasks_by_fingerprint ON tasks(fingerprint);
CREATE INDEX IF NOT EXISTS tasks_by_sequence ON tasks(sequence_id) WHERE sequence_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS tasks_by_host_job ON tasks(provider, provider_task_id)
    WHERE provider_task_id IS NOT NULL;
"""

# Ledgers written before phases existed (0.1.0): derive each row's phase once, from what it recorded.
_MIGRATIONS = {
    "phase": """UPDATE tasks SET phase = CASE
        WHEN status IN ('succeeded', 'failed', 'canceled') THEN status
        WHEN provider_task_id IS NOT NULL THEN status
        WHEN payload IS NOT NULL THEN 'unknown'
        ELSE 'pending' END""",
    "submitted_at": None,
    "candidates": None,
    "key_from": None,
    "creates": None,
    "output": None,
    "sequence_id": None,
}

_JSON_COLUMNS = ("request", "refs", "payload", "error", "candidates", "output")


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


_COLUMNS = [f.name for f in fields(TaskRecord)]
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM tasks"


class Ledger:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        with self._lock:
            self._db.executescript(_SCHEMA)
            have = {row[1] for row in self._db.execute("PRAGMA table_info(tasks)")}
            for column, fill in _MIGRATIONS.items():
                if column not in have:
                    kind = {"phase": "TEXT NOT NULL DEFAULT 'pending'", "submitted_at": "REAL",
                            "creates": "INTEGER NOT NULL DEFAULT 0"}.get(column, "TEXT")
                    self._db.execute(f"ALTER TABLE tasks ADD COLUMN {column} {kind}")
                    if fill:
                        self._db.execute(fill)
            self._db.executescript(_INDEXES)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def transaction(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """One short write transaction; the cast and the sequences keep their tables in this same file through it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work(self._db)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return result

    def create_tables(self, script: str) -> None:
        """CREATE ... IF NOT EXISTS statements of a sibling table (executescript runs outside a transaction)."""
        with self._lock:
            self._db.executescript(script)

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # -- task rows: written only through jobs.lifecycle

    def insert(self, **values: Any) -> None:
        now = time.time()
        values.setdefault("created_at", now)
        values.setdefault("updated_at", now)
        row = {k: _encode(k, values.get(k)) for k in _COLUMNS if k in values}
        sql = f"INSERT INTO tasks ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})"
        self.transaction(lambda db: db.execute(sql, tuple(row.values())))

    def transition(self, task_id: str, from_phases: Sequence[str], phase: str, status: str,
                   values: dict[str, Any]) -> bool:
        """Set the task's phase (and columns) only while its phase is one of `from_phases`."""
        sql, params = self._cas(task_id, from_phases, phase, status, values)
        return self.transaction(lambda db: db.execute(sql, params).rowcount > 0)

    def adopt(self, task_id: str, provider: str, provider_task_id: str, from_phases: Sequence[str], phase: str,
              status: str, values: dict[str, Any]) -> bool:
        """Store a host job's id on the task, only if no other task follows that job, in one transaction."""
        sql, params = self._cas(task_id, from_phases, phase, status, {**values, "provider_task_id": provider_task_id})

        def work(db: sqlite3.Connection) -> bool:
            taken = db.execute("SELECT task_id FROM tasks WHERE provider = ? AND provider_task_id = ?",
                               (provider, provider_task_id)).fetchone()
            if taken is not None:
                return taken[0] == task_id and db.execute(sql, params).rowcount > 0
            return db.execute(sql + " AND provider_task_id IS NULL", params).rowcount > 0

        return self.transaction(work)

    @staticmethod
    def _cas(task_id: str, from_phases: Sequence[str], phase: str, status: str,
             values: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
        values = {**values, "phase": phase, "status": status, "updated_at": time.time()}
        sets = ", ".join(f"{k} = ?" for k in values)
        marks = ", ".join("?" for _ in from_phases)
        params = (*(_encode(k, v) for k, v in values.items()), task_id, *from_phases)
        return f"UPDATE tasks SET {sets} WHERE task_id = ? AND phase IN ({marks})", params

    # -- reading

    def get(self, task_id: str) -> TaskRecord | None:
        with self._lock:
            row = self._db.execute(f"{_SELECT} WHERE task_id = ?", (task_id,)).fetchone()
        return _decode(row) if row else None

    def list(self, *, limit: int = 20, status: str | None = None, owner: str = "") -> tuple[list[TaskRecord], int]:
        where, params = "owner = ?", [owner]
        if status:
            where += " AND status = ?"
            params.append(status)
        with self._lock:
            total = self._db.execute(f"SELECT COUNT(*) FROM tasks WHERE {where}", params).fetchone()[0]
            rows = self._db.execute(f"{_SELECT} WHERE {where} ORDER BY created_at DESC, rowid DESC LIMIT ?",
                                    [*params, limit]).fetchall()
        return [_decode(r) for r in rows], total

    # -- money: the duplicate guard and the caps, checked and recorded in one transaction

    def admit(self, *, owner: str, check: Callable[[Spend], None], task: dict[str, Any] | None = None,
              duplicate_of: tuple[str, float] | None = None, sequence_id: str | None = None, shot: int | None = None,
              reserve: dict[int, float] | None = None, then: Callable[[sqlite3.Connection], bool] | None = None,
              ) -> TaskRecord | None:
        """Decide a spend atomically: inside one write transaction, return an identical recent request's task
        (`duplicate_of`: fingerprint, succeeded since) if there is one; else give `check` what is already spent and
        planned (it raises to refuse), record `task` (a take of `shot` uses up that shot's reservation), set the
        sequence's reservations (`reserve`: shot -> USD) and run `then` (False undoes it all and raises Conflict).
        Concurrent admissions, in this process or another on the same file, are decided one after the other."""
        now = time.time()

        def work(db: sqlite3.Connection) -> TaskRecord | None:
            if duplicate_of is not None:
                row = db.execute(
                    f"{_SELECT} WHERE fingerprint = ? AND owner = ? AND (status IN ('queued', 'running') OR "
                    "(status = 'succeeded' AND finished_at >= ?)) ORDER BY created_at DESC LIMIT 1",
                    (duplicate_of[0], owner, duplicate_of[1])).fetchone()
                if row is not None:
                    return _decode(row)
            released = 0.0  # the shot's reservation, used up by its take
            if sequence_id is not None and shot is not None and task is not None:
                row = db.execute("SELECT usd FROM reservations WHERE sequence_id = ? AND shot = ?",
                                 (sequence_id, shot)).fetchone()
                released = float(row[0]) if row else 0.0
            replaced = 0.0  # reservations that `reserve` replaces
            if sequence_id is not None and reserve:
                marks = ", ".join("?" for _ in reserve)
                replaced = float(db.execute(
                    f"SELECT COALESCE(SUM(usd), 0) FROM reservations WHERE sequence_id = ? AND shot IN ({marks})",
                    (sequence_id, *reserve)).fetchone()[0])
            day, whole = _spend(db, owner, now - 86400, sequence_id)
            freed = released + replaced
            check(Spend(day=day - freed, sequence=None if whole is None else whole - freed))
            if task is not None:
                row = {k: _encode(k, task.get(k)) for k in _COLUMNS if k in task}
                row.setdefault("created_at", now)
                row.setdefault("updated_at", now)
                db.execute(f"INSERT INTO tasks ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                           tuple(row.values()))
                if released:
                    db.execute("DELETE FROM reservations WHERE sequence_id = ? AND shot = ?", (sequence_id, shot))
            for index, usd in (reserve or {}).items():
                db.execute("INSERT OR REPLACE INTO reservations (sequence_id, shot, owner, usd) VALUES (?, ?, ?, ?)",
                           (sequence_id, index, owner, usd))
            if then is not None and not then(db):
                raise _Undo
            return None

        try:
            return self.transaction(work)
        except _Undo:
            raise Conflict("the sequence changed while this was being decided") from None

    def spent(self, owner: str = "", sequence_id: str | None = None) -> Spend:
        """What counts against the caps now: the caller's last 24 hours with what running sequences plan, and one
        sequence's whole (its takes and its plan)."""
        with self._lock:
            day, whole = _spend(self._db, owner, time.time() - 86400, sequence_id)
        return Spend(day=day, sequence=whole)

    def free_work_since(self, owner: str, since: float, providers: Sequence[str]) -> int:
        """How many free things (tasks of these local providers, and stitches) a caller started since `since`."""
        marks = ", ".join("?" for _ in providers) or "''"
        with self._lock:
            tasks = self._db.execute(f"SELECT COUNT(*) FROM tasks WHERE owner = ? AND created_at >= ? AND provider IN "
                                     f"({marks}) AND sequence_id IS NULL", (owner, since, *providers)).fetchone()[0]
            stitches = self._db.execute("SELECT COUNT(*) FROM sequences WHERE owner = ? AND created_at >= ? AND "
                                        "kind = 'stitch'", (owner, since)).fetchone()[0]
        return int(tasks) + int(stitches)

    def sequence_cost(self, sequence_id: str) -> tuple[float, float]:
        """A sequence's money: what its takes cost (made, or being made), and what its shots still to make plan."""
        with self._lock:
            return _sequence_cost(self._db, sequence_id)

    def followed(self, provider: str, provider_task_ids: Sequence[str]) -> set[str]:
        """Which of these host jobs a task already follows."""
        if not provider_task_ids:
            return set()
        marks = ", ".join("?" for _ in provider_task_ids)
        with self._lock:
            rows = self._db.execute(f"SELECT provider_task_id FROM tasks WHERE provider = ? AND provider_task_id IN "
                                    f"({marks})", (provider, *provider_task_ids)).fetchall()
        return {r[0] for r in rows}

    def unfinished(self) -> list[TaskRecord]:
        with self._lock:
            rows = self._db.execute(f"{_SELECT} WHERE phase NOT IN ('succeeded', 'failed', 'canceled') "
                                    "ORDER BY created_at").fetchall()
        return [_decode(r) for r in rows]

    # -- leases: which server of several sharing this ledger follows a task

    def take_lease(self, task_id: str, holder: str, seconds: float, is_stale: Callable[[str], bool]) -> float:
        """Claim the right to follow a task at its host. Returns 0 when `holder` has it, else the seconds the
        current holder's claim still runs."""
        now = time.time()

        def work(db: sqlite3.Connection) -> float:
            row = db.execute("SELECT holder, until FROM leases WHERE task_id = ?", (task_id,)).fetchone()
            if row and row[0] != holder and row[1] > now and not is_stale(row[0]):
                return row[1] - now
            db.execute("INSERT OR REPLACE INTO leases (task_id, holder, until) VALUES (?, ?, ?)",
                       (task_id, holder, now + seconds))
            return 0.0

        return self.transaction(work)

    def renew_leases(self, holder: str, seconds: float) -> int:
        """Extend every claim `holder` has, in one statement, whatever the number of tasks."""
        until = time.time() + seconds
        return self.transaction(
            lambda db: db.execute("UPDATE leases SET until = ? WHERE holder = ?", (until, holder)).rowcount)

    def holds_lease(self, task_id: str, holder: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT holder, until FROM leases WHERE task_id = ?", (task_id,)).fetchone()
        return row is not None and row[0] == holder and row[1] > time.time()

    def release_lease(self, task_id: str, holder: str) -> None:
        self.transaction(lambda db: db.execute("DELETE FROM leases WHERE task_id = ? AND holder = ?",
                                                (task_id, holder)))


@dataclass(frozen=True)
class Spend:
    """USD counted against the caps: `day`, the caller's last 24 hours (tasks that may have reached a host, and the
    planned shots of running sequences); `sequence`, one sequence's whole (every take and the shots still planned)."""

    day: float
    sequence: float | None = None


class Conflict(Exception):
    """A row changed between reading it and deciding on it: read it again."""


class _Undo(Exception):
    pass


# A task counts once it may have reached a host (a failure before any job was made costs nothing).
_COUNTS = "(status IN ('queued', 'running', 'succeeded') OR (phase = 'canceled' AND provider_task_id IS NOT NULL))"


def _spend(db: sqlite3.Connection, owner: str, since: float, sequence_id: str | None) -> tuple[float, float | None]:
    tasks = db.execute(f"SELECT COALESCE(SUM(cost_estimate), 0) FROM tasks WHERE owner = ? AND created_at >= ? AND "
                       f"{_COUNTS}", (owner, since)).fetchone()[0]
    # Planned shots count while their sequence runs; the sequence being decided counts whatever its phase (a redo
    # brings a failed one back to life).
    planned = db.execute(
        "SELECT COALESCE(SUM(r.usd), 0) FROM reservations r JOIN sequences s ON s.sequence_id = r.sequence_id "
        "WHERE r.owner = ? AND (s.phase IN ('running', 'joining') OR s.sequence_id = ?)",
        (owner, sequence_id)).fetchone()[0]
    day = float(tasks) + float(planned)
    if sequence_id is None:
        return day, None
    made, planned = _sequence_cost(db, sequence_id)
    return day, made + planned


def _sequence_cost(db: sqlite3.Connection, sequence_id: str) -> tuple[float, float]:
    made = db.execute(f"SELECT COALESCE(SUM(cost_estimate), 0) FROM tasks WHERE sequence_id = ? AND {_COUNTS}",
                      (sequence_id,)).fetchone()[0]
    planned = db.execute("SELECT COALESCE(SUM(usd), 0) FROM reservations WHERE sequence_id = ?",
                         (sequence_id,)).fetchone()[0]
    return round(float(made), 4), round(float(planned), 4)


def _encode(column: str, value: Any) -> Any:
    if column in _JSON_COLUMNS and value is not None:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


def _decode(row: tuple[Any, ...]) -> TaskRecord:
    values = dict(zip(_COLUMNS, row))
    for column in _JSON_COLUMNS:
        if values[column] is not None:
            values[column] = json.loads(values[column])
    return TaskRecord(**values)
