"""A whole generation on the offline preview, through an MCP client, as an agent would do it."""

from __future__ import annotations

import json
from pathlib import Path

import media
import pytest
from conftest import ONE_ERA, call, finish, text
from mcp import Client

from wan_r2v_mcp.schema import PIXEL_SIZES
from wan_r2v_mcp.server import build_server
from wan_r2v_mcp.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio


@ONE_ERA
async def test_preview_generation_lands_a_real_mp4_with_the_requested_size_rate_and_length(client, refs, dirs):
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress, total, message):
        seen.append((progress, total, message))

    result = await call(client, "generate_r2v", {
        "prompt": "Image 1 waves at Video 1 in the cafe of Image 2",
        "reference_images": [str(refs["img1"]), str(refs["img2"])],
        "reference_videos": [str(refs["vid1"])],
        "first_frame": str(refs["img1"]),
        "voices": {"Video 1": str(refs["voice"])},
        "resolution": "720p", "aspect_ratio": "9:16", "duration": 3, "wait_seconds": 45,
    }, progress_callback=on_progress)

    assert result["isError"] is False
    view = result["structuredContent"]
    assert view["status"] == "succeeded" and view["provider"] == "preview"
    assert [(r["label"], r["role"], r["kind"]) for r in view["references"]] == [
        ("First frame", "first_frame", "image"),
        ("Image 1", "reference_image", "image"),
        ("Image 2", "reference_image", "image"),
        ("Video 1", "reference_video", "video"),
        ("Voice of Video 1", "voice", "audio"),
    ]
    local = Path(view["local_path"])
    assert local == dirs["out"] / f"{view['task_id']}.mp4"
    # As the model does, the output takes the first frame's shape (640x480: 4:3), not aspect_ratio's 9:16.
    assert media.decode(local) == {"width": 1104, "height": 832, "fps": 30.0, "duration": 3.0, "frames": 90,
                                   "codec": "h264"}
    assert "not Wan 2.7 output" in view["notice"] and "not Wan 2.7 output" in text(result)
    assert text(result).startswith(f"Task {view['task_id']} succeeded on preview: video (1104x832, 3 s) saved to {local}.")

    link = result["content"][1]
    assert link == {"type": "resource_link", "uri": f"r2v://tasks/{view['task_id']}/video", "name": local.name,
                    "title": f"Video of task {view['task_id']}", "mimeType": "video/mp4", "size": local.stat().st_size}
    assert (await client.read_resource(link["uri"])).contents[0].blob  # the link is one the server really serves
    assert result["content"][2]["type"] == "image" and result["content"][2]["mimeType"] == "image/jpeg"

    sidecar = json.loads((dirs["out"] / f"{view['task_id']}.json").read_text())
    assert sidecar["task_id"] == view["task_id"] and sidecar["provider"] == "preview"
    assert sidecar["request"]["prompt"] == "Image 1 waves at Video 1 in the cafe of Image 2"
    assert [r["label"] for r in sidecar["references"]] == [r["label"] for r in view["references"]]
    assert sidecar["provider_task_id"] == view["provider_task_id"] and sidecar["finished_at"]
    assert Path(view["poster_path"]).read_bytes()[:3] == b"\xff\xd8\xff"

    assert len(seen) >= 2, seen
    values = [p for p, _, _ in seen]
    assert values == sorted(values) and len(set(values)) == len(values)  # progress only ever increases
    assert all(total == 100.0 for _, total, _ in seen)
    assert any("rendering frame" in (m or "") for _, _, m in seen)


@pytest.mark.parametrize("resolution", ["720p", "1080p"])
@pytest.mark.parametrize("ratio", ["16:9", "1:1", "4:3"])
async def test_every_output_size_matches_the_models_table(settings, refs, resolution, ratio):
    async with Client(build_server(settings)) as client:
        result = await call(client, "generate_r2v", {
            "prompt": "Image 1 turns around", "reference_images": [str(refs["img1"])],
            "resolution": resolution, "aspect_ratio": ratio, "duration": 2, "wait_seconds": 45})
    decoded = media.decode(Path(result["structuredContent"]["local_path"]))
    assert (decoded["width"], decoded["height"]) == PIXEL_SIZES[(resolution, ratio)]
    assert decoded["frames"] == 60 and decoded["fps"] == 30.0


async def test_without_waiting_a_task_id_comes_back_at_once_and_get_task_waits_for_the_end(client, refs):
    first = await call(client, "generate_r2v", {"prompt": "Image 1 smiles", "reference_images": [str(refs["img1"])], "wait_seconds": 0,
                                                "resolution": "720p", "duration": 2})
    view = first["structuredContent"]
    assert view["status"] in ("queued", "running")
    assert f'get_task(task_id="{view["task_id"]}", wait_seconds=50)' in text(first)

    progress: list[str] = []

    async def on_progress(p, t, m):
        progress.append(m)

    done = await call(client, "get_task", {"task_id": view["task_id"], "wait_seconds": 45}, progress_callback=on_progress)
    assert done["structuredContent"]["status"] == "succeeded"
    assert Path(done["structuredContent"]["local_path"]).exists()

    listed = await call(client, "list_tasks", {})
    assert listed["structuredContent"]["total"] == 1
    assert listed["structuredContent"]["tasks"][0]["task_id"] == view["task_id"]
    assert text(listed).startswith("1 of 1 task(s), newest first:\n- " + view["task_id"] + " [succeeded] preview")


