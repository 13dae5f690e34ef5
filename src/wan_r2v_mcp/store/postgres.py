"""The shared store: PostgreSQL (psycopg 3 with a connection pool), for a team running several replicas.

Every write is one short transaction. Money is decided under a transaction-scoped advisory lock per caller
(`pg_advisory_xact_lock`), so two replicas can neither both pass the duplicate guard for one request nor both pass
a caller's cap (https://www.postgresql.org/docs/15/explicit-locking.html#ADVISORY-LOCKS); the lock ends with the
transaction, so a pooled connection never keeps it. Leases are rows timed by the database's clock
(`clock_timestamp()`), never a replica's. Schema changes are numbered migrations, applied once under a lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
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

# Each entry is applied once, in order, and recorded in schema_version; a new column is a new entry.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE tasks (
        n BIGSERIAL UNIQUE,
        task_id TEXT PRIMARY KEY,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION,
        provider TEXT NOT NULL,
        provider_task_id TEXT,
        status TEXT NOT NULL,
        stage TEXT NOT NULL,
        progress DOUBLE PRECISION,
        request JSONB NOT NULL,
        refs JSONB NOT NULL,
        payload JSONB,
        fingerprint TEXT,
        video_url TEXT,
        video_url_expires_at DOUBLE PRECISION,
        local_path TEXT,
        poster_path TEXT,
        sidecar_path TEXT,
        cost_estimate DOUBLE PRECISION,
        billable_seconds DOUBLE PRECISION,
        error JSONB,
        owner TEXT NOT NULL DEFAULT '',
        phase TEXT NOT NULL DEFAULT 'pending',
        submitted_at DOUBLE PRECISION,
        candidates JSONB,
        key_from TEXT,
        creates INTEGER NOT NULL DEFAULT 0,
        output JSONB,
        sequence_id TEXT,
        model TEXT NOT NULL DEFAULT 'wan2.7-r2v'
    );
    CREATE INDEX tasks_by_owner_created ON tasks (owner, created_at);
    CREATE INDEX tasks_by_owner_status_created ON tasks (owner, status, created_at);
    CREATE INDEX tasks_unfinished ON tasks (created_at) WHERE phase NOT IN ('succeeded', 'failed', 'canceled');
    CREATE INDEX tasks_by_fingerprint ON tasks (owner, fingerprint);
    CREATE INDEX tasks_by_sequence ON tasks (sequence_id) WHERE sequence_id IS NOT NULL;
    CREATE UNIQUE INDEX tasks_by_host_job ON tasks (provider, provider_task_id) WHERE provider_task_id IS NOT NULL;
    CREATE TABLE leases (
        task_id TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        until DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX leases_by_holder ON leases (holder);
    CREATE TABLE sequences (
        n BIGSERIAL UNIQUE,
        sequence_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        kind TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION,
        phase TEXT NOT NULL,
        stage TEXT NOT NULL,
        provider TEXT NOT NULL,
        spec JSONB NOT NULL,
        takes JSONB NOT NULL,
        cost_estimate DOUBLE PRECISION,
        billable_seconds DOUBLE PRECISION,
        local_path TEXT,
        poster_path TEXT,
        sidecar_path TEXT,
        output JSONB,
        error JSONB,
        version INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sequences_by_phase ON sequences (phase);
    CREATE INDEX sequences_by_owner ON sequences (owner, created_at);
    CREATE TABLE reservations (
        sequence_id TEXT NOT NULL,
        shot INTEGER NOT NULL,
        owner TEXT NOT NULL,
        usd DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (sequence_id, shot)
    );
    CREATE INDEX reservations_by_owner ON reservations (owner);
    CREATE TABLE characters (
        owner TEXT NOT NULL,
        key TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL,
        format TEXT NOT NULL,
        media TEXT NOT NULL,
        size_bytes BIGINT NOT NULL,
        width INTEGER,
        height INTEGER,
        seconds DOUBLE PRECISION,
        voice TEXT,
        voice_format TEXT,
        voice_seconds DOUBLE PRECISION,
        thumbnail TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        last_used_at DOUBLE PRECISION,
        uses INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (owner, key)
    );
    """,
    # 2: every change a waiter cares about is announced (its id only: payloads of 8000 bytes are refused), so a
    # waiter on any replica wakes at once (https://www.postgresql.org/docs/15/sql-notify.html); the lease table is
    # left out, since one renew touches every row a replica holds. And the URL-signing key every replica shares.
    """
    CREATE FUNCTION wan_r2v_task_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_notify('wan_r2v_changed', NEW.task_id); RETURN NEW; END $$;
    CREATE TRIGGER task_changed AFTER INSERT OR UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION wan_r2v_task_changed();
    CREATE FUNCTION wan_r2v_sequence_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_notify('wan_r2v_changed', NEW.sequence_id); RETURN NEW; END $$;
    CREATE TRIGGER sequence_changed AFTER INSERT OR UPDATE ON sequences FOR EACH ROW
        EXECUTE FUNCTION wan_r2v_sequence_changed();
    CREATE TABLE kept_secrets (name TEXT PRIMARY KEY, value BYTEA NOT NULL);
    """,
    # 3: one pace per host for every replica together: the next free slot of each host's calls.
    """
    CREATE TABLE pacing (host TEXT PRIMARY KEY, next_slot DOUBLE PRECISION NOT NULL);
    """,
    # 4: the replicas that stand for their claims with a session lock of their own (see `_GONE`).
    """
    CREATE TABLE replicas (holder TEXT PRIMARY KEY, since DOUBLE PRECISION NOT NULL);
    """,
    # 5: one reading of each host's job list, made by one replica for all (jobs/listing.py).
    """
    CREATE TABLE listings (host TEXT PRIMARY KEY, read_at DOUBLE PRECISION NOT NULL, unfinished JSONB NOT NULL,
                           ended JSONB NOT NULL);
    """,
)
CHANNEL = "wan_r2v_changed"

