"""generate_i2v: Wan 2.7 image-to-video (a first frame to a last frame or driven by audio, or a clip continued) on
the same ledger, caps and task views, on every host with the body its docs describe; the six combinations the model
takes, and each host's narrower ones, refused before anything is uploaded; the preview opens on the frame and ends
on the last."""

from __future__ import annotations

from pathlib import Path

import av
import media
import pytest
from conftest import DASHSCOPE_KEY, call, finish, text
from mcp import Client
from pydantic import SecretStr

from wan_r2v_mcp.providers.host_settings import with_host
from wan_r2v_mcp.server import build_server

pytestmark = pytest.mark.anyio

F, L, A = "https://cdn.example.com/start.png", "https://cdn.example.com/end.png", "https://cdn.example.com/talk.mp3"
PREFIX = "Error executing tool generate_i2v: [invalid_input] "


@pytest.fixture
def all_hosts(hosts_settings, dashscope):
    return with_host(hosts_settings, "dashscope", api_key=SecretStr(DASHSCOPE_KEY), base_url=dashscope.base_url)


async def test_the_preview_opens_on_the_first_frame_ends_on_the_last_and_plays_the_driving_audio(client, refs):
    folder = refs["img1"].parent
    start = media.image(folder / "start.png", 640, 360, color=(200, 60, 40))
    end = media.image(folder / "end.png", 640, 360, color=(40, 60, 200))
    r = await call(client, "generate_i2v", {"prompt": "The red card turns blue", "first_frame": str(start),
                                            "last_frame": str(end), "driving_audio": str(refs["voice"]),
                                            "duration": 3, "resolution": "720p", "wait_seconds": 30})
    view = r["structuredContent"]
    assert view["status"] == "succeeded", text(r)
    assert view["output"] == {"width": 1280, "height": 720, "seconds": 3.0}  # the frame's shape, at 720p
    assert view["request"]["aspect_ratio"] == "as the first frame or clip"
    assert [(x["label"], x["role"]) for x in view["references"]] == [
        ("First frame", "first_frame"), ("Last frame", "last_frame"), ("Driving audio", "driving_audio")]
    with av.open(view["local_path"]) as container:
        assert container.streams.audio
        frames = [f.to_image() for f in container.decode(video=0)]
    first, last = frames[0].getpixel((20, 20)), frames[-1].getpixel((20, 20))
    assert max(abs(a - b) for a, b in zip(first, (200, 60, 40))) <= 6  # bare: no band over the opening frame
    assert max(abs(a - b) for a, b in zip(last, (40, 60, 200))) <= 6  # nor over the closing one


DOCUMENTED = {
    "dashscope": {"model": "wan2.7-i2v", "input": {
        "prompt": "The card turns", "negative_prompt": "blur", "media": [
            {"type": "first_frame", "url": F}, {"type": "last_frame", "url": L}, {"type": "driving_audio", "url": A}]},
        "parameters": {"resolution": "720P", "duration": 6, "watermark": False, "prompt_extend": False, "seed": 3}},
    "replicate": {"input": {"prompt": "The card turns", "first_frame": F, "last_frame": L, "audio": A,
                            "resolution": "720p", "duration": 6, "negative_prompt": "blur",
                            "enable_prompt_expansion": False, "seed": 3}},
    "fal": {"prompt": "The card turns", "image_url": F, "end_image_url": L, "audio_url": A, "resolution": "720p",
            "duration": 6, "negative_prompt": "blur", "enable_prompt_expansion": False, "seed": 3},
    "inferencesh": {"app": "alibaba/wan-2-7-i2v", "input": {
        "prompt": "The card turns", "negative_prompt": "blur", "first_frame": F, "last_frame": L, "driving_audio": A,
        "resolution": "720P", "duration": 6, "watermark": False, "prompt_extend": False, "seed": 3}},
}


@pytest.mark.parametrize("host", list(DOCUMENTED))
async def test_each_host_gets_the_image_to_video_body_its_docs_describe(all_hosts, host):
    async with Client(build_server(all_hosts)) as client:
        r = await call(client, "generate_i2v", {
            "prompt": "The card turns", "negative_prompt": "blur", "first_frame": F, "last_frame": L,
            "driving_audio": A, "resolution": "720p", "duration": 6, "seed": 3, "prompt_extend": False,
            "provider": host, "dry_run": True})
    assert r["isError"] is False, text(r)
    assert r["structuredContent"]["payload"] == DOCUMENTED[host]
    assert r["structuredContent"]["cost_estimate_usd"] == pytest.approx(0.60)  # 6 s at 720p


