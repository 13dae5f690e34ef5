"""The Store contract, run against every store: what the jobs, the cast and the money rely on, row by row."""

from __future__ import annotations

import threading
import time

import pytest

from wan_r2v_mcp.store import Conflict, SequenceRecord, Spend, Store
from wan_r2v_mcp.store.memory import MemoryStore
from wan_r2v_mcp.store.records import Character, SequenceMove
from wan_r2v_mcp.store.sqlite import SQLiteStore


@pytest.fixture(params=["sqlite", "memory", "postgres"])
def store(request, tmp_path) -> Store:
    if request.param == "postgres":
        from wan_r2v_mcp.store.postgres import PostgresStore

        made: Store = PostgresStore(request.getfixturevalue("pg_url"))
    else:
        made = SQLiteStore(tmp_path / "tasks.sqlite3") if request.param == "sqlite" else MemoryStore()
    yield made
    made.close()


def task(task_id: str, **values) -> dict:
    return {"task_id": task_id, "provider": "dashscope", "status": "queued", "stage": "queued", "phase": "pending",
            "request": {"prompt": "Image 1 waves", "seed": 7}, "refs": [{"label": "Image 1"}], "owner": "ann",
            **values}


def sequence(sequence_id: str, owner: str = "ann", phase: str = "running", kind: str = "sequence",
             version: int = 0) -> SequenceRecord:
    now = time.time()
    return SequenceRecord(sequence_id=sequence_id, owner=owner, kind=kind, created_at=now, updated_at=now,
                          finished_at=None, phase=phase, stage="making shot 1", provider="dashscope",
                          spec={"shots": [{"prompt": "a"}, {"prompt": "b"}]}, takes=[["r2v_a"], []],
                          cost_estimate=2.0, billable_seconds=None, local_path=None, poster_path=None,
                          sidecar_path=None, output=None, error=None, version=version)


def character(owner: str, key: str, size: int = 100, media: str = "m.png", voice: str | None = None) -> Character:
    return Character(owner=owner, key=key, name=key.title(), description="", kind="image", format="png",
                     media=media, size_bytes=size, width=640, height=480, seconds=None, voice=voice,
                     voice_format=None, voice_seconds=None, thumbnail=None, created_at=1.0, last_used_at=None, uses=0)


def nothing(spend: Spend) -> None:
    pass


def test_a_task_reads_back_as_written(store):
    store.insert(**task("r2v_1", payload={"input": {"prompt": "维持"}}, cost_estimate=0.5, candidates=["j1"]))
    got = store.get("r2v_1")
    assert (got.request, got.refs, got.payload, got.candidates) == (
        {"prompt": "Image 1 waves", "seed": 7}, [{"label": "Image 1"}], {"input": {"prompt": "维持"}}, ["j1"])
    assert (got.model, got.creates, got.error, got.sequence_id, got.cost_estimate) == ("wan2.7-r2v", 0, None, None, 0.5)
    assert got.created_at == got.updated_at and abs(got.created_at - time.time()) < 60
    assert store.get("r2v_none") is None
    with pytest.raises(ValueError):
        store.insert(**task("r2v_1"))


def test_a_phase_moves_only_from_where_it_was(store):
    store.insert(**task("r2v_1"))
    assert store.transition("r2v_1", ["pending"], "submitting", "queued", {"stage": "sending", "error": None})
    assert not store.transition("r2v_1", ["pending"], "failed", "failed", {"error": {"code": "x"}})
    assert store.transition("r2v_1", ["submitting"], "failed", "failed", {"error": {"code": "x"}})
    got = store.get("r2v_1")
    assert (got.phase, got.status, got.stage, got.error) == ("failed", "failed", "sending", {"code": "x"})
    assert not store.transition("r2v_none", ["pending"], "failed", "failed", {})


