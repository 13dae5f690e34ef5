"""Takes (issue #23): one request made several times over, each take a task of its own with its own seed, under one
group id; the contact sheet shows them side by side; pick_take chooses the group's video, or a sequence shot's take
(the sequence joins again); the caps, the dry run and the duplicate guard count the takes as one request."""

from __future__ import annotations

import base64
from pathlib import Path

import anyio
import pytest
from conftest import call, finish, text
from emulators.dashscope import Timing
from mcp import Client
from PIL import Image

from wan_r2v_mcp.server import build_server

pytestmark = pytest.mark.anyio

URL_REF = ["https://cdn.example.com/a.png"]


def creates(dashscope) -> list[dict]:
    return [c.json for c in dashscope.calls(method="POST") if dashscope.name_of(c) == "create"]


def frames(path: Path) -> list:
    import av

    with av.open(str(path)) as c:
        return [f.to_image() for f in c.decode(c.streams.video[0])]


def difference(a, b) -> float:
    from PIL import ImageChops, ImageStat

    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


async def test_three_takes_are_three_tasks_with_their_own_seeds_one_group_and_a_contact_sheet(ds_settings, dashscope,
                                                                                              refs, dirs):
    dashscope.render_results = True  # each job's own video
    async with Client(build_server(ds_settings)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        ask = {"prompt": "@alice waves", "characters": ["alice"], "provider": "dashscope", "resolution": "720p",
               "duration": 2, "variants": 3, "seed": 41}
        dry = (await call(client, "generate_r2v", {**ask, "dry_run": True}))["structuredContent"]
        assert [(t["take"], t["seed"]) for t in dry["takes"]] == [(1, 41), (2, 42), (3, 43)]
        assert [p["parameters"]["seed"] for p in dry["shot_payloads"]] == [41, 42, 43]
        assert dry["cost_estimate_usd"] == pytest.approx(3 * dry["takes"][0]["cost_estimate_usd"])
        assert creates(dashscope) == []
        started = await call(client, "generate_r2v", {**ask, "wait_seconds": 0})
        group = started["structuredContent"]["task_id"]
        assert group.startswith("tk_") and len(started["structuredContent"]["takes"]) == 3
        done = await finish(client, group)
        again = await call(client, "generate_r2v", {**ask, "wait_seconds": 0})  # the same request: the same group
    view = done["structuredContent"]
    assert view["status"] == "succeeded", text(done)
    assert [(t["take"], t["status"], t["seed"], t["picked"]) for t in view["takes"]] == [
        (1, "succeeded", 41, True), (2, "succeeded", 42, False), (3, "succeeded", 43, False)]
    assert sorted(c["parameters"]["seed"] for c in creates(dashscope)) == [41, 42, 43]  # what the host received
    assert len({t["task_id"] for t in view["takes"]}) == 3 and view["local_path"] == view["takes"][0]["local_path"]
    assert view["cost_estimate_usd"] == pytest.approx(dry["cost_estimate_usd"]) == view["cost_made_usd"]
    assert again["structuredContent"]["task_id"] == group and again["structuredContent"]["duplicate"] is True
    assert len(creates(dashscope)) == 3
    sheet = Path(view["contact_sheet_path"])
    assert sheet.parent == dirs["out"] and sheet.stat().st_size <= 1_000_000
    inline = [c for c in done["content"] if c["type"] == "image"][-1]
    assert base64.b64decode(inline["data"]) == sheet.read_bytes()  # the sheet itself, inline
    with Image.open(sheet) as im:
        assert im.format == "JPEG" and im.size == (150 + 240 * 5, 28 + 135 * 3)  # label, @alice, 4 moments; 3 rows
        # each take's row shows its own video at 37% of its length
        for row, take in enumerate(view["takes"]):
            cell = im.crop((150 + 240 * 2, 28 + 135 * row, 150 + 240 * 3, 28 + 135 * (row + 1)))
            picture = frames(Path(take["local_path"]))
            expected = picture[round(0.37 * (len(picture) - 1))].resize((240, 135))
            assert difference(cell, expected) < 12.0, row
    assert "Contact sheet (the takes side by side)" in text(done) and "take 2 (seed 42) succeeded" in text(done)


async def test_the_caps_count_every_take_and_a_refused_group_sends_nothing(ds_settings, dashscope):
    settings = ds_settings.model_copy(update={"max_cost_per_task_usd": 0.5})
    async with Client(build_server(settings)) as client:
        one = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "reference_images": URL_REF,
                                                  "provider": "dashscope", "resolution": "720p", "duration": 2,
                                                  "dry_run": True})
        assert not one["isError"] and one["structuredContent"]["cost_estimate_usd"] == pytest.approx(0.2)
        r = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "reference_images": URL_REF,
                                                "provider": "dashscope", "resolution": "720p", "duration": 2,
                                                "variants": 3})
        assert text(r) == ("Error executing tool generate_r2v: [over_budget] for the 3 takes, the estimated cost $0.60 "
                           "is over the per-task cap. Limit: $0.50 per task, a sequence or group of takes counting as one "
                           "(WAN_R2V_MAX_COST_PER_TASK). Fix: ask for fewer seconds or 720p, or raise the cap.")
        listed = await call(client, "list_tasks", {})
        bad = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": URL_REF, "variants": 5})
    assert listed["structuredContent"]["total"] == 0 and creates(dashscope) == [] and dashscope.uploaded == {}
    assert text(bad) == ("Error executing tool generate_r2v: [invalid_input] variants: is 5. Limit: 1 to 4. Fix: use a "
                         "value from 1 to 4.")


