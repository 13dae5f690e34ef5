"""The PostgreSQL store as replicas share it: several stores on one database (each a replica's pool) decide money
together exactly, leases run on the database's clock, migrations apply once, and a server given
WAN_R2V_DATABASE_URL keeps everything there and nothing in SQLite."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from conftest import DASHSCOPE_KEY, TIME_SCALE, call, finish, text
from mcp import Client
from pydantic import SecretStr

from wan_r2v_mcp.config import Settings
from wan_r2v_mcp.errors import InputErrors
from wan_r2v_mcp.server import build_server
from wan_r2v_mcp.store import Spend
from wan_r2v_mcp.store.postgres import MIGRATIONS, PostgresStore

pytestmark = pytest.mark.postgres


def _task(task_id: str, owner: str, fingerprint: str, cost: float) -> dict:
    return {"task_id": task_id, "provider": "dashscope", "status": "queued", "stage": "queued", "phase": "queued",
            "request": {"prompt": "Image 1 waves"}, "refs": [], "owner": owner, "fingerprint": fingerprint,
            "cost_estimate": cost}


def test_three_replicas_never_pass_the_duplicate_guard_or_a_cap_together(pg_url):
    replicas = [PostgresStore(pg_url, max_connections=4) for _ in range(3)]
    cap = 5.0
    made: list[str] = []
    refused: list[str] = []
    earlier_ones: list[str] = []
    start = threading.Barrier(30)

    def attempt(i: int) -> None:
        store = replicas[i % 3]
        start.wait()

        def check(spend: Spend) -> None:
            if spend.day + 1.0 > cap + 1e-9:
                raise InputErrors([])

        try:
            # Ten callers' worth of identical requests (same fingerprint) and twenty distinct ones, all at once.
            fingerprint = "same" if i < 10 else f"fp{i}"
            earlier = store.admit(owner="ann", check=check, task=_task(f"r2v_{i}", "ann", fingerprint, 1.0),
                                  duplicate_of=(fingerprint, 0.0))
            if earlier is None:
                made.append(f"r2v_{i}")
            else:
                earlier_ones.append(earlier.task_id)
        except InputErrors:
            refused.append(f"r2v_{i}")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        tasks, total = replicas[0].list(limit=100, owner="ann")
        assert total == len(made) == 5 and replicas[1].spent("ann").day == cap  # exactly the cap, never past
        same = [t.task_id for t in tasks if t.fingerprint == "same"]
        assert len(same) <= 1 and set(earlier_ones) <= set(same)  # one task for the identical requests
        assert len(made) + len(refused) + len(earlier_ones) == 30
    finally:
        for store in replicas:
            store.close()


def test_a_lease_runs_on_the_databases_clock_and_migrations_apply_once(pg_url):
    first, second = PostgresStore(pg_url), PostgresStore(pg_url)  # the second found the schema made
    try:
        assert first.take_lease("r2v_1", "replica-a", 30, lambda holder: False) == 0
        held = second.take_lease("r2v_1", "replica-b", 30, lambda holder: False)
        assert 29 < held <= 30 and first.holds_lease("r2v_1", "replica-a")
        assert first.renew_leases("replica-a", 0.001) == {"r2v_1"}
        first.take_lease("r2v_2", "replica-a", -1, lambda holder: False)  # already over
        assert second.take_lease("r2v_2", "replica-b", 30, lambda holder: False) == 0  # taken over at its end
        with first._pool.connection() as conn:  # noqa: SLF001 - the migration record itself
            assert conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall() == [
                (v,) for v in range(1, len(MIGRATIONS) + 1)]
    finally:
        first.close()
        second.close()


def test_a_kept_listing_says_which_jobs_run_and_an_earlier_versions_list_still_reads(pg_url):
    first, second = PostgresStore(pg_url), PostgresStore(pg_url)
    try:
        first.publish_listing("dashscope", {"job-b": "queued", "job-a": "running"}, ["job-c"])
        age, unfinished, ended = second.read_listing("dashscope")
        assert 0 <= age < 5 and unfinished == {"job-a": "running", "job-b": "queued"} and ended == ["job-c"]
        with first._pool.connection() as conn:  # noqa: SLF001 - the row as an earlier version kept it: ids alone
            conn.execute("UPDATE listings SET unfinished = '[\"job-a\", \"job-b\"]'::jsonb WHERE host = 'dashscope'")
        assert second.read_listing("dashscope")[1:] == ({"job-a": "queued", "job-b": "queued"}, ["job-c"])
        assert second.read_listing("fal") is None
    finally:
        first.close()
        second.close()


# A replica that stands for its claims, takes one, says so, and waits to be killed.
_REPLICA = textwrap.dedent("""
    import sys, threading
    from wan_r2v_mcp.store.postgres import PostgresStore
    store = PostgresStore(sys.argv[1])
    store.listen(lambda key: None, "replica-killed")
    assert store.take_lease("r2v_killed", "replica-killed", 60, lambda holder: False) == 0
    print("holding", flush=True)
    threading.Event().wait()