log = logging.getLogger(__name__)
_NOW = "extract(epoch from clock_timestamp())"  # the database's clock, the one every replica shares
_SELECT = f"SELECT {', '.join(TASK_COLUMNS)} FROM tasks"
_SELECT_SEQUENCE = f"SELECT {', '.join(SEQUENCE_COLUMNS)} FROM sequences"
_SELECT_CHARACTER = f"SELECT {', '.join(CHARACTER_COLUMNS)} FROM characters"
# A replica holds the session advisory lock named after it on its listening connection for as long as it runs; the
# database ends a killed process's session (its socket closes), and the lock with it. So a claim whose holder is
# registered and whose lock is free is void at once, not only when its time runs out. (Session-level advisory
# locks: https://www.postgresql.org/docs/15/explicit-locking.html#ADVISORY-LOCKS.) A holder that never registered
# (its listener not yet connected) is judged by its claims' time alone.
_MARK = "hashtextextended('replica/' || {}, 0)"
_GONE = (f"(EXISTS (SELECT 1 FROM replicas r WHERE r.holder = l.holder) "
         f"AND pg_try_advisory_xact_lock({_MARK.format('l.holder')}))")
_COUNTS = "(status IN ('queued', 'running', 'succeeded') OR (phase = 'canceled' AND provider_task_id IS NOT NULL))"


