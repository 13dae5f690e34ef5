"""Long jobs: bounded waits with progress, the duplicate guard, cost caps, and kill -9 at the worst moments."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import time
from pathlib import Path

import anyio
import cli_runner
import pytest
from conftest import DASHSCOPE_KEY, call, text
from mcp import Client

from wan_r2v_mcp.config import Settings
from wan_r2v_mcp.server import build_server

pytestmark = pytest.mark.anyio

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
URL_REF = ["https://cdn.example.com/a.png"]


# ------------------------------------------------------------------ the duplicate guard

async def test_an_identical_request_returns_the_first_task_unless_duplicates_are_allowed(client, refs, dirs):
    args = {"prompt": "Image 1 waves", "reference_images": [str(refs["img1"])], "duration": 2, "resolution": "720p"}
    first = (await call(client, "generate_r2v", args))["structuredContent"]
    copy = shutil.copy(refs["img1"], dirs["refs"] / "same-bytes-other-name.png")
    again = await call(client, "generate_r2v", {**args, "prompt": "Image 1  waves", "reference_images": [str(copy)]})
    assert again["structuredContent"]["task_id"] == first["task_id"]
    assert again["structuredContent"]["duplicate"] is True
    assert text(again).startswith("An identical request was already made, so its task is returned instead of paying "
                                  "again (pass allow_duplicate=true to generate anew). Task ")
    done = await call(client, "get_task", {"task_id": first["task_id"], "wait_seconds": 40})
    assert done["structuredContent"]["status"] == "succeeded"
    after = await call(client, "generate_r2v", args)  # within the window after success: still the same task
    assert after["structuredContent"]["task_id"] == first["task_id"]
    forced = await call(client, "generate_r2v", {**args, "allow_duplicate": True})
    assert forced["structuredContent"]["task_id"] != first["task_id"]
    other = await call(client, "generate_r2v", {**args, "seed": 7})
    assert other["structuredContent"]["task_id"] not in (first["task_id"], forced["structuredContent"]["task_id"])
    assert (await call(client, "list_tasks", {}))["structuredContent"]["total"] == 3


async def test_ten_identical_calls_at_once_make_one_paid_job(ds_settings, dashscope):
    async with Client(build_server(ds_settings)) as client:
        results = []

        async def one():
            results.append(await call(client, "generate_r2v", {"prompt": "Image 1", "provider": "dashscope",
                                                               "reference_images": URL_REF}))

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(one)
    assert len(dashscope.calls(CREATE)) == 1
    assert len({r["structuredContent"]["task_id"] for r in results}) == 1
    assert sum(r["structuredContent"]["duplicate"] for r in results) == 9


# ------------------------------------------------------------------ cost

async def test_a_per_task_cost_cap_refuses_before_anything_is_sent(dirs, dashscope):
    settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"], allowed_dirs=str(dirs["refs"]),
                        hosts={"dashscope": {"api_key": DASHSCOPE_KEY, "base_url": dashscope.base_url}},
                        max_cost_per_task_usd=1.0)
    async with Client(build_server(settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": URL_REF, "duration": 10})
        assert text(r) == ("Error executing tool generate_r2v: [over_budget] the estimated cost $1.50 is over the "
                           "per-task cap. Limit: $1.00 per task (WAN_R2V_MAX_COST_PER_TASK). Fix: ask for fewer "
                           "seconds or 720p, or raise the cap.")
        ok = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": URL_REF, "duration": 6})
        assert ok["structuredContent"]["cost_estimate_usd"] == 0.9
    assert len(dashscope.calls(CREATE)) == 1


async def test_a_daily_cap_counts_what_was_already_spent(dirs, dashscope):
    settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"], allowed_dirs=str(dirs["refs"]),
                        hosts={"dashscope": {"api_key": DASHSCOPE_KEY, "base_url": dashscope.base_url}},
                        max_cost_per_day_usd=1.0)
    async with Client(build_server(settings)) as client:
        first = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": URL_REF, "duration": 5})
        assert first["isError"] is False
        second = await call(client, "generate_r2v", {"prompt": "Image 1 again", "reference_images": URL_REF,
                                                     "duration": 5})
        assert text(second) == ("Error executing tool generate_r2v: [over_budget] the estimated cost $0.75 would "
                                "bring the last 24 hours to $1.50. Limit: $1.00 per day (WAN_R2V_MAX_COST_PER_DAY). "
                                "Fix: wait until earlier tasks fall out of the 24-hour window, or raise the cap.")
    assert len(dashscope.calls(CREATE)) == 1


# ------------------------------------------------------------------ waiting

async def test_waits_are_capped_by_the_configuration(dirs, refs):
    settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"], allowed_dirs=str(dirs["refs"]), wait_cap_seconds=1.0)
    async with Client(build_server(settings)) as client:
        t0 = time.monotonic()
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": [str(refs["img1"])],
                                                "duration": 15, "wait_seconds": 30})
        assert time.monotonic() - t0 < 5
    assert r["structuredContent"]["status"] == "running"
    assert r["structuredContent"]["next_check_seconds"] == 0.0 and r["structuredContent"]["estimated_seconds_left"] > 0


# ------------------------------------------------------------------ kill -9, then a restart

def _cli(env: dict[str, str], *args: str) -> cli_runner.Started:
    return cli_runner.start(list(args), env=env)  # a process of its own, to kill (see cli_runner)


def _row(dirs) -> dict | None:
    path = dirs["data"] / "tasks.sqlite3"
    if not path.exists():
        return None
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        try:
            row = db.execute("SELECT * FROM tasks").fetchone()
        except sqlite3.OperationalError:  # the file exists, its tables not yet: the server is still starting
            return None
    return dict(row) if row else None


def _until(predicate, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def cli_env(dirs, dashscope):
    env = {**os.environ, "WAN_R2V_DATA_DIR": str(dirs["data"]), "WAN_R2V_OUTPUT_DIR": str(dirs["out"]),
           "DASHSCOPE_API_KEY": DASHSCOPE_KEY, "DASHSCOPE_BASE_URL": dashscope.base_url, "WAN_R2V_TIME_SCALE": "0.1"}
    return env


def _finish_after_restart(cli_env, dirs, dashscope, result_mp4) -> dict:
    task_id = _row(dirs)["task_id"]
    again = _cli(cli_env, "get", task_id, "--wait", "60", "--json")
    out, _ = again.communicate(timeout=90)
    view = json.loads(out)
    assert view["status"] == "succeeded", view
    assert len(dashscope.calls(CREATE)) == 1, "a task must never be submitted twice"
    assert Path(view["local_path"]).read_bytes() == result_mp4
    assert sorted(p.name for p in dirs["out"].iterdir()) == [f"{task_id}.{ext}" for ext in ("jpg", "json", "mp4")]
    with sqlite3.connect(dirs["data"] / "tasks.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return view


def test_killed_after_the_create_was_sent_but_before_its_id_was_stored(cli_env, dirs, dashscope, result_mp4):
    dashscope.fault("create", hold=30)  # the host creates the job; its answer is held back
    proc = _cli(cli_env, "generate", "Image 1 waves", "-i", URL_REF[0], "--wait", "60")
    _until(lambda: len(dashscope.tasks) == 1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    row = _row(dirs)
    assert row["provider_task_id"] is None and row["phase"] == "creating"
    view = _finish_after_restart(cli_env, dirs, dashscope, result_mp4)
    assert view["provider_task_id"] == next(iter(dashscope.tasks))


def test_killed_after_the_id_was_stored(cli_env, dirs, dashscope, result_mp4):
    dashscope.timing.pending = 3.0
    proc = _cli(cli_env, "generate", "Image 1 waves", "-i", URL_REF[0], "--wait", "60")
    _until(lambda: (_row(dirs) or {}).get("provider_task_id") is not None)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _row(dirs)["status"] in ("queued", "running")
    _finish_after_restart(cli_env, dirs, dashscope, result_mp4)
    assert len(dashscope.calls("/results/")) == 1


def test_killed_in_the_middle_of_the_download(cli_env, dirs, dashscope, result_mp4):
    dashscope.fault("result", partial=len(result_mp4) // 2, hold=30)
    proc = _cli(cli_env, "generate", "Image 1 waves", "-i", URL_REF[0], "--wait", "60")
    _until(lambda: any(p.name.endswith(".part") and p.stat().st_size > 0 for p in dirs["out"].iterdir()))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not any(p.suffix == ".mp4" for p in dirs["out"].iterdir())  # never a half video under the final name
    _finish_after_restart(cli_env, dirs, dashscope, result_mp4)
    assert len(dashscope.calls("/results/")) == 2


async def test_on_start_unfinished_tasks_are_finished_even_if_no_client_asks(cli_env, dirs, dashscope, result_mp4,
                                                                             ds_settings):
    dashscope.timing.pending = 2.0
    proc = _cli(cli_env, "generate", "Image 1 waves", "-i", URL_REF[0], "--wait", "0")
    proc.wait(timeout=30)
    task_id = _row(dirs)["task_id"]
    assert _row(dirs)["status"] in ("queued", "running")
    async with Client(build_server(ds_settings)):  # connect, and ask for nothing
        with anyio.fail_after(40):  # the row says succeeded once the video, poster and sidecar are all saved
            while _row(dirs)["status"] != "succeeded":
                await anyio.sleep(0.2)
    assert (dirs["out"] / f"{task_id}.mp4").read_bytes() == result_mp4
    assert len(dashscope.calls(CREATE)) == 1


async def test_ten_callers_waiting_on_one_task_share_one_poll_loop(ds_settings, dashscope):
    dashscope.timing.pending, dashscope.timing.running = 0.4, 0.4  # 8 s, on the suite's 10x compressed timings
    async with Client(build_server(ds_settings)) as client:
        started = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": URL_REF})
        task_id = started["structuredContent"]["task_id"]
        views = []

        async def wait_for_it():
            views.append(await call(client, "get_task", {"task_id": task_id, "wait_seconds": 30}))

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(wait_for_it)
    assert [v["structuredContent"]["status"] for v in views] == ["succeeded"] * 10
    polls = len(dashscope.calls("/api/v1/tasks/", "GET"))
    assert polls <= 6, polls  # one loop with backoff (0 s, 3 s, 7.5 s, ... compressed 10x), not ten


async def test_once_saved_a_task_keeps_its_video_after_the_hosts_url_expires(ds_settings, dashscope, result_mp4):
    async with Client(build_server(ds_settings)) as client:
        done = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": URL_REF,
                                                   "wait_seconds": 30})
        assert done["structuredContent"]["status"] == "succeeded"
        dashscope.results_expired = True
        received = len(dashscope.received)
        later = await call(client, "get_task", {"task_id": done["structuredContent"]["task_id"]})
    view = later["structuredContent"]
    assert view["status"] == "succeeded" and Path(view["local_path"]).read_bytes() == result_mp4
    assert later["content"][1]["uri"] == f"r2v://tasks/{view['task_id']}/video"
    assert len(dashscope.received) == received  # nothing fetched again


async def test_two_servers_on_one_ledger_follow_a_task_once(ds_settings, dashscope, result_mp4, dirs):
    # Claude Desktop and an IDE assistant on one machine share the default data folder.
    dashscope.timing.pending, dashscope.timing.running = 0.3, 0.3  # 6 s, on the suite's 10x compressed timings
    async with Client(build_server(ds_settings)) as first:
        started = await call(first, "generate_r2v", {"prompt": "Image 1", "reference_images": URL_REF})
        task_id = started["structuredContent"]["task_id"]
        async with Client(build_server(ds_settings)) as second:  # its start-up takes up unfinished tasks too
            views = []

            async def wait_on(client):
                views.append(await call(client, "get_task", {"task_id": task_id, "wait_seconds": 30}))

            async with anyio.create_task_group() as tg:
                tg.start_soon(wait_on, first)
                tg.start_soon(wait_on, second)
    assert [v["structuredContent"]["status"] for v in views] == ["succeeded", "succeeded"]
    assert len(dashscope.calls("/results/")) == 1, "downloaded once"
    polls = len(dashscope.calls("/api/v1/tasks/", "GET"))
    assert polls <= 5, polls  # one follower: 0 s, 3 s, 7.5 s
    assert (dirs["out"] / f"{task_id}.mp4").read_bytes() == result_mp4
