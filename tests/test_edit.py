"""edit_video: Wan 2.7 video editing on the same ledger, caps and task views, on every host with the body its docs
describe; one source clip and up to 4 reference images (1 on Replicate and fal), duration 0 keeping the whole clip,
input and output seconds billed."""

from __future__ import annotations

from pathlib import Path

import media
import pytest
from conftest import DASHSCOPE_KEY, call, finish, text
from mcp import Client
from pydantic import SecretStr

from wan_r2v_mcp.providers.host_settings import with_host
from wan_r2v_mcp.server import build_server

pytestmark = pytest.mark.anyio

V, I1, I2 = "https://cdn.example.com/walk.mp4", "https://cdn.example.com/coat.png", "https://cdn.example.com/hat.png"
PREFIX = "Error executing tool edit_video: [invalid_input] "


@pytest.fixture
def all_hosts(hosts_settings, dashscope):
    return with_host(hosts_settings, "dashscope", api_key=SecretStr(DASHSCOPE_KEY), base_url=dashscope.base_url)


async def test_the_preview_plays_the_source_with_the_prompt_and_bills_input_and_output(client, refs):
    r = await call(client, "edit_video", {"prompt": "Make it a watercolour, with the coat of Image 1",
                                          "video": str(refs["vid1"]), "reference_images": [str(refs["img1"])],
                                          "resolution": "720p", "wait_seconds": 30})
    view = r["structuredContent"]
    assert view["status"] == "succeeded", text(r)
    assert view["output"] == {"width": 1104, "height": 832, "seconds": 2.0}  # the 320x240 clip's 4:3, kept whole
    assert view["billable_seconds"] == 4.0  # the 2 s kept and the 2 s made
    assert [(x["label"], x["role"]) for x in view["references"]] == [("Source video", "video"),
                                                                     ("Image 1", "reference_image")]
    assert media.decode(Path(view["local_path"]))["width"] == 1104


DOCUMENTED = {
    "dashscope": {"model": "wan2.7-videoedit", "input": {
        "prompt": "Give her the coat", "negative_prompt": "blur", "media": [
            {"type": "video", "url": V}, {"type": "reference_image", "url": I1}]},
        "parameters": {"resolution": "720P", "ratio": "9:16", "duration": 4, "watermark": False, "seed": 3,
                       "audio_setting": "origin"}},
    "replicate": {"input": {"prompt": "Give her the coat", "video": V, "reference_image": I1, "resolution": "720p",
                            "audio_setting": "origin", "aspect_ratio": "9:16", "duration": 4, "seed": 3}},
    "fal": {"prompt": "Give her the coat", "video_url": V, "reference_image_url": I1, "resolution": "720p",
            "duration": 4, "audio_setting": "origin", "aspect_ratio": "9:16", "seed": 3},
    "inferencesh": {"app": "alibaba/wan-2-7-videoedit", "input": {
        "prompt": "Give her the coat", "negative_prompt": "blur", "video": V, "reference_images": [I1],
        "resolution": "720P", "audio_setting": "origin", "watermark": False, "ratio": "9:16", "duration": 4,
        "seed": 3}},
}


@pytest.mark.parametrize("host", list(DOCUMENTED))
async def test_each_host_gets_the_edit_body_its_docs_describe(all_hosts, host):
    args = {"prompt": "Give her the coat", "video": V, "reference_images": [I1], "resolution": "720p",
            "aspect_ratio": "9:16", "duration": 4, "audio_setting": "origin", "seed": 3, "provider": host,
            "dry_run": True}
    if host in ("dashscope", "inferencesh"):
        args["negative_prompt"] = "blur"
    async with Client(build_server(all_hosts)) as client:
        r = await call(client, "edit_video", args)
    assert r["isError"] is False, text(r)
    assert r["structuredContent"]["payload"] == DOCUMENTED[host]
    assert r["structuredContent"]["cost_estimate_usd"] == pytest.approx(0.80)  # (4 + 4) s at $0.10


async def test_dashscope_edits_a_local_clip_kept_whole(ds_settings, dashscope, refs, result_videos):
    async with Client(build_server(ds_settings)) as client:
        started = await call(client, "edit_video", {"prompt": "Make it night", "video": str(refs["vid1"]),
                                                    "provider": "dashscope", "wait_seconds": 0})
        assert started["isError"] is False, text(started)
        assert started["structuredContent"]["cost_estimate_usd"] == 0.6  # (2 + 2) s at $0.15 (1080p)
        done = await finish(client, started["structuredContent"]["task_id"])
    (create,) = dashscope.calls("/api/v1/services/aigc/video-generation/video-synthesis", "POST")
    (item,) = create.json["input"]["media"]
    assert item["type"] == "video" and item["url"].startswith("oss://dashscope-instant/wan2.7-videoedit/")
    assert create.json["parameters"] == {"resolution": "1080P", "duration": 0, "watermark": False,
                                         "audio_setting": "auto"}
    view = done["structuredContent"]
    assert view["status"] == "succeeded" and Path(view["local_path"]).read_bytes() == result_videos(5)
    assert view["warnings"] == []  # a kept clip's length is whatever the host made: nothing to differ from


async def test_what_an_edit_cannot_be_is_refused_before_anything_is_sent(all_hosts, dashscope, fal, refs):
    async with Client(build_server(all_hosts)) as client:
        async def refused(args: dict) -> str:
            r = await call(client, "edit_video", {"prompt": "Make it night", **args})
            assert r["isError"] is True
            return text(r)

        assert await refused({"provider": "fal", "video": V, "reference_images": [I1, I2]}) == (
            f"{PREFIX}reference_images: fal takes 1 reference image for an edit, and this one has 2. Limit: 1 on "
            "fal. Fix: keep the one that matters most, or use provider=dashscope or inferencesh.")
        assert await refused({"provider": "dashscope", "video": str(refs["vid1"]), "duration": 5}) == (
            f"{PREFIX}duration: is 5 s, but the source video lasts 2.0 s. Limit: 0 (keep it whole) or 2 s for this "
            "clip. Fix: ask for 0 to keep the whole clip, or fewer seconds.")
        assert await refused({"provider": "dashscope", "video": V, "duration": 1}) == (
            f"{PREFIX}duration: is 1 s. Limit: 0 (keep the whole clip) or 2-10 s. Fix: ask for 0, or for at least "
            "2 s cut from the start.")
        assert await refused({"provider": "replicate", "video": V, "negative_prompt": "blur"}) == (
            f"{PREFIX}negative_prompt: Replicate cannot take negative_prompt. Fix: leave negative_prompt out, or "
            "use provider=dashscope or inferencesh.")
        assert "video: is an image (png), but video takes videos" in await refused(
            {"provider": "dashscope", "video": str(refs["img1"])})
    assert dashscope.calls("/api/v1/services") == dashscope.calls("/oss") == [] and fal.calls("/fal-ai") == []