def test_a_host_job_is_followed_by_one_task(store):
    for t in ("a", "b"):
        store.insert(**task(t, phase="submitting"))
    store.insert(**task("c", phase="submitting", provider="replicate"))
    assert store.adopt("a", "dashscope", "job1", ["submitting"], "running", "running", {"stage": "running"})
    assert not store.adopt("b", "dashscope", "job1", ["submitting"], "running", "running", {})  # another follows it
    assert store.adopt("a", "dashscope", "job1", ["running"], "running", "running", {"progress": 0.5})  # again: fine
    assert not store.adopt("a", "dashscope", "job2", ["running"], "running", "running", {})  # a task follows one job
    assert store.adopt("c", "replicate", "job1", ["submitting"], "running", "running", {})  # another host's job1
    assert store.followed("dashscope", ["job1", "job2"]) == {"job1"} and store.followed("dashscope", []) == set()
    assert store.get("a").progress == 0.5 and store.get("c").provider_task_id == "job1"
    assert store.get("b").provider_task_id is None


def test_lists_are_the_callers_newest_first(store):
    for i in range(5):
        store.insert(**task(f"r2v_{i}", created_at=100.0 + (i // 2), status="failed" if i == 3 else "queued"))
    store.insert(**task("r2v_ben", owner="ben"))
    rows, total = store.list(limit=3, owner="ann")
    assert [r.task_id for r in rows] == ["r2v_4", "r2v_3", "r2v_2"] and total == 5
    rows, total = store.list(limit=10, status="failed", owner="ann")
    assert [r.task_id for r in rows] == ["r2v_3"] and total == 1
    store.transition("r2v_0", ["pending"], "succeeded", "succeeded", {})
    assert [r.task_id for r in store.unfinished()] == ["r2v_1", "r2v_2", "r2v_3", "r2v_4", "r2v_ben"]


def test_the_duplicate_guard_returns_the_earlier_task(store):
    assert store.admit(owner="ann", check=nothing, task=task("a", fingerprint="f1"), duplicate_of=("f1", 0)) is None
    again = store.admit(owner="ann", check=nothing, task=task("b", fingerprint="f1"), duplicate_of=("f1", 0))
    assert again.task_id == "a" and store.get("b") is None
    assert store.admit(owner="ben", check=nothing, task=task("c", owner="ben", fingerprint="f1"),
                       duplicate_of=("f1", 0)) is None  # another caller's request is not a duplicate
    store.transition("a", ["pending"], "succeeded", "succeeded", {"finished_at": 50.0})
    assert store.admit(owner="ann", check=nothing, task=task("d", fingerprint="f1"), duplicate_of=("f1", 40)).task_id \
        == "a"
    assert store.admit(owner="ann", check=nothing, task=task("e", fingerprint="f1"), duplicate_of=("f1", 60)) is None


def test_the_caps_see_what_may_have_reached_a_host(store):
    store.insert(**task("sent", cost_estimate=1.0))
    store.insert(**task("failed_early", cost_estimate=2.0, status="failed", phase="failed"))
    store.insert(**task("canceled_at_host", cost_estimate=4.0, status="canceled", phase="canceled",
                        provider_task_id="j9"))
    store.insert(**task("yesterday", cost_estimate=8.0, created_at=time.time() - 90000))
    store.insert(**task("bens", cost_estimate=16.0, owner="ben"))
    seen: list[Spend] = []
    store.admit(owner="ann", check=seen.append)
    assert seen == [Spend(day=5.0)] and store.spent("ann") == Spend(day=5.0)

    def refuse(spend: Spend) -> None:
        raise RuntimeError("over the cap")

    with pytest.raises(RuntimeError):
        store.admit(owner="ann", check=refuse, task=task("refused", cost_estimate=1.0))
    assert store.get("refused") is None


def test_a_sequence_is_admitted_with_its_reservations(store):
    record = sequence("seq_1")
    store.admit(owner="ann", check=nothing, sequence_id="seq_1", new_sequence=record, reserve={0: 1.0, 1: 1.5})
    assert store.get_sequence("seq_1") == record
    assert store.spent("ann", "seq_1") == Spend(day=2.5, sequence=2.5) and store.sequence_cost("seq_1") == (0.0, 2.5)
    seen: list[Spend] = []  # a take of shot 0 uses up that shot's reservation: the check sees the rest
    store.admit(owner="ann", check=seen.append, sequence_id="seq_1", shot=0,
                task=task("r2v_a", cost_estimate=1.2, sequence_id="seq_1"))
    assert seen == [Spend(day=1.5, sequence=1.5)] and store.sequence_cost("seq_1") == (1.2, 1.5)
    assert store.free_work_since("ann", 0, ["dashscope"]) == 0  # a take is not free work, whatever its host
    store.move_sequence(SequenceMove("seq_1", 0, {"phase": "failed", "version": 1}))
    assert store.spent("ann") == Spend(day=1.2)  # a stopped sequence's plan no longer counts against the day


def test_a_move_that_lost_the_race_undoes_the_admission(store):
    store.insert_sequence(sequence("seq_1", version=3))
    with pytest.raises(Conflict):
        store.admit(owner="ann", check=nothing, sequence_id="seq_1", reserve={1: 9.0}, task=task("r2v_x"),
                    move=SequenceMove("seq_1", 2, {"stage": "lost", "version": 3}))
    assert store.get("r2v_x") is None and store.sequence_cost("seq_1") == (0.0, 0.0)
    assert store.get_sequence("seq_1").stage == "making shot 1"
    store.admit(owner="ann", check=nothing, sequence_id="seq_1", reserve={1: 9.0},
                move=SequenceMove("seq_1", 3, {"stage": "won", "takes": [["r2v_a"], ["r2v_b"]], "version": 4}))
    got = store.get_sequence("seq_1")
    assert (got.stage, got.takes, got.version) == ("won", [["r2v_a"], ["r2v_b"]], 4)
    assert not store.move_sequence(SequenceMove("seq_1", 3, {"stage": "stale"}))


def test_sequences_are_listed_by_caller_and_phase(store):
    store.insert_sequence(sequence("seq_old", phase="succeeded"))
    store.insert_sequence(sequence("seq_run"))
    store.insert_sequence(sequence("seq_join", phase="joining", kind="stitch"))
    store.insert_sequence(sequence("seq_ben", owner="ben"))
    rows, total = store.newest_sequences("ann", 2)
    assert [r.sequence_id for r in rows] == ["seq_join", "seq_run"] and total == 3
    rows, total = store.newest_sequences("ann", 10, ("running", "joining"))
    assert {r.sequence_id for r in rows} == {"seq_run", "seq_join"} and total == 2
    assert {r.sequence_id for r in store.unfinished_sequences()} == {"seq_run", "seq_join", "seq_ben"}
    assert store.free_work_since("ann", 0, ["preview"]) == 1  # the stitch
    with pytest.raises(ValueError):
        store.insert_sequence(sequence("seq_run"))


def test_free_work_counts_a_callers_local_tasks(store):
    store.insert(**task("p1", provider="preview"))
    store.insert(**task("p2", provider="preview", created_at=10.0))
    store.insert(**task("d1"))
    assert store.free_work_since("ann", 100.0, ["preview"]) == 1
    assert store.free_work_since("ann", 0, ["preview"]) == 2 and store.free_work_since("ann", 0, []) == 0


def test_a_lease_has_one_holder_until_it_lapses(store):
    assert store.take_lease("r2v_1", "me", 30, lambda holder: False) == 0
    assert 29 < store.take_lease("r2v_1", "you", 30, lambda holder: False) <= 30
    assert store.holds_lease("r2v_1", "me") and not store.holds_lease("r2v_1", "you")
    assert store.take_lease("r2v_1", "you", 30, lambda holder: holder == "me") == 0  # its holder died
    assert store.take_lease("r2v_2", "you", -1, lambda holder: False) == 0
    assert not store.holds_lease("r2v_2", "you")  # lapsed
    assert store.renew_leases("you", 30) == {"r2v_1", "r2v_2"} and store.holds_lease("r2v_2", "you")
    store.release_lease("r2v_1", "me")  # not mine any more: nothing happens
    assert store.holds_lease("r2v_1", "you")
    store.release_lease("r2v_1", "you")
    assert store.take_lease("r2v_1", "me", 30, lambda holder: False) == 0


KILLED_WRITER = """
import os, signal, sys
from wan_r2v_mcp.store.{module} import {cls}
store = {cls}({where!r})
store.insert(task_id="r2v_k", provider="dashscope", status="queued", stage="recorded", phase="pending",
             request={{}}, refs=[], owner="ann")
assert store.take_lease("r2v_k", "writer", 30, lambda holder: False) == 0
assert store.transition("r2v_k", ["pending"], "pending", "queued", {{"stage": "waiting its turn"}}, durable=False)
print("written", flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no close, no exit handlers: the process just ends
"""


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_change_committed_without_waiting_for_the_disk_is_seen_at_once_and_outlives_a_killed_writer(
        kind, tmp_path, request):
    import subprocess
    import sys

    if kind == "postgres":
        where, module, cls = request.getfixturevalue("pg_url"), "postgres", "PostgresStore"
    else:
        where, module, cls = str(tmp_path / "tasks.sqlite3"), "sqlite", "SQLiteStore"
    run = subprocess.run([sys.executable, "-c", KILLED_WRITER.format(module=module, cls=cls, where=where)],
                         capture_output=True, text=True, timeout=60)
    assert run.stdout == "written\n" and run.returncode == -9, run.stderr[-2000:]
    if kind == "postgres":
        from wan_r2v_mcp.store.postgres import PostgresStore as Reader
    else:
        Reader = SQLiteStore
    reader = Reader(where)
    try:
        got = reader.get("r2v_k")
        assert (got.phase, got.status, got.stage) == ("pending", "queued", "waiting its turn")
        assert reader.holds_lease("r2v_k", "writer")  # the claim's row outlived its writer too
    finally:
        reader.close()


def test_characters_fit_or_are_refused_in_one_step(store):
    def room_for(limit: int):
        def check(old, room):
            if old is None and room.count >= limit:
                raise RuntimeError("full")
        return check

    assert store.save_character(character("ann", "alice", 100), room_for(2)) is None
    assert store.save_character(character("ann", "bob", 50, media="b.png", voice="v.wav"), room_for(2)) is None
    with pytest.raises(RuntimeError):
        store.save_character(character("ann", "carl", 10, media="c.png"), room_for(2))
    assert store.get_character("ann", "carl") is None and not store.file_in_use("c.png")
    old = store.save_character(character("ann", "alice", 70, media="a2.png"), room_for(2))  # a replace fits
    assert old.media == "m.png" and store.get_character("ann", "alice").size_bytes == 70
    store.save_character(character("ben", "alice", 5), room_for(2))
    room = store.cast_room("ann", "alice")
    assert (room.count, room.mine, room.everyone) == (2, 50, 125)
    assert [c.key for c in store.list_characters("ann")] == ["alice", "bob"]
    store.characters_used("ann", ["alice", "nobody"], 42.0)
    assert (store.get_character("ann", "alice").uses, store.get_character("ann", "alice").last_used_at) == (1, 42.0)
    assert store.file_in_use("v.wav") and store.file_in_use("m.png")  # ben's alice keeps m.png
    assert store.delete_character("ann", "bob").voice == "v.wav" and not store.file_in_use("v.wav")
    assert store.delete_character("ann", "bob") is None


def test_concurrent_admissions_never_pass_a_cap_together(store):
    """Twenty threads each admit a 1 USD task under a 5 USD day: exactly five are recorded."""
    def cap(spend: Spend) -> None:
        if spend.day + 1.0 > 5.0:
            raise RuntimeError("cap")

    passed, start = [], threading.Barrier(20)

    def one(i: int) -> None:
        start.wait()
        try:
            store.admit(owner="ann", check=cap, task=task(f"r2v_{i}", cost_estimate=1.0))
            passed.append(i)
        except RuntimeError:
            pass

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(passed) == 5 and store.list(limit=100, owner="ann")[1] == 5 and store.spent("ann").day == 5.0


def test_a_file_written_once_keeps_its_inode_for_whoever_holds_it_open(tmp_path):
    from wan_r2v_mcp.references.opened import OpenedFile
    from wan_r2v_mcp.store.files import write_once

    dest = tmp_path / "placeholder.png"
    write_once(dest, lambda part: part.write_bytes(b"first"))
    held = OpenedFile(dest)  # a check reading it, as two redos' checks do at once
    write_once(dest, lambda part: part.write_bytes(b"second"))
    assert dest.read_bytes() == b"first" and held.read_at(0, 5) == b"first"
    assert OpenedFile(dest).identity[:2] == held.identity[:2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["placeholder.png"]  # no temporary file left
    held.close()