async def test_canceling_a_group_stops_the_takes_not_done(ds_settings, dashscope):
    dashscope.timing = Timing(pending=30.0, running=30.0)
    async with Client(build_server(ds_settings)) as client:
        started = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "reference_images": URL_REF,
                                                      "provider": "dashscope", "duration": 2, "variants": 2,
                                                      "wait_seconds": 0})
        group = started["structuredContent"]["task_id"]
        with anyio.fail_after(20):  # both takes are at the host
            while True:
                views = [(await call(client, "get_task", {"task_id": t["task_id"], "wait_seconds": 0}))[
                    "structuredContent"] for t in started["structuredContent"]["takes"]]
                if all(v["provider_task_id"] for v in views):
                    break
                await anyio.sleep(0.05)
        canceled = await call(client, "cancel_task", {"task_id": group})
        ended = await finish(client, group)
    assert canceled["structuredContent"]["status"] == "canceled"
    assert [t["status"] for t in ended["structuredContent"]["takes"]] == ["canceled", "canceled"]
    assert [c.path.endswith("/cancel") for c in dashscope.calls(method="POST")].count(True) == 2


async def test_a_pick_is_the_groups_video_and_survives_a_restart(settings, refs):
    ask = {"prompt": "Image 1 waves", "reference_images": [str(refs["img1"])], "resolution": "720p", "duration": 2,
           "variants": 2}
    async with Client(build_server(settings)) as client:
        group = (await call(client, "generate_r2v", ask))["structuredContent"]["task_id"]
        done = (await finish(client, group))["structuredContent"]
        picked = await call(client, "pick_take", {"task_id": group, "take": 2})
        wrong = await call(client, "pick_take", {"task_id": group, "take": 3})
        single = await call(client, "pick_take", {"task_id": done["takes"][0]["task_id"], "take": 1})
        joined = await call(client, "stitch", {"task_ids": [group, done["takes"][0]["task_id"]]})  # the pick, then 1
        stitched = await call(client, "pick_take", {"task_id": joined["structuredContent"]["task_id"], "take": 1})
    assert picked["structuredContent"]["local_path"] == done["takes"][1]["local_path"]
    assert text(wrong) == ("Error executing tool pick_take: [invalid_input] take: is 3. Limit: 1-2: this group has 2 "
                           "takes. Fix: pick one that get_task lists.")
    assert text(single).startswith(f"Error executing tool pick_take: [invalid_input] task_id: "
                                   f"{done['takes'][0]['task_id']} is a single task")
    assert joined["structuredContent"]["status"] == "succeeded", text(joined)
    assert joined["structuredContent"]["output"]["seconds"] == 4.0
    assert text(stitched) == (f"Error executing tool pick_take: [invalid_input] task_id: "
                              f"{joined['structuredContent']['task_id']} is a stitch of finished videos: it has no "
                              "takes. Fix: pick a take of a sequence or of a group of takes.")
    async with Client(build_server(settings)) as client:  # a new server on the same data folder
        after = (await call(client, "get_task", {"task_id": group}))["structuredContent"]
    assert [t["picked"] for t in after["takes"]] == [False, True]
    assert after["local_path"] == done["takes"][1]["local_path"]


