"""A task's life: the state machine's guarded moves, and what each host fault does to a paid job (issue #9)."""

from __future__ import annotations

import calendar
import hashlib
import os
import threading
import time
from pathlib import Path

import anyio
import media
import pytest
from conftest import DASHSCOPE_KEY, call, finish, text
from mcp import Client
from pydantic import SecretStr

from wan_r2v_mcp.errors import GenerationFailed
from wan_r2v_mcp.jobs.lifecycle import ALLOWED, CANCEL_BEFORE_ID, Lifecycle, Phase
from wan_r2v_mcp.providers.host_settings import with_host
from wan_r2v_mcp.server import build_server
from wan_r2v_mcp.store.sqlite import SQLiteStore as Ledger

pytestmark = pytest.mark.anyio

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
URL_REF = ["https://cdn.example.com/a.png"]


# ------------------------------------------------------------------ the state machine itself

def _row(ledger: Ledger, task_id: str, phase: Phase) -> None:
    ledger.insert(task_id=task_id, provider="dashscope", phase=phase.value, status=phase.status, stage="test",
                  request={"prompt": "p", "resolution": "720p", "aspect_ratio": "16:9", "duration": 5}, refs=[])


@pytest.mark.parametrize("start", list(Phase))
def test_every_move_is_allowed_exactly_when_the_table_has_it(tmp_path, start):
    ledger = Ledger(tmp_path / "tasks.sqlite3")
    lifecycle = Lifecycle(ledger)
    for target in Phase:
        task_id = f"{start.value}-to-{target.value}"
        _row(ledger, task_id, start)
        moved = lifecycle.move(task_id, target, stage="moved")
        expected = target in ALLOWED[start] or (target is start and not start.terminal)
        assert moved is expected, (start, target)
        after = ledger.get(task_id)
        assert (after.phase, after.status) == ((target.value, target.status) if expected else (start.value, start.status))
    ledger.close()


def test_a_late_failure_never_undoes_a_cancel_and_nothing_undoes_a_success(tmp_path):
    ledger = Ledger(tmp_path / "tasks.sqlite3")
    lifecycle = Lifecycle(ledger)
    _row(ledger, "a", Phase.RUNNING)
    assert lifecycle.move("a", Phase.CANCELED, stage="canceled")
    assert not lifecycle.fail("a", GenerationFailed("the host said FAILED, late", fix="try again"))
    assert not lifecycle.move("a", Phase.RUNNING, stage="a late poll")
    assert ledger.get("a").phase == "canceled" and ledger.get("a").error is None
    _row(ledger, "b", Phase.DOWNLOADING)
    assert lifecycle.move("b", Phase.SUCCEEDED, stage="saved")
    assert not lifecycle.move("b", Phase.FAILED, stage="a late download error")
    assert ledger.get("b").status == "succeeded"
    ledger.close()


def test_two_tasks_can_never_follow_one_host_job(tmp_path):
    ledger = Ledger(tmp_path / "tasks.sqlite3")
    lifecycle = Lifecycle(ledger)
    _row(ledger, "a", Phase.UNKNOWN)
    _row(ledger, "b", Phase.UNKNOWN)
    assert lifecycle.adopt("a", "dashscope", "job-1", Phase.RUNNING, stage="found")
    assert not lifecycle.adopt("b", "dashscope", "job-1", Phase.RUNNING, stage="found")
    assert ledger.get("b").provider_task_id is None and ledger.get("b").phase == "unknown"
    assert lifecycle.adopt("b", "dashscope", "job-2", Phase.RUNNING, stage="found")
    ledger.close()