async def test_dry_run_labels_and_shows_the_payload_but_records_and_renders_nothing(client, refs, dirs):
    result = await call(client, "generate_r2v", {
        "prompt": "Video 1 hands Image 1 a cup", "reference_images": [str(refs["img1"])],
        "reference_videos": [str(refs["vid1"])], "duration": 4, "dry_run": True})
    view = result["structuredContent"]
    assert result["isError"] is False and view["dry_run"] is True and view["task_id"] == "dry-run"
    assert view["payload"]["media"] == [
        {"type": "reference_image", "label": "Image 1", "url": str(refs["img1"])},
        {"type": "reference_video", "label": "Video 1", "url": str(refs["vid1"])},
    ]
    assert (view["payload"]["width"], view["payload"]["height"], view["payload"]["duration"]) == (1920, 1080, 4)
    assert view["billable_seconds"] == 6.0  # 2 s of reference video (under the 5 s cap) + 4 s out
    assert text(result).startswith("Dry run on preview: nothing uploaded or submitted. References: Image 1 = ")
    listed = await call(client, "list_tasks", {})
    assert listed["structuredContent"]["total"] == 0
    assert list(dirs["out"].iterdir()) == []


async def test_a_task_survives_a_restart_and_the_next_server_finishes_it(settings, refs, dirs):
    async with Client(build_server(settings)) as first:
        started = await call(first, "generate_r2v", {"prompt": "Image 1 spins", "reference_images": [str(refs["img1"])], "wait_seconds": 0,
                                                     "resolution": "720p", "duration": 3})
    task_id = started["structuredContent"]["task_id"]
    assert started["structuredContent"]["status"] == "queued"  # wait 0: answered once recorded
    store = SQLiteStore(settings.data.ledger)
    assert store.get(task_id).phase == "running"  # the stopping server let its render start (the host has it)
    store.close()
    assert not (dirs["out"] / f"{task_id}.mp4").exists()  # the first server stopped mid-render

    async with Client(build_server(settings)) as second:
        listed = await call(second, "list_tasks", {})
        assert [t["task_id"] for t in listed["structuredContent"]["tasks"]] == [task_id]
        done = await finish(second, task_id)
    assert done["structuredContent"]["status"] == "succeeded"
    assert media.decode(dirs["out"] / f"{task_id}.mp4")["frames"] == 90


async def test_cancel_stops_a_render_and_cancelling_again_changes_nothing(client, refs, dirs):
    started = await call(client, "generate_r2v", {"prompt": "Image 1 jumps", "reference_images": [str(refs["img1"])], "wait_seconds": 0,
                                                  "duration": 15})
    task_id = started["structuredContent"]["task_id"]
    canceled = await call(client, "cancel_task", {"task_id": task_id})
    assert canceled["structuredContent"]["status"] == "canceled"
    assert text(canceled) == f"Task {task_id} was canceled."
    again = await call(client, "cancel_task", {"task_id": task_id})
    assert again["structuredContent"]["status"] == "canceled"
    assert again["structuredContent"]["finished_at"] == canceled["structuredContent"]["finished_at"]
    waited = await call(client, "get_task", {"task_id": task_id, "wait_seconds": 1})
    assert waited["structuredContent"]["status"] == "canceled"
    assert not (dirs["out"] / f"{task_id}.mp4").exists()


async def test_a_remote_reference_becomes_a_title_card_in_the_preview(client, refs):
    result = await call(client, "generate_r2v", {
        "prompt": "Image 1 meets Image 2", "reference_images": [str(refs["img1"]), "https://example.com/bob.png"],
        "resolution": "720p", "duration": 2, "wait_seconds": 45})
    view = result["structuredContent"]
    assert view["status"] == "succeeded"
    assert view["references"][1]["location"] == "url" and view["references"][1]["kind"] == "image"


async def test_task_resources_serve_the_task_view(client, refs):
    started = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": [str(refs["img1"])],
                                                  "resolution": "720p", "duration": 2, "wait_seconds": 45})
    task_id = started["structuredContent"]["task_id"]
    read = await client.read_resource(f"r2v://tasks/{task_id}")
    assert json.loads(read.contents[0].text)["status"] == "succeeded"
    listing = await client.read_resource("r2v://tasks")
    assert json.loads(listing.contents[0].text)["tasks"][0]["task_id"] == task_id


@ONE_ERA
async def test_previews_asked_for_together_render_in_turn_and_each_says_how_many_are_ahead(client):
    """x264 spreads one render over every core: more at once would finish no sooner and starve the tool calls."""
    from wan_r2v_mcp.providers.preview import RENDERS_AT_ONCE

    count = RENDERS_AT_ONCE + 2
    tasks = [(await call(client, "generate_t2v", {"prompt": f"a kite number {n} climbs", "resolution": "720p",
                                                  "duration": 2, "wait_seconds": 0}))["structuredContent"]["task_id"]
             for n in range(count)]
    stages: list[str] = []

    async def on_progress(progress, total, message):
        if not stages or stages[-1] != message:
            stages.append(message)

    last = await call(client, "get_task", {"task_id": tasks[-1], "wait_seconds": 45}, progress_callback=on_progress)
    assert last["structuredContent"]["status"] == "succeeded"
    # "queued: waiting its turn: 2 preview(s) render before it; 0%, waited 0s of 45s", then "running: rendering ..."
    said = [message.split(": ", 1)[1].split(";")[0] for message in stages]
    waiting = [s for s in said if s.startswith("waiting its turn")]
    rendering = [i for i, s in enumerate(said) if s.startswith("rendering frame")]
    # It waited for the renders before it, counting down, and rendered only once none was ahead of it.
    assert waiting and waiting[0] in {f"waiting its turn: {n} preview(s) render before it" for n in range(1, count)}, \
        stages
    assert waiting == sorted(waiting, reverse=True) and said.index(waiting[-1]) < rendering[0], stages
    for task_id in tasks[:-1]:
        assert (await finish(client, task_id))["structuredContent"]["status"] == "succeeded"