""")


def test_a_killed_replicas_claims_are_void_at_once_and_a_live_ones_are_not(pg_url):
    live, other = PostgresStore(pg_url), PostgresStore(pg_url)
    killed = None
    try:
        for task_id in ("r2v_live", "r2v_killed", "r2v_free", "r2v_old"):
            other.insert(**_task(task_id, "ann", task_id, 0.5))
        other.transition("r2v_old", ["queued"], "succeeded", "succeeded", {})  # finished: nobody's to take up
        live.listen(lambda key: None, "replica-live")
        assert live.take_lease("r2v_live", "replica-live", 60, lambda holder: False) == 0
        assert other.take_lease("r2v_unmarked", "replica-unmarked", 60, lambda holder: False) == 0  # never stood
        killed = subprocess.Popen([sys.executable, "-c", _REPLICA, pg_url], stdout=subprocess.PIPE, text=True)
        assert killed.stdout.readline() == "holding\n"
        assert other.unclaimed_tasks() == ["r2v_free"]  # both claims held, the finished task left out
        assert other.take_lease("r2v_killed", "replica-other", 60, lambda holder: False) > 0  # held by the living
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        deadline = time.monotonic() + 10  # the database ends the session once it reads the closed socket
        while "r2v_killed" not in (unclaimed := other.unclaimed_tasks()):
            assert time.monotonic() < deadline, unclaimed
            time.sleep(0.01)  # reading the rows again, not waiting on a guess
        assert unclaimed == ["r2v_killed", "r2v_free"]  # long before its 60 s claim would have run out
        assert other.take_lease("r2v_killed", "replica-other", 60, lambda holder: False) == 0
        assert other.take_lease("r2v_live", "replica-other", 60, lambda holder: False) > 0  # alive: held
        assert other.take_lease("r2v_unmarked", "replica-other", 60, lambda holder: False) > 0  # judged by its time
        with live._pool.connection() as conn:  # noqa: SLF001 - the registry itself
            assert {r[0] for r in conn.execute("SELECT holder FROM replicas")} == {"replica-live", "replica-killed"}
        newcomer = PostgresStore(pg_url)
        try:
            newcomer.listen(lambda key: None, "replica-new")  # standing up, it forgets the dead that hold nothing
            with live._pool.connection() as conn:  # noqa: SLF001
                assert {r[0] for r in conn.execute("SELECT holder FROM replicas")} == {"replica-live", "replica-new"}
        finally:
            newcomer.close()
    finally:
        if killed is not None and killed.poll() is None:
            killed.kill()
        live.close()
        other.close()


@pytest.mark.anyio
async def test_a_server_on_a_database_url_keeps_its_tasks_there(settings, pg_url):
    shared = settings.model_copy(update={"database_url": SecretStr(pg_url)})
    async with Client(build_server(shared)) as client:
        r = await call(client, "generate_t2v", {"prompt": "A lighthouse", "duration": 2, "resolution": "720p",
                                                "wait_seconds": 30})
    view = r["structuredContent"]
    assert view["status"] == "succeeded", text(r)
    store = PostgresStore(pg_url)
    try:
        row = store.get(view["task_id"])
        assert (row.model, row.status, row.local_path) == ("wan2.7-t2v", "succeeded", view["local_path"])
    finally:
        store.close()
    assert not settings.data.ledger.exists()  # nothing went to SQLite


@pytest.mark.anyio
async def test_no_replica_ever_sees_a_new_task_unclaimed(settings, pg_url):
    """A new task is claimed before its row is written: another replica's sweep, reading the instant the row
    appears, never finds it unclaimed (it would take it up as a task whose submitter stopped, and end it unsent)."""
    other = PostgresStore(pg_url)
    seen: dict[str, bool] = {}

    def changed(key: str | None) -> None:  # on the listener's thread, as soon as the insert is committed
        if key and key.startswith("r2v_") and key not in seen:
            seen[key] = key in other.unclaimed_tasks()

    try:
        other.listen(changed)
        shared = settings.model_copy(update={"database_url": SecretStr(pg_url)})
        async with Client(build_server(shared)) as client:
            made = [await call(client, "generate_t2v", {"prompt": f"A lighthouse {n}", "duration": 2,
                                                         "resolution": "720p", "wait_seconds": 0})
                    for n in range(3)]
            done = [await finish(client, r["structuredContent"]["task_id"]) for r in made]
    finally:
        other.close()
    assert [r["structuredContent"]["status"] for r in done] == ["succeeded"] * 3, [text(r) for r in done]
    assert seen == {r["structuredContent"]["task_id"]: False for r in made}


def test_a_change_made_through_one_replica_is_heard_by_another(pg_url):
    first, second = PostgresStore(pg_url), PostgresStore(pg_url)
    heard: list[str | None] = []
    got = threading.Event()
    listening = threading.Event()

    def changed(key: str | None) -> None:
        heard.append(key)
        (listening if key is None else got).set()

    try:
        second.listen(changed)
        assert listening.wait(10)  # connected: it says so first, so a waiter reads its row again
        first.insert(**_task("r2v_heard", "ann", "fp", 0.5))
        assert got.wait(10)
        assert heard[0] is None and "r2v_heard" in heard[1:]
        assert first.shared_secret("url", lambda: b"first") == second.shared_secret("url", lambda: b"second") \
            == b"first"  # one signing key for every replica
    finally:
        first.close()
        second.close()


@pytest.mark.anyio
async def test_a_waiter_wakes_on_another_replicas_write_and_a_held_task_is_left_to_its_holder(settings, pg_url):
    import anyio

    from wan_r2v_mcp.jobs.worker import Worker

    other = PostgresStore(pg_url)
    mine = PostgresStore(pg_url)
    try:
        other.insert(**_task("r2v_far", "ann", "fp", 0.5))
        assert other.take_lease("r2v_far", "replica-a", 60, lambda holder: False) == 0
        slow = settings.model_copy(update={"progress_interval_seconds": 3600.0})  # no re-read would come in time
        async with anyio.create_task_group() as tg:
            worker = Worker(slow, mine, tg)
            connected = worker.signals.changed("r2v_far")
            worker.start()
            with anyio.fail_after(10):
                await connected.wait()  # the listener is in place (it wakes every waiter once it is)
                assert await worker.held_elsewhere("r2v_far") is True  # at once: left to replica-a
                woken = worker.signals.changed("r2v_far")
                other.transition("r2v_far", ["queued"], "running", "running", {"stage": "rendering"})
                await woken.wait()  # woken by the database, not by a re-read
            tg.cancel_scope.cancel()
    finally:
        other.close()
        mine.close()


@pytest.mark.long
@pytest.mark.anyio
async def test_two_replicas_read_the_hosts_job_list_once_for_both(dirs, result_videos, pg_url):
    """One replica at a time reads DashScope's job list, for every replica's jobs; the other wakes on the reading it
    keeps in the database. Each job is polled once, when the reading shows it ended."""
    import itertools

    from emulators.dashscope import DashScopeEmulator

    class TwoReplicas(DashScopeEmulator):  # each replica's own key, so every call says which replica made it
        def handle(self, req):
            auth = req.headers.get("authorization", "")
            if auth.startswith(f"Bearer {DASHSCOPE_KEY}-"):
                req.headers["x-replica"] = auth.rsplit("-", 1)[1]
                req.headers["authorization"] = f"Bearer {DASHSCOPE_KEY}"
            return super().handle(req)

    with TwoReplicas(DASHSCOPE_KEY, result_videos) as host:
        host.job_timing = lambda: (0.2, 5.0)  # long enough that a job nobody vouched for is polled several times
        made = {}
        for name in ("a", "b"):
            made[name] = Settings(data_dir=dirs["data"], output_dir=dirs["out"], progress_interval_seconds=1.0,
                                  time_scale=TIME_SCALE, database_url=SecretStr(pg_url),
                                  hosts={"dashscope": {"api_key": f"{DASHSCOPE_KEY}-{name}",
                                                       "base_url": host.base_url}})
        async with Client(build_server(made["a"])) as a, Client(build_server(made["b"])) as b:
            started = {}
            for name, client in (("a", a), ("b", b)):
                r = await call(client, "generate_t2v", {"prompt": f"A lighthouse, seen by {name}", "duration": 2,
                                                        "resolution": "720p", "provider": "dashscope",
                                                        "wait_seconds": 0})
                started[name] = r["structuredContent"]["task_id"]
            done = {name: await finish(client, started[name]) for name, client in (("a", a), ("b", b))}
    for r in done.values():
        assert r["structuredContent"]["status"] == "succeeded", text(r)
    assert sorted(p.name for p in dirs["out"].glob("*.mp4")) == sorted(f"{t}.mp4" for t in started.values())
    assert [t.polls for t in host.tasks.values()] == [1, 1]  # woken by a reading, never polled while it ran
    readers = [r.headers.get("x-replica") for r in host.received if host.name_of(r) == "list"]
    assert readers and len([k for k, _ in itertools.groupby(readers)]) <= 2, readers  # one, then maybe the other


def test_two_replicas_share_one_pace_per_host(pg_url):
    first, second = PostgresStore(pg_url), PostgresStore(pg_url)
    try:
        waits = [(first if i % 2 else second).pace("dashscope", 1.0) for i in range(6)]  # both at once
        assert all(waits[i] >= i - 0.5 for i in range(6)), waits  # one slot a second, whoever asks
        assert first.pace("replicate", 1.0) == 0.0  # each host its own pace
    finally:
        first.close()
        second.close()