async def test_a_sequence_shot_uses_the_picked_take_and_joins_again_with_its_frames(ds_settings, dashscope, refs):
    """The issue's figure: a 2-shot sequence with 2 takes of each shot, one pick changed: the joined video's first and
    last frame of each part are the picked takes'; each take has its own seed; the caps count every take."""
    dashscope.render_results = True
    async with Client(build_server(ds_settings)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        shots = [{"prompt": "@alice walks", "duration": 2, "variants": 2},
                 {"prompt": "@alice sits", "duration": 2, "variants": 2}]
        ask = {"shots": shots, "characters": ["alice"], "provider": "dashscope", "resolution": "720p",
               "continuity": "none", "seed": 7}
        dry = (await call(client, "generate_sequence", {**ask, "dry_run": True}))["structuredContent"]
        seq = (await call(client, "generate_sequence", ask))["structuredContent"]["task_id"]
        finished = await finish(client, seq)
        before = finished["structuredContent"]
        picked = await call(client, "pick_take", {"task_id": seq, "shot": 1, "take": 1})
        joined = (await finish(client, seq))["structuredContent"]
        missing = await call(client, "pick_take", {"task_id": seq, "take": 1})
    assert dry["cost_estimate_usd"] == pytest.approx(4 * 0.2) and [s["cost_estimate_usd"] for s in dry["shots"]] == [
        pytest.approx(0.4), pytest.approx(0.4)]
    assert sorted(c["parameters"]["seed"] for c in creates(dashscope)) == [7, 7, 8, 8]  # each shot's takes: 7 and 8
    assert not picked["isError"], text(picked)
    first_take = before["shots"][0]["earlier_task_ids"][0]
    assert joined["shots"][0]["task_id"] == first_take != before["shots"][0]["task_id"]
    assert joined["shots"][1]["task_id"] == before["shots"][1]["task_id"]
    assert joined["stage"].startswith("joined 2 shots")
    whole = frames(Path(joined["local_path"]))
    parts = [frames(Path(s["local_path"])) for s in joined["shots"]]
    assert len(whole) == sum(len(p) for p in parts)
    cut = len(parts[0])
    for got, want in ((whole[0], parts[0][0]), (whole[cut - 1], parts[0][-1]), (whole[cut], parts[1][0]),
                      (whole[-1], parts[1][-1])):
        assert difference(got, want) < 1.0
    unpicked = frames(Path(before["shots"][0]["local_path"]))
    assert difference(whole[0], unpicked[0]) > 1.0  # the takes differ: the pick changed the joined video
    assert joined["cost_made_usd"] == pytest.approx(4 * 0.2)  # what was made: both takes of both shots
    # one sheet of every shot's takes, before any pick: a row per take, at the same moments, beside @alice
    sheet = Path(before["contact_sheet_path"])
    assert sheet.name == f"{seq}-sheet.jpg" and joined["contact_sheet_path"] == str(sheet)
    inline = [c for c in finished["content"] if c["type"] == "image"][-1]
    assert base64.b64decode(inline["data"]) == sheet.read_bytes()
    takes = [(s, t) for s in before["shots"] for t in [*s["earlier_task_ids"], s["task_id"]]]
    with Image.open(sheet) as im:
        assert im.size == (150 + 240 * 5, 28 + 135 * 4)
        for row, (shot, task_id) in enumerate(takes):
            cell = im.crop((150 + 240 * 2, 28 + 135 * row, 150 + 240 * 3, 28 + 135 * (row + 1)))
            path = shot["local_path"] if task_id == shot["task_id"] else joined["shots"][0]["local_path"]
            picture = frames(Path(path))
            assert difference(cell, picture[round(0.37 * (len(picture) - 1))].resize((240, 135))) < 12.0, row
    assert "Contact sheet (the takes side by side)" in text(finished)
    assert text(missing) == ("Error executing tool pick_take: [invalid_input] shot: is missing. Limit: 1-2 for this "
                             "sequence. Fix: name the shot whose take to use (get_task lists each shot's takes).")


@pytest.mark.long
async def test_a_sequence_waits_for_every_take_and_a_failed_take_gives_way_to_one_that_succeeds(ds_settings, dashscope,
                                                                                                refs):
    """Shot 1's newest take fails and shot 2's succeeds while each shot's first take is still being made: the sequence
    neither fails nor joins until those end, then shot 1 uses its take that succeeded."""
    # Each take by its seed (a shot's takes count up from its seed), whatever order they are sent in: shot 1's first
    # take is held and then succeeds, its second fails at once; shot 2's first is held, its second succeeds at once.
    rule = {100: (3600.0, "SUCCEEDED"), 101: (0.0, "FAILED"), 200: (3600.0, "SUCCEEDED"), 201: (0.0, "SUCCEEDED")}

    def shape(job):
        job.pending, (job.running, job.outcome) = 0.0, rule[job.body["parameters"]["seed"]]

    dashscope.shape_job = shape
    async with Client(build_server(ds_settings)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        ask = {"shots": [{"prompt": "@alice walks", "duration": 2, "variants": 2, "seed": 100},
                         {"prompt": "@alice sits", "duration": 2, "variants": 2, "seed": 200}],
               "characters": ["alice"], "provider": "dashscope", "resolution": "720p", "continuity": "none"}
        started = await call(client, "generate_sequence", {**ask, "wait_seconds": 0})
        assert not started["isError"], text(started)
        seq = started["structuredContent"]["task_id"]
        while len(creates(dashscope)) < 4:
            await call(client, "get_task", {"task_id": seq, "wait_seconds": 5})
        view = (await call(client, "get_task", {"task_id": seq, "wait_seconds": 0}))["structuredContent"]
        newest = [s["task_id"] for s in view["shots"]]
        ended = [(await finish(client, t))["structuredContent"]["status"] for t in newest]
        meanwhile = (await call(client, "get_task", {"task_id": seq, "wait_seconds": 0}))["structuredContent"]
        for job in dashscope.tasks.values():
            job.running = 0.0  # the first takes finish
        done = (await finish(client, seq))["structuredContent"]
    assert ended == ["failed", "succeeded"]
    assert meanwhile["status"] == "running", meanwhile["stage"]
    assert done["status"] == "succeeded", done
    assert done["shots"][0]["task_id"] == view["shots"][0]["earlier_task_ids"][0]  # its take that succeeded
    assert done["shots"][1]["task_id"] == newest[1]
    assert done["output"]["seconds"] == 4.0


async def test_a_sequence_pick_made_just_before_a_restart_is_joined_by_the_next_server(ds_settings, dashscope, refs):
    """A pick is in the ledger before its answer: a server whose client waits for nothing takes it and stops at once
    (its join of the sequence again has not run, or not to its end), and the next server on the same data folder
    joins the sequence with the picked take."""
    dashscope.render_results = True  # each take its own colours (by seed)
    ask = {"shots": [{"prompt": "@alice walks", "duration": 2, "variants": 2}, {"prompt": "@alice sits", "duration": 2}],
           "characters": ["alice"], "provider": "dashscope", "resolution": "720p", "continuity": "none", "seed": 21}
    async with Client(build_server(ds_settings)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        seq = (await call(client, "generate_sequence", ask))["structuredContent"]["task_id"]
        before = (await finish(client, seq))["structuredContent"]
    async with Client(build_server(ds_settings.model_copy(update={"quiet_wait_seconds": 0.01}))) as client:
        picked = await call(client, "pick_take", {"task_id": seq, "shot": 1, "take": 1})
    assert not picked["isError"], text(picked)
    first_take = before["shots"][0]["earlier_task_ids"][0]
    async with Client(build_server(ds_settings)) as client:  # a new server on the same data folder
        after = (await finish(client, seq))["structuredContent"]
    assert after["status"] == "succeeded" and after["shots"][0]["task_id"] == first_take, after["stage"]
    whole = frames(Path(after["local_path"]))
    part = frames(Path(after["shots"][0]["local_path"]))
    unpicked = frames(Path(before["shots"][0]["local_path"]))
    assert difference(whole[0], part[0]) < 1.0 and difference(whole[len(part) - 1], part[-1]) < 1.0
    assert difference(whole[0], unpicked[0]) > 1.0  # the picked take, not the one joined before
    assert len(creates(dashscope)) == 3  # nothing made again: two takes of shot 1, one of shot 2