def test_only_words_and_progress_of_a_waiting_or_running_task_are_committed_without_an_fsync(tmp_path):
    ledger = Ledger(tmp_path / "tasks.sqlite3")
    lifecycle = Lifecycle(ledger)

    def synced() -> str:  # the mode the ledger's last commit ran in (it switches only between transactions)
        return {1: "no fsync", 2: "fsync"}[ledger._db.execute("PRAGMA synchronous").fetchone()[0]]

    seen = []
    _row(ledger, "a", Phase.PENDING)
    seen.append(("pending note", lifecycle.note("a", Phase.PENDING, stage="recorded; waiting its turn"), synced()))
    seen.append(("begin create", lifecycle.begin_create("a", {"model": "m"}, time.time()), synced()))
    seen.append(("host id", lifecycle.adopt("a", "dashscope", "job-1", Phase.QUEUED, stage="queued"), synced()))
    seen.append(("started", lifecycle.move("a", Phase.RUNNING, only_from=frozenset({Phase.QUEUED, Phase.RUNNING}),
                                           stage="running", progress=10.0), synced()))
    seen.append(("progress", lifecycle.move("a", Phase.RUNNING, only_from=frozenset({Phase.QUEUED, Phase.RUNNING}),
                                            stage="running", progress=50.0), synced()))
    seen.append(("a running move from anywhere", lifecycle.move("a", Phase.RUNNING, stage="running"), synced()))
    seen.append(("the video's address", lifecycle.move("a", Phase.DOWNLOADING, video_url="https://x/v.mp4",
                                                      stage="downloading the result"), synced()))
    seen.append(("download retry note", lifecycle.note("a", Phase.DOWNLOADING, stage="attempt 1 failed"), synced()))
    seen.append(("saved", lifecycle.move("a", Phase.SUCCEEDED, stage="saved"), synced()))
    _row(ledger, "b", Phase.CANCELING)
    seen.append(("canceling note", lifecycle.note("b", Phase.CANCELING, stage=CANCEL_BEFORE_ID), synced()))
    _row(ledger, "c", Phase.UNKNOWN)
    seen.append(("candidates", lifecycle.note("c", Phase.UNKNOWN, candidates=["job-9"], stage="watching"), synced()))
    assert seen == [("pending note", True, "no fsync"), ("begin create", True, "fsync"), ("host id", True, "fsync"),
                    ("started", True, "no fsync"), ("progress", True, "no fsync"),
                    ("a running move from anywhere", True, "fsync"), ("the video's address", True, "fsync"),
                    ("download retry note", True, "no fsync"), ("saved", True, "fsync"),
                    ("canceling note", True, "fsync"), ("candidates", True, "fsync")]
    assert ledger.get("a").phase == "succeeded" and ledger.get("b").stage == CANCEL_BEFORE_ID
    ledger.close()


# ------------------------------------------------------------------ a paid result is delivered

@pytest.mark.parametrize("fault", [
    {"status": 503, "body": b"<Error>SlowDown</Error>"},
    {"partial": 1000, "hold": 0.1},
    {"raw": b"<html><body>Please wait</body></html>", "headers": {"Content-Type": "text/html"}},
    {"raw": b"<html>not a video</html>", "headers": {"Content-Type": "video/mp4"}},
    {"declare_length": 5 * 1024**3},
], ids=["503", "truncated", "html", "html-as-video", "oversized"])
async def test_a_result_fault_that_can_pass_is_tried_again_and_the_paid_video_delivered(ds_settings, dashscope,
                                                                                      result_videos, fault):
    dashscope.fault("result", **fault)
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "reference_images": URL_REF,
                                                "wait_seconds": 20})
    view = r["structuredContent"]
    assert view["status"] == "succeeded", view
    assert Path(view["local_path"]).read_bytes() == result_videos(5)
    assert len(dashscope.calls("/results/")) == 2 and len(dashscope.calls(CREATE)) == 1


async def test_a_drip_fed_download_is_cut_at_its_deadline_and_tried_again(ds_settings, dashscope, result_videos):
    dashscope.fault("result", drip=0.05)  # ~1 KB every 50 ms: minutes for the whole video
    settings = ds_settings.model_copy(update={"download_deadline_seconds": 1.0})
    async with Client(build_server(settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "reference_images": URL_REF,
                                                "wait_seconds": 20})
    assert r["structuredContent"]["status"] == "succeeded"
    assert Path(r["structuredContent"]["local_path"]).read_bytes() == result_videos(5)


# ------------------------------------------------------------------ no call outlives its cap

