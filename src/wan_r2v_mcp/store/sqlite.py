"""The embedded store: one SQLite file in the data folder, shared by every server process on this machine.

WAL with synchronous=FULL, so a row that was committed survives a crash of the server or of the machine; every
write is its own
short `BEGIN IMMEDIATE` transaction, so concurrent writers (threads, or processes on the same file) are decided one
after the other (https://www.sqlite.org/lang_transaction.html). WAL does not work across hosts or on network
filesystems (https://www.sqlite.org/wal.html): several machines need a database server.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .base import Store
from .records import (
    CHARACTER_COLUMNS,
    SEQUENCE_COLUMNS,
    SEQUENCE_JSON,
    SEQUENCE_LIVE,
    TASK_COLUMNS,
    TASK_DONE,
    TASK_JSON,
    CastRoom,
    Character,
    Conflict,
    SequenceMove,
    SequenceRecord,
    Spend,
    TaskRecord,
)

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
    sequence_id TEXT,
    model TEXT NOT NULL DEFAULT 'wan2.7-r2v'
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
CREATE TABLE IF NOT EXISTS characters (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL,
    format TEXT NOT NULL,
    media TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    width INTEGER,
    height INTEGER,
    seconds REAL,
    voice TEXT,
    voice_format TEXT,
    voice_seconds REAL,
    thumbnail TEXT,
    created_at REAL NOT NULL,
    last_used_at REAL,
    uses INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, key)
);
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
    "model": None,
}




_KINDS = {"phase": "TEXT NOT NULL DEFAULT 'pending'", "submitted_at": "REAL", "creates": "INTEGER NOT NULL DEFAULT 0",
          "model": "TEXT NOT NULL DEFAULT 'wan2.7-r2v'"}
_SELECT = f"SELECT {', '.join(TASK_COLUMNS)} FROM tasks"
_SELECT_SEQUENCE = f"SELECT {', '.join(SEQUENCE_COLUMNS)} FROM sequences"
_SELECT_CHARACTER = f"SELECT {', '.join(CHARACTER_COLUMNS)} FROM characters"
_DONE = ", ".join(f"'{p}'" for p in TASK_DONE)
_LIVE = ", ".join(f"'{p}'" for p in SEQUENCE_LIVE)
# A task counts once it may have reached a host (records.counts_against_caps says the same in Python).
_COUNTS = "(status IN ('queued', 'running', 'succeeded') OR (phase = 'canceled' AND provider_task_id IS NOT NULL))"


class SQLiteStore(Store):
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._sync = "FULL"
        self._db.execute("PRAGMA busy_timeout=10000")
        with self._lock:
            self._db.executescript(_SCHEMA)
            have = {row[1] for row in self._db.execute("PRAGMA table_info(tasks)")}
            for column, fill in _MIGRATIONS.items():
                if column not in have:
                    self._db.execute(f"ALTER TABLE tasks ADD COLUMN {column} {_KINDS.get(column, 'TEXT')}")
                    if fill:
                        self._db.execute(fill)
            self._db.executescript(_INDEXES)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, work: Callable[[sqlite3.Connection], Any], *, durable: bool = True) -> Any:
        """One transaction. `durable=False` commits without an fsync (synchronous=NORMAL): in WAL mode that
        survives a crash of the process, not a power cut, and the WAL is appended in order, so the next durable
        commit's fsync carries it too (https://www.sqlite.org/pragma.html#pragma_synchronous)."""
        with self._lock:
            sync = "FULL" if durable else "NORMAL"
            if sync != self._sync:  # a pragma of the connection, set between transactions
                self._db.execute(f"PRAGMA synchronous={sync}")
                self._sync = sync
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work(self._db)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return result

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # -- task rows

    def insert(self, **values: Any) -> None:
        self._write(lambda db: _insert_task(db, values, time.time()))

    def transition(self, task_id: str, from_phases: Sequence[str], phase: str, status: str,
                   values: dict[str, Any], *, durable: bool = True) -> bool:
        sql, params = _cas(task_id, from_phases, phase, status, values)
        return self._write(lambda db: db.execute(sql, params).rowcount > 0, durable=durable)

    def adopt(self, task_id: str, provider: str, provider_task_id: str, from_phases: Sequence[str], phase: str,
              status: str, values: dict[str, Any]) -> bool:
        sql, params = _cas(task_id, from_phases, phase, status, {**values, "provider_task_id": provider_task_id})

        def work(db: sqlite3.Connection) -> bool:
            taken = db.execute("SELECT task_id FROM tasks WHERE provider = ? AND provider_task_id = ?",
                               (provider, provider_task_id)).fetchone()
            if taken is not None:
                return taken[0] == task_id and db.execute(sql, params).rowcount > 0
            return db.execute(sql + " AND provider_task_id IS NULL", params).rowcount > 0

        return self._write(work)

    def get(self, task_id: str) -> TaskRecord | None:
        rows = self._read(f"{_SELECT} WHERE task_id = ?", (task_id,))
        return _task(rows[0]) if rows else None

    def list(self, *, limit: int = 20, status: str | None = None, owner: str = "") -> tuple[list[TaskRecord], int]:
        where, params = "owner = ?", [owner]
        if status:
            where += " AND status = ?"
            params.append(status)
        with self._lock:
            total = self._db.execute(f"SELECT COUNT(*) FROM tasks WHERE {where}", params).fetchone()[0]
            rows = self._db.execute(f"{_SELECT} WHERE {where} ORDER BY created_at DESC, rowid DESC LIMIT ?",
                                    [*params, limit]).fetchall()
        return [_task(r) for r in rows], total

    def followed(self, provider: str, provider_task_ids: Sequence[str]) -> set[str]:
        if not provider_task_ids:
            return set()
        marks = ", ".join("?" for _ in provider_task_ids)
        rows = self._read(f"SELECT provider_task_id FROM tasks WHERE provider = ? AND provider_task_id IN ({marks})",
                          (provider, *provider_task_ids))
        return {r[0] for r in rows}

    def unfinished(self) -> list[TaskRecord]:
        return [_task(r) for r in self._read(f"{_SELECT} WHERE phase NOT IN ({_DONE}) ORDER BY created_at, rowid")]

    # -- money

    def admit(self, *, owner: str, check: Callable[[Spend], None], task: dict[str, Any] | None = None,
              duplicate_of: tuple[str, float] | None = None, sequence_id: str | None = None,
              shot: int | None = None, reserve: dict[int, float] | None = None,
              new_sequence: SequenceRecord | None = None, move: SequenceMove | None = None) -> TaskRecord | None:
        now = time.time()

        def work(db: sqlite3.Connection) -> TaskRecord | None:
            if duplicate_of is not None:
                row = db.execute(
                    f"{_SELECT} WHERE fingerprint = ? AND owner = ? AND (status IN ('queued', 'running') OR "
                    "(status = 'succeeded' AND finished_at >= ?)) ORDER BY created_at DESC LIMIT 1",
                    (duplicate_of[0], owner, duplicate_of[1])).fetchone()
                if row is not None:
                    return _task(row)
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
                _insert_task(db, task, now)
                if released:
                    db.execute("DELETE FROM reservations WHERE sequence_id = ? AND shot = ?", (sequence_id, shot))
            for index, usd in (reserve or {}).items():
                db.execute("INSERT OR REPLACE INTO reservations (sequence_id, shot, owner, usd) VALUES (?, ?, ?, ?)",
                           (sequence_id, index, owner, usd))
            if new_sequence is not None:
                _insert_sequence(db, new_sequence)
            if move is not None and not _move_sequence(db, move):
                raise _Undo
            return None

        try:
            return self._write(work)
        except _Undo:
            raise Conflict("the sequence changed while this was being decided") from None

    def spent(self, owner: str = "", sequence_id: str | None = None) -> Spend:
        with self._lock:
            day, whole = _spend(self._db, owner, time.time() - 86400, sequence_id)
        return Spend(day=day, sequence=whole)

    def free_work_since(self, owner: str, since: float, providers: Sequence[str]) -> int:
        marks = ", ".join("?" for _ in providers) or "''"
        with self._lock:
            tasks = self._db.execute(f"SELECT COUNT(*) FROM tasks WHERE owner = ? AND created_at >= ? AND provider IN "
                                     f"({marks}) AND sequence_id IS NULL", (owner, since, *providers)).fetchone()[0]
            stitches = self._db.execute("SELECT COUNT(*) FROM sequences WHERE owner = ? AND created_at >= ? AND "
                                        "kind = 'stitch'", (owner, since)).fetchone()[0]
        return int(tasks) + int(stitches)

    def sequence_cost(self, sequence_id: str) -> tuple[float, float]:
        with self._lock:
            return _sequence_cost(self._db, sequence_id)

    # -- leases

    def take_lease(self, task_id: str, holder: str, seconds: float, is_stale: Callable[[str], bool]) -> float:
        now = time.time()

        def work(db: sqlite3.Connection) -> float:
            row = db.execute("SELECT holder, until FROM leases WHERE task_id = ?", (task_id,)).fetchone()
            if row and row[0] != holder and row[1] > now and not is_stale(row[0]):
                return row[1] - now
            db.execute("INSERT OR REPLACE INTO leases (task_id, holder, until) VALUES (?, ?, ?)",
                       (task_id, holder, now + seconds))
            return 0.0

        return self._write(work, durable=False)  # a power cut that undoes a lease ends its holder too

    def renew_leases(self, holder: str, seconds: float) -> set[str]:
        until = time.time() + seconds

        def work(db: sqlite3.Connection) -> set[str]:  # no RETURNING: SQLite before 3.35 (Debian 11's) lacks it
            held = {r[0] for r in db.execute("SELECT task_id FROM leases WHERE holder = ?", (holder,))}
            db.execute("UPDATE leases SET until = ? WHERE holder = ?", (until, holder))
            return held

        return self._write(work, durable=False)

    def holds_lease(self, task_id: str, holder: str) -> bool:
        rows = self._read("SELECT holder, until FROM leases WHERE task_id = ?", (task_id,))
        return bool(rows) and rows[0][0] == holder and rows[0][1] > time.time()

    def release_lease(self, task_id: str, holder: str) -> None:
        self._write(lambda db: db.execute("DELETE FROM leases WHERE task_id = ? AND holder = ?", (task_id, holder)),
                    durable=False)

    # -- sequences

    def insert_sequence(self, record: SequenceRecord) -> None:
        self._write(lambda db: _insert_sequence(db, record))

    def get_sequence(self, sequence_id: str) -> SequenceRecord | None:
        rows = self._read(f"{_SELECT_SEQUENCE} WHERE sequence_id = ?", (sequence_id,))
        return _sequence(rows[0]) if rows else None

    def newest_sequences(self, owner: str, limit: int, phases: Sequence[str] | None = None,
                         ) -> tuple[list[SequenceRecord], int]:
        where, params = "owner = ?", [owner]
        if phases:
            where += f" AND phase IN ({', '.join('?' for _ in phases)})"
            params += list(phases)
        with self._lock:
            total = self._db.execute(f"SELECT COUNT(*) FROM sequences WHERE {where}", params).fetchone()[0]
            rows = self._db.execute(f"{_SELECT_SEQUENCE} WHERE {where} ORDER BY created_at DESC, rowid DESC LIMIT ?",
                                    [*params, limit]).fetchall()
        return [_sequence(r) for r in rows], total

    def unfinished_sequences(self) -> list[SequenceRecord]:
        return [_sequence(r) for r in self._read(f"{_SELECT_SEQUENCE} WHERE phase IN ({_LIVE}) ORDER BY created_at")]

    def move_sequence(self, move: SequenceMove) -> bool:
        return self._write(lambda db: _move_sequence(db, move))

    # -- characters

    def get_character(self, owner: str, key: str) -> Character | None:
        rows = self._read(f"{_SELECT_CHARACTER} WHERE owner = ? AND key = ?", (owner, key))
        return Character(*rows[0]) if rows else None

    def list_characters(self, owner: str) -> list[Character]:
        return [Character(*r) for r in self._read(f"{_SELECT_CHARACTER} WHERE owner = ? ORDER BY key", (owner,))]

    def cast_room(self, owner: str, key: str) -> CastRoom:
        with self._lock:
            return _room(self._db, owner, key)

    def save_character(self, character: Character,
                       check: Callable[[Character | None, CastRoom], None]) -> Character | None:
        def work(db: sqlite3.Connection) -> Character | None:
            row = db.execute(f"{_SELECT_CHARACTER} WHERE owner = ? AND key = ?",
                             (character.owner, character.key)).fetchone()
            old = Character(*row) if row else None
            check(old, _room(db, character.owner, character.key))
            db.execute(f"INSERT OR REPLACE INTO characters ({', '.join(CHARACTER_COLUMNS)}) VALUES "
                       f"({', '.join('?' for _ in CHARACTER_COLUMNS)})",
                       [getattr(character, c) for c in CHARACTER_COLUMNS])
            return old

        return self._write(work)

    def delete_character(self, owner: str, key: str) -> Character | None:
        def work(db: sqlite3.Connection) -> Character | None:
            row = db.execute(f"{_SELECT_CHARACTER} WHERE owner = ? AND key = ?", (owner, key)).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM characters WHERE owner = ? AND key = ?", (owner, key))
            return Character(*row)

        return self._write(work)

    def characters_used(self, owner: str, keys: Sequence[str], at: float) -> None:
        self._write(lambda db: db.executemany(
            "UPDATE characters SET last_used_at = ?, uses = uses + 1 WHERE owner = ? AND key = ?",
            [(at, owner, k) for k in keys]))

    def file_in_use(self, name: str) -> bool:
        return bool(self._read("SELECT 1 FROM characters WHERE media = ? OR voice = ? OR thumbnail = ? LIMIT 1",
                               (name, name, name)))