class PostgresStore(Store):
    shared_across_hosts = True

    def __init__(self, url: str, *, max_connections: int = 10):
        import psycopg
        from psycopg_pool import ConnectionPool

        # One plain connection first, so that a database that does not answer, or refuses this user, says why at
        # once (the pool would only time out, after 30 s, with no reason).
        psycopg.connect(url, connect_timeout=10).close()
        self._url = url
        self._pool = ConnectionPool(url, min_size=1, max_size=max_connections, open=True, timeout=30,
                                    kwargs={"autocommit": True}, name="wan-r2v")
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        self._migrate()

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.join(timeout=5)
        self._pool.close()

    def listen(self, changed: Callable[[str | None], None], holder: str | None = None) -> None:
        """Call `changed(id)` for every task or sequence any replica changes, from a thread of its own on a connection
        of its own (outside the pool). Notifications sent while it reconnects are lost, so after every (re)connect it
        calls `changed(None)`: read again whatever you wait on. That connection also stands for `holder`: its
        claims are void as soon as the session ends (see `_GONE`); this returns once it does (or after 10 s)."""
        standing = threading.Event()

        def run() -> None:
            import psycopg

            while not self._stop.is_set():
                try:
                    with psycopg.connect(self._url, autocommit=True) as conn:
                        if holder is not None:
                            _stand_for(conn, holder)
                        standing.set()
                        conn.execute(f"LISTEN {CHANNEL}")
                        changed(None)
                        while not self._stop.is_set():
                            for note in conn.notifies(timeout=1.0):
                                changed(note.payload)
                except Exception:  # the database restarting, a network cut: connect again, a little later
                    log.warning("listening for changes failed; connecting again", exc_info=True)
                    self._stop.wait(1.0)

        self._listener = threading.Thread(target=run, name="wan-r2v-listen", daemon=True)
        self._listener.start()
        if not standing.wait(10.0):
            log.warning("the database did not answer within 10 s; claims are judged by their time until it does")

    def pace(self, host: str, interval: float) -> float | None:
        row = self._read(
            f"INSERT INTO pacing (host, next_slot) VALUES (%s, {_NOW} + %s) ON CONFLICT (host) DO UPDATE SET "
            f"next_slot = GREATEST(pacing.next_slot, {_NOW}) + %s RETURNING next_slot - %s - {_NOW}",
            (host, interval, interval, interval))
        return max(0.0, float(row[0][0]))

    def jobs_at_host(self, host: str) -> tuple[int, float] | None:
        row = self._read("SELECT count(*), min(submitted_at) FROM tasks WHERE provider = %s AND provider_task_id IS "
                         "NOT NULL AND phase <> ALL(%s)", (host, list(TASK_DONE)))[0]
        return (int(row[0]), float(row[1])) if row[0] and row[1] is not None else None

    def publish_listing(self, host: str, unfinished: Mapping[str, str], ended: Sequence[str]) -> None:
        from psycopg.types.json import Jsonb

        def work(db: Any) -> None:
            db.execute(f"INSERT INTO listings (host, read_at, unfinished, ended) VALUES (%s, {_NOW}, %s, %s) ON "
                       "CONFLICT (host) DO UPDATE SET read_at = EXCLUDED.read_at, unfinished = EXCLUDED.unfinished, "
                       "ended = EXCLUDED.ended", (host, Jsonb(dict(sorted(unfinished.items()))), Jsonb(list(ended))))
            db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"listing/{host}"))

        self._write(work)

    def read_listing(self, host: str) -> tuple[float, dict[str, str], list[str]] | None:
        rows = self._read(f"SELECT {_NOW} - read_at, unfinished, ended FROM listings WHERE host = %s", (host,))
        if not rows:
            return None
        age, unfinished, ended = rows[0]
        # A list of ids is a reading an earlier version kept (it did not say which jobs ran): each counts as queued.
        # (An earlier version reading this version's object takes its keys, the same ids.)
        unfinished = dict(unfinished) if isinstance(unfinished, dict) else dict.fromkeys(unfinished, "queued")
        return max(0.0, float(age)), unfinished, list(ended)

    def shared_secret(self, name: str, make: Callable[[], bytes]) -> bytes | None:
        def work(db: Any) -> bytes:
            db.execute("INSERT INTO kept_secrets (name, value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                       (name, make()))
            return bytes(db.execute("SELECT value FROM kept_secrets WHERE name = %s", (name,)).fetchone()[0])

        return self._write(work)

    def _migrate(self) -> None:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('wan-r2v/migrate', 0))")
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at "
                         "TIMESTAMPTZ NOT NULL DEFAULT now())")
            done = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
            for version, sql in enumerate(MIGRATIONS, start=1):
                if version > done:
                    conn.execute(sql)
                    conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))

    def _write(self, work: Callable[[Any], Any], *, lock: str | None = None, durable: bool = True) -> Any:
        """One transaction. `durable=False` does not wait for the database's WAL flush: a crash of the database
        may undo it, never corrupt anything, and a later durable commit flushes it too
        (https://www.postgresql.org/docs/current/wal-async-commit.html)."""
        with self._pool.connection() as conn, conn.transaction():
            if not durable:
                conn.execute("SET LOCAL synchronous_commit TO off")
            if lock is not None:  # one decision at a time for this key, across every replica
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock,))
            return work(conn)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

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

        def work(db: Any) -> bool:
            taken = db.execute("SELECT task_id FROM tasks WHERE provider = %s AND provider_task_id = %s",
                               (provider, provider_task_id)).fetchone()
            if taken is not None:
                return taken[0] == task_id and db.execute(sql, params).rowcount > 0
            return db.execute(sql + " AND provider_task_id IS NULL", params).rowcount > 0

        try:
            return self._write(work, lock=f"job/{provider}/{provider_task_id}")
        except _unique_violation():  # another replica adopted that job a moment before
            return False

    def get(self, task_id: str) -> TaskRecord | None:
        rows = self._read(f"{_SELECT} WHERE task_id = %s", (task_id,))
        return TaskRecord(*rows[0]) if rows else None

    def list(self, *, limit: int = 20, status: str | None = None, owner: str = "") -> tuple[list[TaskRecord], int]:
        where, params = "owner = %s", [owner]
        if status:
            where += " AND status = %s"
            params.append(status)
        with self._pool.connection() as conn:
            total = conn.execute(f"SELECT COUNT(*) FROM tasks WHERE {where}", params).fetchone()[0]
            rows = conn.execute(f"{_SELECT} WHERE {where} ORDER BY created_at DESC, n DESC LIMIT %s",
                                [*params, limit]).fetchall()
        return [TaskRecord(*r) for r in rows], int(total)

    def followed(self, provider: str, provider_task_ids: Sequence[str]) -> set[str]:
        if not provider_task_ids:
            return set()
        rows = self._read("SELECT provider_task_id FROM tasks WHERE provider = %s AND provider_task_id = ANY(%s)",
                          (provider, list(provider_task_ids)))
        return {r[0] for r in rows}

    def unfinished(self) -> list[TaskRecord]:
        rows = self._read(f"{_SELECT} WHERE phase <> ALL(%s) ORDER BY created_at, n", (list(TASK_DONE),))
        return [TaskRecord(*r) for r in rows]

    # -- money

    def admit(self, *, owner: str, check: Callable[[Spend], None], task: dict[str, Any] | None = None,
              duplicate_of: tuple[str, float] | None = None, sequence_id: str | None = None,
              shot: int | None = None, reserve: dict[int, float] | None = None,
              new_sequence: SequenceRecord | None = None, move: SequenceMove | None = None) -> TaskRecord | None:
        now = time.time()

        def work(db: Any) -> TaskRecord | None:
            if duplicate_of is not None:
                row = db.execute(
                    f"{_SELECT} WHERE fingerprint = %s AND owner = %s AND (status IN ('queued', 'running') OR "
                    "(status = 'succeeded' AND finished_at >= %s)) ORDER BY created_at DESC LIMIT 1",
                    (duplicate_of[0], owner, duplicate_of[1])).fetchone()
                if row is not None:
                    return TaskRecord(*row)
            released = 0.0  # the shot's reservation, used up by its take
            if sequence_id is not None and shot is not None and task is not None:
                row = db.execute("SELECT usd FROM reservations WHERE sequence_id = %s AND shot = %s",
                                 (sequence_id, shot)).fetchone()
                released = float(row[0]) if row else 0.0
            replaced = 0.0  # reservations that `reserve` replaces
            if sequence_id is not None and reserve:
                replaced = float(db.execute(
                    "SELECT COALESCE(SUM(usd), 0) FROM reservations WHERE sequence_id = %s AND shot = ANY(%s)",
                    (sequence_id, list(reserve))).fetchone()[0])
            day, whole = _spend(db, owner, now - 86400, sequence_id)
            freed = released + replaced
            check(Spend(day=day - freed, sequence=None if whole is None else whole - freed))
            if task is not None:
                _insert_task(db, task, now)
                if released:
                    db.execute("DELETE FROM reservations WHERE sequence_id = %s AND shot = %s", (sequence_id, shot))
            for index, usd in (reserve or {}).items():
                db.execute("INSERT INTO reservations (sequence_id, shot, owner, usd) VALUES (%s, %s, %s, %s) "
                           "ON CONFLICT (sequence_id, shot) DO UPDATE SET owner = EXCLUDED.owner, usd = EXCLUDED.usd",
                           (sequence_id, index, owner, usd))
            if new_sequence is not None:
                _insert_sequence(db, new_sequence)
            if move is not None and not _move_sequence(db, move):
                raise _Undo
            return None

        try:
            return self._write(work, lock=f"admit/{owner}")
        except _Undo:
            raise Conflict("the sequence changed while this was being decided") from None

    def spent(self, owner: str = "", sequence_id: str | None = None) -> Spend:
        with self._pool.connection() as conn:
            day, whole = _spend(conn, owner, time.time() - 86400, sequence_id)
        return Spend(day=day, sequence=whole)

    def free_work_since(self, owner: str, since: float, providers: Sequence[str]) -> int:
        with self._pool.connection() as conn:
            tasks = conn.execute("SELECT COUNT(*) FROM tasks WHERE owner = %s AND created_at >= %s AND "
                                 "provider = ANY(%s) AND sequence_id IS NULL", (owner, since, list(providers))
                                 ).fetchone()[0]
            stitches = conn.execute("SELECT COUNT(*) FROM sequences WHERE owner = %s AND created_at >= %s AND "
                                    "kind = 'stitch'", (owner, since)).fetchone()[0]
        return int(tasks) + int(stitches)

    def sequence_cost(self, sequence_id: str) -> tuple[float, float]:
        with self._pool.connection() as conn:
            return _sequence_cost(conn, sequence_id)

    # -- leases, timed by the database's clock

    def take_lease(self, task_id: str, holder: str, seconds: float, is_stale: Callable[[str], bool]) -> float:
        def work(db: Any) -> float:
            row = db.execute(f"SELECT holder, until - {_NOW}, holder <> %s AND {_GONE} FROM leases l "
                             "WHERE task_id = %s FOR UPDATE", (holder, task_id)).fetchone()
            if row and row[0] != holder and row[1] > 0 and not row[2] and not is_stale(row[0]):
                return float(row[1])
            db.execute(f"INSERT INTO leases (task_id, holder, until) VALUES (%s, %s, {_NOW} + %s) ON CONFLICT "
                       "(task_id) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until",
                       (task_id, holder, seconds))
            return 0.0

        return self._write(work, lock=f"lease/{task_id}", durable=False)  # a claim ends with its session anyway

    def renew_leases(self, holder: str, seconds: float) -> set[str]:
        return self._write(lambda db: {r[0] for r in db.execute(
            f"UPDATE leases SET until = {_NOW} + %s WHERE holder = %s RETURNING task_id", (seconds, holder))},
            durable=False)

    def unclaimed_tasks(self) -> list[str]:
        return [r[0] for r in self._read(
            f"SELECT t.task_id FROM tasks t LEFT JOIN leases l ON l.task_id = t.task_id WHERE t.phase <> ALL(%s) "
            f"AND (l.task_id IS NULL OR l.until <= {_NOW} OR {_GONE}) ORDER BY t.created_at, t.n", (list(TASK_DONE),))]

    def unclaimed_sequences(self) -> list[str]:
        return [r[0] for r in self._read(
            f"SELECT s.sequence_id FROM sequences s LEFT JOIN leases l ON l.task_id = s.sequence_id WHERE s.phase = "
            f"ANY(%s) AND (l.task_id IS NULL OR l.until <= {_NOW} OR {_GONE}) ORDER BY s.created_at, s.n",
            (list(SEQUENCE_LIVE),))]

    def holds_lease(self, task_id: str, holder: str) -> bool:
        return bool(self._read(f"SELECT 1 FROM leases WHERE task_id = %s AND holder = %s AND until > {_NOW}",
                               (task_id, holder)))

    def release_lease(self, task_id: str, holder: str) -> None:
        self._write(lambda db: db.execute("DELETE FROM leases WHERE task_id = %s AND holder = %s", (task_id, holder)),
                    durable=False)

    # -- sequences

    def insert_sequence(self, record: SequenceRecord) -> None:
        self._write(lambda db: _insert_sequence(db, record))

    def get_sequence(self, sequence_id: str) -> SequenceRecord | None:
        rows = self._read(f"{_SELECT_SEQUENCE} WHERE sequence_id = %s", (sequence_id,))
        return SequenceRecord(*rows[0]) if rows else None

    def newest_sequences(self, owner: str, limit: int, phases: Sequence[str] | None = None,
                         ) -> tuple[list[SequenceRecord], int]:
        where, params = "owner = %s", [owner]
        if phases:
            where += " AND phase = ANY(%s)"
            params.append(list(phases))
        with self._pool.connection() as conn:
            total = conn.execute(f"SELECT COUNT(*) FROM sequences WHERE {where}", params).fetchone()[0]
            rows = conn.execute(f"{_SELECT_SEQUENCE} WHERE {where} ORDER BY created_at DESC, n DESC LIMIT %s",
                                [*params, limit]).fetchall()
        return [SequenceRecord(*r) for r in rows], int(total)

    def unfinished_sequences(self) -> list[SequenceRecord]:
        rows = self._read(f"{_SELECT_SEQUENCE} WHERE phase = ANY(%s) ORDER BY created_at, n", (list(SEQUENCE_LIVE),))
        return [SequenceRecord(*r) for r in rows]

    def move_sequence(self, move: SequenceMove) -> bool:
        return self._write(lambda db: _move_sequence(db, move))

    # -- characters

    def get_character(self, owner: str, key: str) -> Character | None:
        rows = self._read(f"{_SELECT_CHARACTER} WHERE owner = %s AND key = %s", (owner, key))
        return Character(*rows[0]) if rows else None

    def list_characters(self, owner: str) -> list[Character]:
        return [Character(*r) for r in self._read(f"{_SELECT_CHARACTER} WHERE owner = %s ORDER BY key", (owner,))]

    def cast_room(self, owner: str, key: str) -> CastRoom:
        with self._pool.connection() as conn:
            return _room(conn, owner, key)

    def save_character(self, character: Character,
                       check: Callable[[Character | None, CastRoom], None]) -> Character | None:
        def work(db: Any) -> Character | None:
            row = db.execute(f"{_SELECT_CHARACTER} WHERE owner = %s AND key = %s",
                             (character.owner, character.key)).fetchone()
            old = Character(*row) if row else None
            check(old, _room(db, character.owner, character.key))
            updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in CHARACTER_COLUMNS if c not in ("owner", "key"))
            db.execute(f"INSERT INTO characters ({', '.join(CHARACTER_COLUMNS)}) VALUES "
                       f"({', '.join('%s' for _ in CHARACTER_COLUMNS)}) ON CONFLICT (owner, key) DO UPDATE SET "
                       f"{updates}", [getattr(character, c) for c in CHARACTER_COLUMNS])
            return old

        return self._write(work, lock="cast")  # the room is counted over every caller: one save at a time

    def delete_character(self, owner: str, key: str) -> Character | None:
        def work(db: Any) -> Character | None:
            row = db.execute(f"DELETE FROM characters WHERE owner = %s AND key = %s RETURNING "
                             f"{', '.join(CHARACTER_COLUMNS)}", (owner, key)).fetchone()
            return Character(*row) if row else None

        return self._write(work)

    def characters_used(self, owner: str, keys: Sequence[str], at: float) -> None:
        self._write(lambda db: db.execute(
            "UPDATE characters SET last_used_at = %s, uses = uses + 1 WHERE owner = %s AND key = ANY(%s)",
            (at, owner, list(keys))))

    def file_in_use(self, name: str) -> bool:
        return bool(self._read("SELECT 1 FROM characters WHERE media = %s OR voice = %s OR thumbnail = %s LIMIT 1",
                               (name, name, name)))