@pytest.mark.parametrize("route", ["policy", "create"])
async def test_a_hanging_host_never_holds_a_call_past_its_wait_cap(ds_settings, dashscope, refs, route):
    dashscope.fault(route, hold=8.0)
    settings = ds_settings.model_copy(update={"wait_cap_seconds": 2.0, "request_deadline_seconds": 4.0})
    async with Client(build_server(settings)) as client:
        t0 = time.monotonic()
        r = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "reference_images": [str(refs["img1"])],
                                                "wait_seconds": 50})
        assert time.monotonic() - t0 < 4.0
        view = r["structuredContent"]
        assert view["status"] == "queued" and view["stage"] in ("uploading Image 1", "creating the job")
        done = view
        with anyio.fail_after(30):
            while done["status"] not in ("succeeded", "failed", "canceled"):
                done = (await call(client, "get_task", {"task_id": view["task_id"], "wait_seconds": 2}))[
                    "structuredContent"]
    assert done["status"] == "succeeded", done
    assert len({t.body["input"]["prompt"] for t in dashscope.tasks.values()}) == len(dashscope.tasks) == 1


# ------------------------------------------------------------------ wait 0, and a cancel before the job's id

async def _until_stage(client, task_id: str, stage: str) -> dict:
    with anyio.fail_after(30):
        while True:
            view = (await call(client, "get_task", {"task_id": task_id, "wait_seconds": 2}))["structuredContent"]
            if view["stage"] == stage:
                return view


async def test_wait_zero_is_answered_before_the_create_and_a_cancel_then_lands_once_the_id_comes_back(
        ds_settings, dashscope):
    answer = threading.Event()
    dashscope.fault("create", gate=answer)  # the host makes the job; its answer waits for the test
    dashscope.timing.pending = 30  # the job stays queued, so a cancel stops it
    async with Client(build_server(ds_settings)) as client:
        started = (await call(client, "generate_r2v", {"prompt": "Image 1 waves", "reference_images": URL_REF,
                                                       "wait_seconds": 0}))["structuredContent"]
        assert (started["status"], started["provider_task_id"]) == ("queued", None)
        await _until_stage(client, started["task_id"], "creating the job")
        async with anyio.create_task_group() as tg:
            canceled: list[dict] = []

            async def cancel() -> None:
                canceled.append(await call(client, "cancel_task", {"task_id": started["task_id"]}))

            tg.start_soon(cancel)
            await _until_stage(client, started["task_id"], CANCEL_BEFORE_ID)
            answer.set()  # the create's answer brings the id: the task's driver sends the cancel
    (view,) = [c["structuredContent"] for c in canceled]
    (job,) = dashscope.tasks
    assert (view["status"], view["provider_task_id"]) == ("canceled", job)
    assert [r.path for r in dashscope.calls("/api/v1/tasks/", "POST")] == [f"/api/v1/tasks/{job}/cancel"]
    assert dashscope.status_of(dashscope.tasks[job]) == "CANCELED"


async def test_a_server_that_stops_calmly_lets_a_create_in_flight_reach_the_host(ds_settings, dashscope):
    dashscope.fault("create", hold=1.0)
    async with Client(build_server(ds_settings)) as client:
        started = (await call(client, "generate_r2v", {"prompt": "Image 1 waves", "reference_images": URL_REF,
                                                       "wait_seconds": 0}))["structuredContent"]
    # The client left at once; the server sent the create and stored its answer before it stopped.
    (job,) = dashscope.tasks
    store = Ledger(ds_settings.data.ledger)
    record = store.get(started["task_id"])
    store.close()
    assert (record.phase, record.provider_task_id, record.creates) == ("queued", job, 1)
    async with Client(build_server(ds_settings)) as client:  # the next server follows it to its end
        done = await finish(client, started["task_id"])
    assert done["structuredContent"]["status"] == "succeeded"
    assert len(dashscope.calls("/api/v1/services/aigc/video-generation/video-synthesis", "POST")) == 1


# ------------------------------------------------------------------ reconciliation decides on evidence only

async def test_two_creates_that_lose_their_answers_at_once_each_adopt_their_own_job(ds_settings, dashscope):
    dashscope.fault("create", drop=True, times=2)
    async with Client(build_server(ds_settings)) as client:
        views = {}

        async def one(prompt):
            views[prompt] = (await call(client, "generate_r2v", {"prompt": prompt, "reference_images": URL_REF,
                                                                 "wait_seconds": 30}))["structuredContent"]

        async with anyio.create_task_group() as tg:
            tg.start_soon(one, "Image 1 waves")
            tg.start_soon(one, "Image 1 bows")
    assert len(dashscope.tasks) == 2
    for prompt, view in views.items():
        assert view["status"] == "succeeded", view
        assert dashscope.tasks[view["provider_task_id"]].body["input"]["prompt"] == prompt