class _Undo(Exception):
    pass


def _insert_task(db: sqlite3.Connection, values: dict[str, Any], now: float) -> None:
    row = {k: _encode(k, values.get(k), TASK_JSON) for k in TASK_COLUMNS if k in values}
    row.setdefault("created_at", now)
    row.setdefault("updated_at", now)
    try:
        db.execute(f"INSERT INTO tasks ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})", tuple(row.values()))
    except sqlite3.IntegrityError:
        raise ValueError(f"task {row.get('task_id')} or its host job is already recorded") from None


def _cas(task_id: str, from_phases: Sequence[str], phase: str, status: str,
         values: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    values = {**values, "phase": phase, "status": status, "updated_at": time.time()}
    sets = ", ".join(f"{k} = ?" for k in values)
    marks = ", ".join("?" for _ in from_phases)
    params = (*(_encode(k, v, TASK_JSON) for k, v in values.items()), task_id, *from_phases)
    return f"UPDATE tasks SET {sets} WHERE task_id = ? AND phase IN ({marks})", params


def _insert_sequence(db: sqlite3.Connection, record: SequenceRecord) -> None:
    values = [_encode(c, getattr(record, c), SEQUENCE_JSON) for c in SEQUENCE_COLUMNS]
    try:
        db.execute(f"INSERT INTO sequences ({', '.join(SEQUENCE_COLUMNS)}) VALUES "
                   f"({', '.join('?' for _ in SEQUENCE_COLUMNS)})", values)
    except sqlite3.IntegrityError:
        raise ValueError(f"sequence {record.sequence_id} is already recorded") from None


def _move_sequence(db: sqlite3.Connection, move: SequenceMove) -> bool:
    sets = ", ".join(f"{k} = ?" for k in move.values)
    params = [*(_encode(k, v, SEQUENCE_JSON) for k, v in move.values.items()), move.sequence_id, move.version]
    return db.execute(f"UPDATE sequences SET {sets} WHERE sequence_id = ? AND version = ?", params).rowcount > 0


def _spend(db: sqlite3.Connection, owner: str, since: float, sequence_id: str | None) -> tuple[float, float | None]:
    tasks = db.execute(f"SELECT COALESCE(SUM(cost_estimate), 0) FROM tasks WHERE owner = ? AND created_at >= ? AND "
                       f"{_COUNTS}", (owner, since)).fetchone()[0]
    # Planned shots count while their sequence runs; the sequence being decided counts whatever its phase (a redo
    # brings a failed one back to life).
    planned = db.execute(
        "SELECT COALESCE(SUM(r.usd), 0) FROM reservations r JOIN sequences s ON s.sequence_id = r.sequence_id "
        f"WHERE r.owner = ? AND (s.phase IN ({_LIVE}) OR s.sequence_id = ?)", (owner, sequence_id)).fetchone()[0]
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


def _room(db: sqlite3.Connection, owner: str, key: str) -> CastRoom:
    row = db.execute("SELECT (SELECT COUNT(*) FROM characters WHERE owner = ?), "
                     "(SELECT COALESCE(SUM(size_bytes), 0) FROM characters WHERE owner = ? AND key != ?), "
                     "(SELECT COALESCE(SUM(size_bytes), 0) FROM characters)", (owner, owner, key)).fetchone()
    return CastRoom(count=int(row[0]), mine=int(row[1]), everyone=int(row[2]))


def _encode(column: str, value: Any, json_columns: Sequence[str]) -> Any:
    if column in json_columns and value is not None:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


def _decoded(row: tuple[Any, ...], columns: Sequence[str], json_columns: Sequence[str]) -> dict[str, Any]:
    values = dict(zip(columns, row))
    for column in json_columns:
        if values[column] is not None:
            values[column] = json.loads(values[column])
    return values


def _task(row: tuple[Any, ...]) -> TaskRecord:
    return TaskRecord(**_decoded(row, TASK_COLUMNS, TASK_JSON))


def _sequence(row: tuple[Any, ...]) -> SequenceRecord:
    return SequenceRecord(**_decoded(row, SEQUENCE_COLUMNS, SEQUENCE_JSON))
