"""Money and paid work at the edges: the host's job list only speeds things up, a paid video is kept, the caps hold
under concurrency and across a sequence's shots and redos, a shot pays only for what it names."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import anyio
import media
import pytest
from conftest import call, finish, text
from emulators.dashscope import Timing
from mcp import Client

from wan_r2v_mcp.server import build_server

pytestmark = pytest.mark.anyio

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
URL_REF = ["https://cdn.example.com/a.png"]


def creates(dashscope) -> list[dict]:
    return [c.json for c in dashscope.calls(CREATE, "POST")]


# ------------------------------------------------------------------ the job list is an accelerator, never a need

LIST_FAULTS = {
    "forbidden": {"status": 403, "body": {"code": "AccessDenied", "message": "sub-workspace keys cannot list tasks"}},
    "failing": {"status": 500, "body": {"code": "InternalError", "message": "oops"}},
    "garbled": {"raw": b"{\"data\": [", "headers": {"Content-Type": "application/json"}},
    "rows-garbled": {"raw": b"{\"data\": [\"not a row\"]}", "headers": {"Content-Type": "application/json"}},
    "silent": {"raw": b"{\"data\": [], \"total\": 0}", "headers": {"Content-Type": "application/json"}},
}


@pytest.mark.parametrize("fault", list(LIST_FAULTS))
async def test_a_job_list_that_fails_for_good_never_holds_a_finished_job_back(ds_settings, dashscope, fault):
    # Before: with the list failing, a finished job waited for the 300 s safety poll (30 s on these timings).
    # Now each job is polled at the host's documented pace (15 s; 1.5 s here) whenever the list cannot vouch for it.
    dashscope.fault("list", times=10**6, **LIST_FAULTS[fault])
    dashscope.timing = Timing(pending=0.5, running=1.5)
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "reference_images": URL_REF,
                                                "wait_seconds": 12})
    view = r["structuredContent"]
    assert view["status"] == "succeeded", view
    assert len(creates(dashscope)) == 1
    assert len(dashscope.calls("/api/v1/tasks/", "GET")) <= 6  # polled at the host's pace, not hammered


async def test_a_lost_create_answer_with_a_forbidden_job_list_says_the_job_may_exist(ds_settings, dashscope):
    dashscope.fault("create", drop=True)  # the host makes the job; its answer never comes
    dashscope.fault("list", times=10**6, **LIST_FAULTS["forbidden"])
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "reference_images": URL_REF,
                                                "wait_seconds": 0})
        done = await finish(client, r["structuredContent"]["task_id"])
    error = done["structuredContent"]["error"]
    assert error["code"] == "submit_unknown"  # not the list's access_denied, whose hint would mislead
    assert error["message"].startswith("the create request may or may not have reached the host, and its job list "
                                       "cannot be read (DashScope denied access")
    assert error["hint"].startswith("it was not sent again; look in DashScope's console for a job made at 20")
    assert len(creates(dashscope)) == 1


def test_list_rows_are_read_by_status_or_task_status(ds_settings):
    from wan_r2v_mcp.providers.dashscope_answers import list_rows

    assert list_rows({"data": [{"task_id": "a", "task_status": "SUCCEEDED"}]}) == [
        {"task_id": "a", "task_status": "SUCCEEDED"}]
    assert list_rows({"data": None}) == [] and list_rows({"output": {"data": [{"task_id": "b"}]}}) == [
        {"task_id": "b"}]
    for garbled in ([], "x", {"data": "x"}, {"data": [1]}, {"output": {"data": {"task_id": "b"}}}):
        with pytest.raises(Exception, match="shape it does not document"):
            list_rows(garbled)


async def test_a_listed_task_status_wakes_its_watcher(ds_settings, dashscope):
    # The completion event's spelling (`task_status`) read from a list row counts as much as `status`.
    from wan_r2v_mcp.providers.dashscope import DashScopeProvider

    dashscope.timing = Timing(pending=0.0, running=0.0)
    provider = DashScopeProvider(ds_settings)
    job = await provider.submit({"model": "wan2.7-r2v", "input": {"prompt": "x", "media": [
        {"type": "reference_image", "url": URL_REF[0]}]}, "parameters": {}}, provider.route("wan2.7-r2v"))
    row = {"task_id": job.provider_task_id, "task_status": "SUCCEEDED", "gmt_create": 0, "model_name": "wan2.7-r2v"}
    dashscope.fault("list", raw=json.dumps({"data": [row]}).encode(), headers={"Content-Type": "application/json"})
    listed = await provider.find_submitted(since=0, until=2e9)
    assert [(c.provider_task_id, c.status) for c in listed] == [(job.provider_task_id, "succeeded")]
    await provider.aclose()


# ------------------------------------------------------------------ a paid result is never turned away

@pytest.mark.parametrize("seconds", [2, 9])
async def test_a_paid_video_of_another_length_is_kept_and_the_task_says_how_it_differs(ds_settings, dashscope,
                                                                                      result_videos, seconds):
    served = result_videos(seconds)
    dashscope.fault("result", raw=served, headers={"Content-Type": "video/mp4"})
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "reference_images": URL_REF,
                                                "duration": 5, "wait_seconds": 20})
    view = r["structuredContent"]
    assert view["status"] == "succeeded", view
    assert Path(view["local_path"]).read_bytes() == served
    assert len(dashscope.calls("/results/")) == 1  # fetched once: fetching again cannot change those bytes
    assert view["output"]["seconds"] == pytest.approx(seconds, abs=0.2)
    assert view["warnings"] == [f"the video the host made differs from the request: it lasts {seconds:.1f} s, not the "
                                "5 s asked; it is kept as delivered (and paid)"]
    assert "differs from the request" in text(r)


# ------------------------------------------------------------------ the caps hold under concurrency

def _capped(ds_settings, **caps):
    return ds_settings.model_copy(update=caps)


async def test_concurrent_requests_can_never_together_pass_the_daily_cap(ds_settings, dashscope):
    settings = _capped(ds_settings, max_cost_per_day_usd=1.0)
    async with Client(build_server(settings)) as client:
        results: list[dict] = []

        async def one(i: int) -> None:  # $0.30 each: 3 s at 720p
            results.append(await call(client, "generate_r2v", {
                "prompt": f"Image 1 waves, take {i}", "reference_images": URL_REF, "resolution": "720p",
                "duration": 3, "wait_seconds": 0}))

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(one, i)
    made = [r for r in results if not r["isError"]]
    refused = [r for r in results if r["isError"]]
    assert len(made) == 3 and len(creates(dashscope)) == 3
    assert len(refused) == 17 and all("[over_budget]" in text(r) and "Limit: $1.00 per day" in text(r)
                                      for r in refused)


async def test_identical_requests_at_once_make_one_task_even_under_a_cap(ds_settings, dashscope):
    settings = _capped(ds_settings, max_cost_per_day_usd=1.0)
    async with Client(build_server(settings)) as client:
        results: list[dict] = []

        async def one() -> None:
            results.append(await call(client, "generate_r2v", {
                "prompt": "Image 1 waves", "reference_images": URL_REF, "resolution": "720p", "duration": 3,
                "wait_seconds": 0}))

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(one)
    assert not any(r["isError"] for r in results)
    assert len({r["structuredContent"]["task_id"] for r in results}) == 1 and len(creates(dashscope)) == 1


SHOTS = [{"prompt": "Image 1 walks in", "duration": 2}, {"prompt": "Image 1 sits down", "duration": 2},
         {"prompt": "Image 1 smiles", "duration": 2}]  # $0.20 each at 720p


def _sequence(**extra) -> dict:
    return {"shots": SHOTS, "provider": "dashscope", "resolution": "720p", "continuity": False,
            "characters": ["alice"], **extra}


async def test_a_second_sequence_counts_the_first_ones_planned_shots_against_the_daily_cap(ds_settings, dashscope,
                                                                                           refs):
    dashscope.timing = Timing(pending=30.0, running=1.0)  # the first sequence's shots stay unfinished
    shots = [{"prompt": f"@alice takes {i}", "duration": 2} for i in range(3)]  # $0.60 the sequence
    settings = _capped(ds_settings, max_cost_per_day_usd=1.0)
    async with Client(build_server(settings)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        first = await call(client, "generate_sequence", _sequence(shots=shots, continuity=True, wait_seconds=0))
        assert not first["isError"], text(first)
        second = await call(client, "generate_sequence", _sequence(shots=shots))
        assert second["isError"]
        assert text(second) == (
            "Error executing tool generate_sequence: [over_budget] for the whole sequence of 3 shots, the estimated "
            "cost $0.60 would bring the last 24 hours to $1.20. Limit: $1.00 per day, counting the shots running "
            "sequences still plan (WAN_R2V_MAX_COST_PER_DAY). Fix: wait until earlier tasks fall out of the 24-hour "
            "window, or raise the cap.")
        single = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": URL_REF,
                                                     "resolution": "720p", "duration": 5, "wait_seconds": 0})
        assert "[over_budget]" in text(single) and "to $1.10" in text(single)  # $0.60 planned + $0.50
        view = (await call(client, "get_task", {"task_id": first["structuredContent"]["task_id"],
                                                "wait_seconds": 0}))["structuredContent"]
        # Shot 1 is being made (or about to be), shots 2 and 3 wait for it: the whole is made plus planned.
        assert view["cost_made_usd"] + view["cost_planned_usd"] == pytest.approx(0.6) == view["cost_estimate_usd"]
    assert [c["input"]["prompt"] for c in creates(dashscope)] in ([], ["Image 1 takes 0"])  # the first's shot 1 only


async def test_redos_count_against_the_per_task_cap_of_the_whole_sequence(ds_settings, dashscope, refs):
    settings = _capped(ds_settings, max_cost_per_task_usd=0.8)
    async with Client(build_server(settings)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        started = await call(client, "generate_sequence", _sequence(
            shots=[{"prompt": "@alice walks in", "duration": 2}, {"prompt": "@alice sits", "duration": 2},
                   {"prompt": "@alice smiles", "duration": 2}]))
        seq = started["structuredContent"]["task_id"]
        done = await finish(client, seq)
        assert done["structuredContent"]["status"] == "succeeded"
        assert done["structuredContent"]["cost_estimate_usd"] == pytest.approx(0.6)
        redo = await call(client, "redo_shot", {"task_id": seq, "shot": 2, "wait_seconds": 0})
        assert not redo["isError"], text(redo)
        done = await finish(client, seq)
        view = done["structuredContent"]
        assert view["status"] == "succeeded" and view["cost_estimate_usd"] == pytest.approx(0.8)
        assert "Estimated cost $0.80 for the takes made (redos included)." in text(done)
        again = await call(client, "redo_shot", {"task_id": seq, "shot": 3})
        assert text(again) == (
            "Error executing tool redo_shot: [over_budget] for shot 3's new take, the estimated cost $0.20 (with the "
            "$0.80 its sequence has made and still plans, $1.00) is over the per-task cap. Limit: $0.80 per task, a "
            "sequence or group of takes counting as one (WAN_R2V_MAX_COST_PER_TASK). Fix: ask for fewer seconds or 720p, or raise the "
            "cap.")
        after = await call(client, "get_task", {"task_id": seq})
        assert after["structuredContent"]["status"] == "succeeded"  # the refused redo changed nothing
    assert len(creates(dashscope)) == 4


# ------------------------------------------------------------------ a shot pays only for what it names

async def test_a_shot_gets_only_the_characters_it_names(ds_settings, dashscope, refs):
    async with Client(build_server(ds_settings)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        await call(client, "save_character", {"name": "bob", "reference": str(refs["img2"])})
        shots = [{"prompt": "@alice walks in", "duration": 2}, {"prompt": "@bob waves at @alice", "duration": 2},
                 {"prompt": "@alice smiles", "duration": 2}]
        r = await call(client, "generate_sequence", {"shots": shots, "characters": ["alice", "bob"],
                                                     "provider": "dashscope", "continuity": False, "dry_run": True})
    view = r["structuredContent"]
    prompts = [p["input"]["prompt"] for p in view["shot_payloads"]]
    assert prompts == ["Image 1 walks in", "Image 2 waves at Image 1", "Image 1 smiles"]
    assert [len(p["input"]["media"]) for p in view["shot_payloads"]] == [1, 2, 1]
    assert view["cost_estimate_usd"] == pytest.approx(0.15 * 6)


async def test_five_characters_with_continuity_are_refused_before_any_shot_is_paid(ds_settings, dashscope, refs,
                                                                                   dirs):
    names = ["ann", "ben", "cat", "dan", "eve"]
    async with Client(build_server(ds_settings)) as client:
        for i, name in enumerate(names):
            path = media.image(dirs["refs"] / f"{name}.png", 320 + 8 * i, 320)
            await call(client, "save_character", {"name": name, "reference": str(path)})
        together = " and ".join(f"@{n}" for n in names)
        r = await call(client, "generate_sequence", {
            "shots": [{"prompt": f"{together} meet", "duration": 2}, {"prompt": f"{together} part", "duration": 2}],
            "characters": names, "provider": "dashscope"})
    assert text(r) == (
        "Error executing tool generate_sequence: [invalid_input] shots[1].continuity: shot 2 opens on the last frame "
        "of shot 1: with a first frame, DashScope takes at most 4 references, and this request has 5. Limit: 5 media "
        "items in all on dashscope, the first frame counted (the host's schema caps the list; whether the frame "
        "counts is not confirmed, so the stricter reading is used). Fix: name fewer characters in this shot, or pass "
        "continuity=\"clip\" or \"none\".")
    assert creates(dashscope) == [] and dashscope.uploaded == {}


@pytest.mark.long
async def test_a_redo_beside_a_redo_waits_for_the_shot_it_opens_on(ds_settings, dashscope, refs):
    async with Client(build_server(ds_settings)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        shots = [{"prompt": f"@alice step {i}", "duration": 2} for i in range(3)]
        seq = (await call(client, "generate_sequence", {"shots": shots, "characters": ["alice"],
                                                        "provider": "dashscope"}))["structuredContent"]["task_id"]
        assert (await finish(client, seq))["structuredContent"]["status"] == "succeeded"
        dashscope.timing = Timing(pending=1.0, running=1.0)
        assert not (await call(client, "redo_shot", {"task_id": seq, "shot": 2}))["isError"]
        third = await call(client, "redo_shot", {"task_id": seq, "shot": 3})  # as the first redo's warning invites
        assert not third["isError"], text(third)
        done = await finish(client, seq)
    view = done["structuredContent"]
    assert view["status"] == "succeeded", view
    assert [len(s["earlier_task_ids"]) for s in view["shots"]] == [0, 1, 1]
    assert len(creates(dashscope)) == 5
    # Shot 3's new take opened on the last frame of shot 2's new take: it was made after it.
    shot2, shot3 = (await _task_rows(ds_settings, [view["shots"][1]["task_id"], view["shots"][2]["task_id"]]))
    assert shot3["created_at"] > shot2["finished_at"]


async def _task_rows(settings, task_ids: list[str]) -> list[dict]:
    with sqlite3.connect(settings.data.ledger) as db:
        db.row_factory = sqlite3.Row
        return [dict(db.execute("SELECT * FROM tasks WHERE task_id = ?", (t,)).fetchone()) for t in task_ids]


async def test_a_stitch_reports_its_parts_providers_and_offers_no_redo(ds_settings, dashscope, refs):
    async with Client(build_server(ds_settings)) as client:
        ids = []
        for provider in ("dashscope", "preview"):
            r = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "reference_images": [str(refs["img1"])],
                                                    "provider": provider, "duration": 2, "wait_seconds": 30})
            assert r["structuredContent"]["status"] == "succeeded", r
            ids.append(r["structuredContent"]["task_id"])
        done = await call(client, "stitch", {"task_ids": ids})
    view = done["structuredContent"]
    assert view["status"] == "succeeded" and view["provider"] == "dashscope+preview" and view["stitched"]
    assert text(done).startswith(f"Sequence {view['task_id']} succeeded on dashscope+preview: 2 videos stitched")
    assert "redo_shot" not in text(done)
    assert "Offline preview" in text(done)  # one of its parts is the preview's, and it says so


# ------------------------------------------------------------------ what DashScope cannot take is fixed before paying

async def test_a_png_with_an_alpha_channel_is_flattened_before_it_is_uploaded(ds_settings, dashscope, dirs):
    from PIL import Image

    path = dirs["refs"] / "cutout.png"
    cutout = Image.new("RGBA", (320, 320), (0, 0, 0, 0))
    cutout.paste((200, 30, 30, 255), (80, 80, 240, 240))
    cutout.save(path)
    before = path.read_bytes()
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "reference_images": [str(path)],
                                                "wait_seconds": 20})
    view = r["structuredContent"]
    assert view["status"] == "succeeded", view
    assert view["warnings"] == ["Image 1 has an alpha channel, which DashScope's schema does not take; it was "
                                "flattened onto white for upload (your file is unchanged). Fix: pass an image without "
                                "transparency to choose the background yourself."]
    (sent,) = dashscope.uploaded.values()
    received = Image.open(io.BytesIO(sent["content"]))
    assert received.mode == "RGB" and received.getpixel((0, 0)) == (255, 255, 255)
    assert received.getpixel((160, 160)) == (200, 30, 30)
    assert path.read_bytes() == before
    assert not list((dirs["data"] / "tmp").iterdir())  # the flattened copy left nothing behind


# ------------------------------------------------------------------ work lost with a killed process

async def test_a_preview_killed_while_saving_its_render_is_rendered_again(settings, refs, dirs):
    # The state a kill -9 leaves while a preview was "downloading": the render moved away, the process gone.
    async with Client(build_server(settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "reference_images": [str(refs["img1"])],
                                                "duration": 2, "wait_seconds": 30})
    first = r["structuredContent"]
    assert first["status"] == "succeeded"
    Path(first["local_path"]).unlink()
    with sqlite3.connect(settings.data.ledger) as db:
        db.execute("UPDATE tasks SET phase = 'downloading', status = 'running', local_path = NULL WHERE task_id = ?",
                   (first["task_id"],))
    async with Client(build_server(settings)) as client:
        again = await finish(client, first["task_id"])
    view = again["structuredContent"]
    assert view["status"] == "succeeded", view
    assert Path(view["local_path"]).is_file() and view["output"]["seconds"] == pytest.approx(2, abs=0.2)