async def test_a_foreign_pending_job_whose_prompt_is_hidden_is_watched_not_adopted(ds_settings, dashscope):
    # Another client of the key made a job just before ours; DashScope shows a job's prompt only once it
    # succeeded, and the foreign one will finish after ours.
    foreign = dashscope.make_job({"model": "wan2.7-r2v", "input": {"prompt": "someone else's", "media": []},
                                  "parameters": {"duration": 5}})
    foreign.created = time.time() + 1.0  # so it stays pending longer than ours
    dashscope.fault("create", drop=True)
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "reference_images": URL_REF,
                                                "wait_seconds": 30})
    view = r["structuredContent"]
    ours = next(t for t in dashscope.tasks.values() if t.body["input"]["prompt"] == "Image 1 waves")
    assert view["status"] == "succeeded" and view["provider_task_id"] == ours.task_id
    (_, start), (_, end) = [(k, v) for k, v in dashscope.calls("/api/v1/tasks", "GET")[0].query.items()
                            if k in ("start_time", "end_time")]
    seconds = calendar.timegm(time.strptime(end, "%Y%m%d%H%M%S")) - calendar.timegm(time.strptime(start, "%Y%m%d%H%M%S"))
    assert seconds <= 3600  # a window of minutes, far inside the 24 h the list allows (as times, across midnight too)


# ------------------------------------------------------------------ what is uploaded is what was checked

async def test_a_reference_swapped_for_a_symlink_after_its_check_is_not_what_gets_uploaded(ds_settings, dashscope,
                                                                                         refs, dirs, tmp_path):
    secret = tmp_path / "secret.png"
    media.image(secret, 800, 600, color=(255, 0, 0))
    checked = hashlib.sha256(refs["img1"].read_bytes()).hexdigest()
    dashscope.fault("policy", delay=1.5)  # the upload waits on the policy while the file is swapped
    async with Client(build_server(ds_settings.model_copy(update={"wait_cap_seconds": 0.5}))) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "reference_images": [str(refs["img1"])],
                                                "wait_seconds": 0})
        os.replace(refs["img1"], dirs["refs"] / "moved.png")
        os.symlink(secret, refs["img1"])
        done = await call(client, "get_task", {"task_id": r["structuredContent"]["task_id"], "wait_seconds": 20})
        while done["structuredContent"]["status"] in ("queued", "running"):
            done = await call(client, "get_task", {"task_id": r["structuredContent"]["task_id"], "wait_seconds": 0.5})
    (upload,) = dashscope.calls("/oss")
    assert upload.files["file"]["sha256"] == checked
    assert done["structuredContent"]["status"] == "succeeded"


# ------------------------------------------------------------------ what the hosts receive is what their docs say

async def test_five_references_and_a_first_frame_are_refused_before_anything_is_sent_to_dashscope(ds_settings,
                                                                                                     dashscope):
    # DashScope's create schema caps `input.media` at 5 items; whether the first frame counts is unconfirmed
    # (the OpenAPI schema leaves it unsaid), so the stricter reading is planned for, before anything is uploaded or paid.
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1 and Image 5", "reference_images": URL_REF * 5,
                                                "first_frame": "https://cdn.example.com/f.png", "wait_seconds": 10})
    assert r["isError"] and text(r) == (
        "Error executing tool generate_r2v: [invalid_input] first_frame: with a first frame, DashScope takes at most 4 "
        "references, and this request has 5. Limit: 5 media items in all on dashscope, the first frame counted (the "
        "host's schema caps the list; whether the frame counts is not confirmed, so the stricter reading is used). "
        "Fix: keep at most 4 references with a first frame, or leave first_frame out.")
    assert dashscope.calls(CREATE) == []