class _Undo(Exception):
    pass


def _unique_violation() -> type[Exception]:
    from psycopg.errors import UniqueViolation

    return UniqueViolation


def _json(column: str, value: Any, json_columns: Sequence[str]) -> Any:
    if column in json_columns and value is not None:
        from psycopg.types.json import Jsonb

        return Jsonb(value)
    return value


def _insert_task(db: Any, values: dict[str, Any], now: float) -> None:
    row = {k: _json(k, values.get(k), TASK_JSON) for k in TASK_COLUMNS if k in values}
    row.setdefault("created_at", now)
    row.setdefault("updated_at", now)
    try:
        with db.transaction():  # a savepoint: the refusal leaves the admission's transaction usable
            db.execute(f"INSERT INTO tasks ({', '.join(row)}) VALUES ({', '.join('%s' for _ in row)})",
                       tuple(row.values()))
    except _unique_violation():
        raise ValueError(f"task {row.get('task_id')} or its host job is already recorded") from None


def _cas(task_id: str, from_phases: Sequence[str], phase: str, status: str,
         values: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    values = {**values, "phase": phase, "status": status, "updated_at": time.time()}
    sets = ", ".join(f"{k} = %s" for k in values)
    params = (*(_json(k, v, TASK_JSON) for k, v in values.items()), task_id, list(from_phases))
    return f"UPDATE tasks SET {sets} WHERE task_id = %s AND phase = ANY(%s)", params


def _insert_sequence(db: Any, record: SequenceRecord) -> None:
    values = [_json(c, getattr(record, c), SEQUENCE_JSON) for c in SEQUENCE_COLUMNS]
    try:
        with db.transaction():
            db.execute(f"INSERT INTO sequences ({', '.join(SEQUENCE_COLUMNS)}) VALUES "
                       f"({', '.join('%s' for _ in SEQUENCE_COLUMNS)})", values)
    except _unique_violation():
        raise ValueError(f"sequence {record.sequence_id} is already recorded") from None


def _move_sequence(db: Any, move: SequenceMove) -> bool:
    sets = ", ".join(f"{k} = %s" for k in move.values)
    params = [*(_json(k, v, SEQUENCE_JSON) for k, v in move.values.items()), move.sequence_id, move.version]
    return db.execute(f"UPDATE sequences SET {sets} WHERE sequence_id = %s AND version = %s", params).rowcount > 0


def _spend(db: Any, owner: str, since: float, sequence_id: str | None) -> tuple[float, float | None]:
    tasks = db.execute(f"SELECT COALESCE(SUM(cost_estimate), 0) FROM tasks WHERE owner = %s AND created_at >= %s "
                       f"AND {_COUNTS}", (owner, since)).fetchone()[0]
    # Planned shots count while their sequence runs; the sequence being decided counts whatever its phase (a redo
    # brings a failed one back to life).
    planned = db.execute(
        "SELECT COALESCE(SUM(r.usd), 0) FROM reservations r JOIN sequences s ON s.sequence_id = r.sequence_id "
        "WHERE r.owner = %s AND (s.phase = ANY(%s) OR s.sequence_id = %s)",
        (owner, list(SEQUENCE_LIVE), sequence_id)).fetchone()[0]
    day = float(tasks) + float(planned)
    if sequence_id is None:
        return day, None
    made, planned = _sequence_cost(db, sequence_id)
    return day, made + planned


def _sequence_cost(db: Any, sequence_id: str) -> tuple[float, float]:
    made = db.execute(f"SELECT COALESCE(SUM(cost_estimate), 0) FROM tasks WHERE sequence_id = %s AND {_COUNTS}",
                      (sequence_id,)).fetchone()[0]
    planned = db.execute("SELECT COALESCE(SUM(usd), 0) FROM reservations WHERE sequence_id = %s",
                         (sequence_id,)).fetchone()[0]
    return round(float(made), 4), round(float(planned), 4)


def _room(db: Any, owner: str, key: str) -> CastRoom:
    row = db.execute("SELECT (SELECT COUNT(*) FROM characters WHERE owner = %s), "
                     "(SELECT COALESCE(SUM(size_bytes), 0) FROM characters WHERE owner = %s AND key <> %s), "
                     "(SELECT COALESCE(SUM(size_bytes), 0) FROM characters)", (owner, owner, key)).fetchone()
    return CastRoom(count=int(row[0]), mine=int(row[1]), everyone=int(row[2]))


def _stand_for(conn: Any, holder: str) -> None:
    """Hold `holder`'s mark on this session and register it; forget replicas that are gone and hold nothing."""
    conn.execute(f"SELECT pg_advisory_lock({_MARK.format('%s')})", (holder,))
    conn.execute(f"INSERT INTO replicas (holder, since) VALUES (%s, {_NOW}) ON CONFLICT (holder) DO NOTHING", (holder,))
    conn.execute("DELETE FROM replicas l WHERE holder <> %s AND NOT EXISTS (SELECT 1 FROM leases k WHERE k.holder = "
                 f"l.holder) AND pg_try_advisory_xact_lock({_MARK.format('l.holder')})", (holder,))
