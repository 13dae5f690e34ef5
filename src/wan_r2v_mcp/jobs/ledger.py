"""The task ledger: one SQLite row per task, written before anything is sent to a host.

WAL with synchronous=FULL, so a row that was committed survives a crash of the server; every write is
its own short `BEGIN IMMEDIATE` transaction (reliability.md D2). Only the runner writes here.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
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
    owner TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS tasks_by_created ON tasks(created_at);
CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks(status);
CREATE INDEX IF NOT EXISTS tasks_by_fingerprint ON tasks(fingerprint);
CREATE TABLE IF NOT EXISTS leases (
    task_id TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until REAL NOT NULL
);
"""

_JSON_COLUMNS = ("request", "refs", "payload", "error")


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


_COLUMNS = [f.name for f in fields(TaskRecord)]


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

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                count = self._db.execute(sql, params).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return count

    def insert(self, **values: Any) -> TaskRecord:
        now = time.time()
        values.setdefault("created_at", now)
        values.setdefault("updated_at", now)
        row = {k: _encode(k, values.get(k)) for k in _COLUMNS if k in values}
        names = ", ".join(row)
        self._write(f"INSERT INTO tasks ({names}) VALUES ({', '.join('?' for _ in row)})", tuple(row.values()))
        return self.get(values["task_id"])  # type: ignore[return-value]

    def update(self, task_id: str, *, only_if_status: tuple[str, ...] | None = None, **values: Any) -> bool:
        """Change a task's columns; with `only_if_status`, only while its status is one of those."""
        values["updated_at"] = time.time()
        sets = ", ".join(f"{k} = ?" for k in values)
        params = [_encode(k, v) for k, v in values.items()] + [task_id]
        where = "task_id = ?"
        if only_if_status:
            where += f" AND status IN ({', '.join('?' for _ in only_if_status)})"
            params += list(only_if_status)
        return self._write(f"UPDATE tasks SET {sets} WHERE {where}", tuple(params)) > 0

    def get(self, task_id: str) -> TaskRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        return _decode(row) if row else None

    def list(self, *, limit: int = 20, status: str | None = None, owner: str | None = None) -> tuple[list[TaskRecord], int]:
        where, params = [], []
        if status:
            where.append("status = ?")
            params.append(status)
        if owner is not None:
            where.append("owner = ?")
            params.append(owner)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            total = self._db.execute(f"SELECT COUNT(*) FROM tasks {clause}", params).fetchone()[0]
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM tasks {clause} ORDER BY created_at DESC, rowid DESC LIMIT ?",
                [*params, limit],
            ).fetchall()
        return [_decode(r) for r in rows], total

    def take_lease(self, task_id: str, holder: str, seconds: float, is_stale: Callable[[str], bool]) -> float:
        """Claim the right to follow a task at its host, so that servers sharing this ledger do not all poll it.

        Returns 0 when `holder` now has it, else how many seconds the current holder's claim still runs.
        """
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT holder, until FROM leases WHERE task_id = ?", (task_id,)).fetchone()
                if row and row[0] != holder and row[1] > now and not is_stale(row[0]):
                    self._db.execute("COMMIT")
                    return row[1] - now
                self._db.execute("INSERT OR REPLACE INTO leases (task_id, holder, until) VALUES (?, ?, ?)",
                                 (task_id, holder, now + seconds))
                self._db.execute("COMMIT")
                return 0.0
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def release_lease(self, task_id: str, holder: str) -> None:
        self._write("DELETE FROM leases WHERE task_id = ? AND holder = ?", (task_id, holder))

    def find_duplicate(self, fingerprint: str, owner: str, succeeded_since: float) -> TaskRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM tasks WHERE fingerprint = ? AND owner = ? AND "
                "(status IN ('queued', 'running') OR (status = 'succeeded' AND finished_at >= ?)) "
                "ORDER BY created_at DESC LIMIT 1", (fingerprint, owner, succeeded_since)).fetchone()
        return _decode(row) if row else None

    def spent_since(self, since: float) -> float:
        """Estimated spend of the tasks created since `since` that were not refused or canceled unsent."""
        with self._lock:
            row = self._db.execute(
                "SELECT COALESCE(SUM(cost_estimate), 0) FROM tasks WHERE created_at >= ? AND "
                "(status IN ('queued', 'running', 'succeeded') OR (status = 'canceled' AND provider_task_id IS NOT NULL))",
                (since,)).fetchone()
        return float(row[0])

    def provider_ids(self, provider: str) -> set[str]:
        with self._lock:
            rows = self._db.execute("SELECT provider_task_id FROM tasks WHERE provider = ? AND provider_task_id IS "
                                    "NOT NULL", (provider,)).fetchall()
        return {r[0] for r in rows}

    def unfinished(self) -> list[TaskRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM tasks WHERE status IN ('queued', 'running') ORDER BY created_at"
            ).fetchall()
        return [_decode(r) for r in rows]


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