async def test_the_dashscope_upload_cache_is_never_shared_across_keys(ds_settings, dashscope, refs):
    other_key = "sk-another0123456789abcdef"
    for key in (DASHSCOPE_KEY, other_key):
        dashscope.api_key = key
        async with Client(build_server(with_host(ds_settings, "dashscope", api_key=SecretStr(key)))) as client:
            r = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "reference_images": [str(refs["img1"])],
                                                    "wait_seconds": 20, "allow_duplicate": True})
            assert r["structuredContent"]["status"] == "succeeded"
    assert len(dashscope.calls("/oss")) == 2  # a new account uploads its own copy


async def test_a_fal_cancel_of_a_running_request_keeps_following_and_delivers_what_finishes(hosts_settings, fal,
                                                                                          result_videos):
    fal.in_queue, fal.in_progress = 0.0, 1.5
    async with Client(build_server(hosts_settings)) as client:
        started = await call(client, "generate_r2v", {"prompt": "Image 1", "provider": "fal", "reference_images": URL_REF,
                                                      "wait_seconds": 0.3})
        task_id = started["structuredContent"]["task_id"]
        canceling = (await call(client, "cancel_task", {"task_id": task_id}))["structuredContent"]
        assert canceling["status"] == "running"
        assert canceling["stage"] == "fal cancellation requested; following the request until fal says it ended"
        done = (await call(client, "get_task", {"task_id": task_id, "wait_seconds": 20}))["structuredContent"]
    assert done["status"] == "succeeded" and Path(done["local_path"]).read_bytes() == result_videos(5)
    (cancel,) = fal.calls("/fal-ai/wan/requests/", "PUT")
    assert cancel.path.endswith(f"{started['structuredContent']['provider_task_id']}/cancel")


async def test_a_fal_create_sends_the_duration_as_an_integer(hosts_settings, fal):
    async with Client(build_server(hosts_settings)) as client:
        await call(client, "generate_r2v", {"prompt": "Image 1", "provider": "fal", "reference_images": URL_REF,
                                            "duration": 6, "wait_seconds": 0})
    (create,) = fal.calls("/fal-ai/wan/v2.7/reference-to-video", "POST")
    assert create.json["duration"] == 6


async def test_cancelling_while_references_upload_sends_nothing_and_pays_nothing(ds_settings, dashscope, refs):
    dashscope.fault("policy", delay=1.5)
    async with Client(build_server(ds_settings.model_copy(update={"wait_cap_seconds": 0.5}))) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": [str(refs["img1"])],
                                                "wait_seconds": 0})
        canceled = await call(client, "cancel_task", {"task_id": r["structuredContent"]["task_id"]})
        assert canceled["structuredContent"]["status"] == "canceled"
        assert canceled["structuredContent"]["stage"] == "canceled before anything was sent"
        await anyio.sleep(2.5)
    assert dashscope.calls(CREATE) == [] and dashscope.tasks == {}


# ------------------------------------------------------------------ a long job on compressed timings

@pytest.mark.long
async def test_a_job_3_6_times_the_wait_cap_is_followed_to_its_end_in_few_calls_with_steady_progress(ds_settings,
                                                                                                  dashscope,
                                                                                                  result_videos):
    # Stands for a 180 s job under a 50 s cap and a 60 s client timeout: an 18 s job, a 5 s cap and a client timeout
    # 3 s past it (the server's own time after a wait, a view and its poster, is not compressed; 10 s behind a 50 s cap).
    dashscope.timing.pending, dashscope.timing.running = 2.0, 16.0
    settings = ds_settings.model_copy(update={"wait_cap_seconds": 5.0, "progress_interval_seconds": 0.5})
    stamps: list[float] = []

    async def on_progress(p, t, m):
        stamps.append(time.monotonic())

    waits: list[float] = []  # how long each call held, generate's first
    async with Client(build_server(settings), mode="legacy") as client:
        started = time.monotonic()
        result = await client.call_tool("generate_r2v", {"prompt": "Image 1", "reference_images": URL_REF,
                                                         "wait_seconds": 5}, read_timeout_seconds=8,
                                        progress_callback=on_progress)
        waits.append(time.monotonic() - started)
        view = result.structured_content
        while view["status"] not in ("succeeded", "failed", "canceled"):
            t0 = time.monotonic()
            result = await client.call_tool("get_task", {"task_id": view["task_id"], "wait_seconds": 5},
                                            read_timeout_seconds=8, progress_callback=on_progress)
            waits.append(time.monotonic() - t0)
            view = result.structured_content
    assert view["status"] == "succeeded" and Path(view["local_path"]).read_bytes() == result_videos(5)
    assert time.monotonic() - started >= 18
    # Each call but the last holds the whole cap, and each ends before the client's limit (which would raise):
    # four calls for a 3-minute job, five when the server's own work after the host's end (download, checks, poster)
    # runs late on a loaded machine.
    assert all(w >= 4.9 for w in waits[:-1]) and max(waits) < 8, waits
    assert len(waits) <= 5, waits
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    # A notification every interval (0.5 s) while waiting: a wait that sent none would show a gap of the whole
    # wait (5 s); up to three intervals are allowed for a loaded machine's scheduling (two suites side by side).
    assert gaps and max(gaps) <= 1.5, max(gaps)
    polls = len(dashscope.calls("/api/v1/tasks/", "GET"))
    assert polls <= 30, polls  # backoff to 1.5 s on the compressed timings: one loop however many wait