async def test_a_clip_is_continued_on_dashscope_and_its_seconds_are_billed_in_the_whole(ds_settings, dashscope, refs,
                                                                                       result_videos):
    async with Client(build_server(ds_settings)) as client:
        started = await call(client, "generate_i2v", {"prompt": "Bob keeps walking", "first_clip": str(refs["vid1"]),
                                                      "duration": 5, "provider": "dashscope", "wait_seconds": 0})
        assert started["isError"] is False, text(started)
        assert (started["structuredContent"]["billable_seconds"], started["structuredContent"]["cost_estimate_usd"]) \
            == (5.0, 0.75)  # the 2 s clip is inside the 5 s, at $0.15/s (1080p)
        done = await finish(client, started["structuredContent"]["task_id"])
    (policy,) = dashscope.calls("/api/v1/uploads")
    assert policy.query["model"] == "wan2.7-i2v"
    (create,) = dashscope.calls("/api/v1/services/aigc/video-generation/video-synthesis", "POST")
    (item,) = create.json["input"]["media"]
    assert item["type"] == "first_clip" and item["url"].startswith("oss://dashscope-instant/wan2.7-i2v/")
    assert create.json["parameters"] == {"resolution": "1080P", "duration": 5, "watermark": False}
    view = done["structuredContent"]
    assert view["status"] == "succeeded" and Path(view["local_path"]).read_bytes() == result_videos(5)


async def test_fal_gets_a_local_first_frame_through_its_storage(all_hosts, fal, refs):
    async with Client(build_server(all_hosts)) as client:
        started = await call(client, "generate_i2v", {"prompt": "Alice waves", "first_frame": str(refs["img1"]),
                                                      "duration": 3, "provider": "fal", "wait_seconds": 0})
        assert started["isError"] is False, text(started)
        done = await finish(client, started["structuredContent"]["task_id"])
    (create,) = fal.calls("/fal-ai/wan/v2.7/image-to-video", "POST")
    assert create.json["image_url"].startswith("https://v3.fal.media/files/") and create.json["duration"] == 3
    assert done["structuredContent"]["status"] == "succeeded"


async def test_what_the_model_or_a_host_cannot_take_is_refused_before_anything_is_sent(all_hosts, dashscope,
                                                                                      replicate, refs):
    short = media.wav(refs["voice"].parent / "short.wav", seconds=2.5)
    modes = ("one of: first_frame; first_frame + driving_audio; first_frame + last_frame; first_frame + last_frame "
             "+ driving_audio; first_clip; first_clip + last_frame")
    async with Client(build_server(all_hosts)) as client:
        async def refused(args: dict) -> str:
            r = await call(client, "generate_i2v", {"prompt": "It moves", **args})
            assert r["isError"] is True
            return text(r)

        assert await refused({"provider": "dashscope"}) == (
            f"{PREFIX}first_frame: nothing to start from: not a combination Wan 2.7 image-to-video takes. Limit: "
            f"{modes}. Fix: give a first_frame (an image it opens on) or a first_clip (a clip it continues).")
        assert await refused({"provider": "dashscope", "first_frame": F, "first_clip": str(refs["vid1"])}) == (
            f"{PREFIX}first_clip: both first_frame and first_clip: not a combination Wan 2.7 image-to-video takes. "
            f"Limit: {modes}. Fix: give one: first_frame to animate an image, or first_clip to continue a clip.")
        assert await refused({"provider": "replicate", "first_clip": str(refs["vid1"]), "last_frame": L}) == (
            f"{PREFIX}first_clip: Replicate is not known to take first_clip with last_frame (its docs leave it open, "
            "so it is refused rather than guessed). Fix: use provider=dashscope or inferencesh.")
        assert await refused({"provider": "dashscope", "first_clip": str(refs["vid1"]), "duration": 2}) == (
            f"{PREFIX}duration: is 2 s, but duration is the whole video, first_clip's 2.0 s included. Limit: more "
            "than 2.0 s with this clip. Fix: ask for at least 3 s (at most 15).")
        assert await refused({"provider": "replicate", "first_frame": F, "driving_audio": str(short)}) == (
            f"{PREFIX}driving_audio: lasts 2.5 s. Limit: 3-30 s on replicate. Fix: use a clip of at least 3 s, or "
            "use provider=dashscope or inferencesh or fal.")
        assert await refused({"provider": "fal", "first_frame": F, "watermark": True}) == (
            f"{PREFIX}watermark: fal cannot take watermark. Fix: leave watermark out, or use provider=dashscope or "
            "inferencesh.")
    assert dashscope.calls("/api/v1/services") == dashscope.calls("/oss") == [] and replicate.calls("/v1/files") == []


async def test_a_saved_character_opens_the_video_and_its_voice_drives_it(client, refs):
    saved = await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"]),
                                                  "voice": str(refs["voice"])})
    assert saved["isError"] is False, text(saved)
    r = await call(client, "generate_i2v", {"prompt": "Alice says hello", "character": "alice", "duration": 2,
                                            "resolution": "720p", "wait_seconds": 30})
    view = r["structuredContent"]
    assert view["status"] == "succeeded", text(r)
    assert [(x["label"], x["role"], x["source"]) for x in view["references"]] == [
        ("First frame", "first_frame", "@alice"), ("Driving audio", "driving_audio", "@alice (voice)")]
    assert view["request"]["characters"] == {"alice": "First frame"}
    listed = await call(client, "list_characters", {})
    assert listed["structuredContent"]["characters"][0]["uses"] == 1
    both = await call(client, "generate_i2v", {"prompt": "x", "character": "alice", "first_frame": str(refs["img2"]),
                                               "dry_run": True})
    assert text(both) == (f"{PREFIX}character: @alice brings its image as the first_frame, and this request gives "
                          "a first_frame too. Fix: leave out first_frame, or the character.")