# ------------------------------------------------------------------ the error vocabulary is pinned

def test_every_error_class_has_one_meaning_and_the_wire_codes_are_pinned():
    from wan_r2v_mcp import errors

    def walk(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    classes = list(walk(errors.R2VError))
    assert all(c.__doc__ and c.__doc__.strip() for c in classes), [c.__name__ for c in classes if not c.__doc__]
    # A new code is a change to what agents read: add it here on purpose.
    # Every code a task's error can carry is a class's: the four added with the guard against typed codes (canceled,
    # preview_failed, submit_failed and poll_failed's own class) were already on the wire as strings.
    assert sorted({c.code for c in classes}) == [
        "access_denied", "auth_failed", "billing", "canceled", "content_moderation", "download_failed",
        "following_failed", "generation_failed", "host_error", "host_invalid_parameter", "host_unavailable",
        "host_unreachable", "interrupted", "invalid_input", "invalid_reference", "join_failed", "ledger_unavailable",
        "model_unavailable",
        "not_configured", "not_created", "not_found", "over_budget", "poll_failed", "preview_failed",
        "provider_error", "provider_unavailable", "rate_limited", "result_expired", "result_invalid",
        "result_url_rejected", "submit_failed", "submit_unknown", "task_unknown", "upload_failed"]


def test_a_ledger_written_before_phases_existed_gets_each_rows_phase_from_what_it_recorded(tmp_path):
    import sqlite3

    path = tmp_path / "tasks.sqlite3"
    with sqlite3.connect(path) as db:  # the 0.1.0 schema
        db.execute("CREATE TABLE tasks (task_id TEXT PRIMARY KEY, created_at REAL NOT NULL, updated_at REAL NOT NULL, "
                   "finished_at REAL, provider TEXT NOT NULL, provider_task_id TEXT, status TEXT NOT NULL, stage TEXT "
                   "NOT NULL, progress REAL, request TEXT NOT NULL, refs TEXT NOT NULL, payload TEXT, fingerprint "
                   "TEXT, video_url TEXT, video_url_expires_at REAL, local_path TEXT, poster_path TEXT, sidecar_path "
                   "TEXT, cost_estimate REAL, billable_seconds REAL, error TEXT, owner TEXT NOT NULL DEFAULT '')")
        for task_id, job, status, payload in (("done", "j1", "succeeded", "{}"), ("polling", "j2", "running", "{}"),
                                              ("sent", None, "queued", "{}"), ("uploading", None, "queued", None)):
            db.execute("INSERT INTO tasks (task_id, created_at, updated_at, provider, provider_task_id, status, stage, "
                       "request, refs, payload) VALUES (?, 0, 0, 'dashscope', ?, ?, 'x', '{}', '[]', ?)",
                       (task_id, job, status, payload))
    ledger = Ledger(path)
    assert {r.task_id: r.phase for r in ledger.unfinished()} == {"polling": "running", "sent": "unknown",
                                                                  "uploading": "pending"}
    assert ledger.get("done").phase == "succeeded"
    ledger.close()
