"""Wan 3.0's reference mode (`model="wan3.0-video"` on generate_r2v): its own rules checked before anything is sent,
each voice sent as an audio reference the prompt names, DashScope's workspace host and fal's app of its own, the
preview drafting it offline; the default stays Wan 2.7."""

from __future__ import annotations

import hashlib
from pathlib import Path

import media
import pytest
from conftest import DASHSCOPE_KEY, ONE_ERA, call, finish, text
from mcp import Client
from pydantic import SecretStr

from wan_r2v_mcp.config import Settings
from wan_r2v_mcp.providers.dashscope import DashScopeProvider
from wan_r2v_mcp.providers.host_settings import with_host
from wan_r2v_mcp.server import build_server
from wan_r2v_mcp.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
PREFIX = "Error executing tool generate_r2v: [invalid_input] "
WORKSPACE = "ws-0a1b2c3d"


@pytest.fixture
def ws_settings(ds_settings):
    return with_host(ds_settings, "dashscope", workspace_id=WORKSPACE)


@pytest.fixture
def voices(refs):
    folder = refs["voice"].parent
    return {"low": media.wav(folder / "low.wav", seconds=3.0, rate=8000),
            "high": media.wav(folder / "high.wav", seconds=2.0, rate=22050)}


async def test_dashscope_gets_every_reference_as_a_media_item_and_each_voice_as_an_audio_the_prompt_names(
        ws_settings, dashscope, refs, voices, result_videos):
    args = {"prompt": "Image 1 greets Video 1, who answers in the voice of Audio 2.", "model": "wan3.0-video",
            "reference_images": [str(refs["img1"]), str(refs["img2"])], "reference_videos": [str(refs["vid1"])],
            # Voices in their own order: the first given is "Audio 1", whichever reference it belongs to.
            "voices": [{"label": "Video 1", "audio": str(voices["low"])},
                       {"label": "Image 1", "audio": str(voices["high"])}],
            "duration": 20, "provider": "dashscope", "wait_seconds": 0}
    async with Client(build_server(ws_settings)) as client:
        started = await call(client, "generate_r2v", args)
        assert started["isError"] is False, text(started)
        done = await finish(client, started["structuredContent"]["task_id"])
    (create,) = dashscope.calls(CREATE, "POST")
    media_items = create.json["input"]["media"]
    keys = [m["url"].removeprefix("oss://") for m in media_items]
    assert create.json == {
        "model": "wan3.0-video",
        "input": {"prompt": "Image 1 greets Video 1, who answers in the voice of Audio 2. "
                            "Video 1 speaks in the voice of Audio 1.",
                  "media": [{"type": t, "url": f"oss://{k}"} for t, k in zip(
                      ["reference_image", "reference_image", "reference_video", "reference_audio", "reference_audio"],
                      keys)]},
        "parameters": {"resolution": "1080P", "ratio": "16:9", "duration": 20, "watermark": False}}
    sent = [dashscope.uploaded[k]["sha256"] for k in keys]
    given = [refs["img1"], refs["img2"], refs["vid1"], voices["low"], voices["high"]]
    assert sent == [hashlib.sha256(p.read_bytes()).hexdigest() for p in given]
    assert all(k.startswith("dashscope-instant/wan3.0-video/") for k in keys)  # uploads asked for this model
    assert create.headers["x-dashscope-workspace"] == WORKSPACE
    view = done["structuredContent"]
    assert view["status"] == "succeeded" and Path(view["local_path"]).read_bytes() == result_videos(20)
    assert view["request"]["model"] == "wan3.0-video"
    # Estimated as the clip's 2 s and the 20 s made, at $0.206 per second at 1080p; the seconds shown once it is
    # made are the host's own usage (the emulator's: 5 s for the clips, as for Wan 2.7).
    assert (view["billable_seconds"], view["cost_estimate_usd"]) == (25.0, pytest.approx(22 * 0.206))
    store = SQLiteStore(ws_settings.data.ledger)
    try:
        assert store.get(view["task_id"]).model == "wan3.0-video"
    finally:
        store.close()


async def test_a_lost_create_is_found_by_the_prompt_as_sent_and_never_sent_again(ws_settings, dashscope, refs, voices):
    dashscope.fault("create", drop=True)  # the host makes the job, the answer never arrives
    async with Client(build_server(ws_settings)) as client:
        r = await call(client, "generate_r2v", {
            "prompt": "Image 1 sings", "model": "wan3.0-video", "reference_images": [str(refs["img1"])],
            "voices": [{"label": "Image 1", "audio": str(voices["low"])}], "provider": "dashscope",
            "wait_seconds": 30})
    view = r["structuredContent"]
    assert len(dashscope.calls(CREATE)) == 1 and len(dashscope.tasks) == 1
    (host_id,) = dashscope.tasks
    assert dashscope.tasks[host_id].body["input"]["prompt"] == "Image 1 sings Image 1 speaks in the voice of Audio 1."
    assert view["status"] == "succeeded" and view["provider_task_id"] == host_id


def test_without_a_base_url_wan3_goes_to_the_workspace_host_of_the_region():
    provider = DashScopeProvider(Settings(
    hosts={"dashscope": {"api_key": SecretStr(DASHSCOPE_KEY), "region": "beijing", "workspace_id": WORKSPACE}}))
    assert provider._api("wan3.0-video") == f"https://{WORKSPACE}.cn-beijing.maas.aliyuncs.com/api/v1"
    assert provider._api("wan2.7-r2v") == ""  # the region's API base, as before
    # The id becomes part of a host name the key is sent to: anything but one DNS label is not used.
    for hostile in ("evil.example.com/x", "a@b", "ws.attacker.net#"):
        provider = DashScopeProvider(Settings(
        hosts={"dashscope": {"api_key": SecretStr(DASHSCOPE_KEY), "workspace_id": hostile}}))
        assert provider._api("wan3.0-video") == "" and provider._workspace_url is None


async def test_fal_makes_it_at_its_own_app_and_is_followed_there(hosts_settings, fal, refs, voices, result_videos):
    async with Client(build_server(hosts_settings)) as client:
        started = await call(client, "generate_r2v", {
            "prompt": "Image 1 dances with Video 1", "model": "wan3.0-video", "provider": "fal", "duration": 12,
            "resolution": "720p", "reference_images": [str(refs["img1"])], "reference_videos": [str(refs["vid1"])],
            "voices": [{"label": "Image 1", "audio": str(voices["low"])}], "seed": 7, "wait_seconds": 0})
        assert started["isError"] is False, text(started)
        done = await finish(client, started["structuredContent"]["task_id"])
    (create,) = fal.calls("/alibaba/wan-3.0/reference-to-video", "POST")
    files = [u for u in (create.json["reference_image_urls"] + create.json["reference_video_urls"]
                         + create.json["reference_audio_urls"])]
    assert create.json == {"prompt": "Image 1 dances with Video 1 Image 1 speaks in the voice of Audio 1.",
                           "reference_image_urls": files[:1], "reference_video_urls": files[1:2],
                           "reference_audio_urls": files[2:], "aspect_ratio": "16:9", "resolution": "720p",
                           "duration": 12, "seed": 7}
    rid = create_id = done["structuredContent"]["provider_task_id"]
    assert fal.calls(f"/alibaba/wan-3.0/requests/{rid}/status") and not [
        c for c in fal.received if c.path.startswith("/fal-ai/wan/requests/")]
    view = done["structuredContent"]
    assert view["status"] == "succeeded" and Path(view["local_path"]).read_bytes() == result_videos(12)
    assert create_id in fal.requests
    # fal bills the output only: 12 s at $0.10 per second at 720p.
    assert (view["billable_seconds"], view["cost_estimate_usd"]) == (12.0, pytest.approx(1.2))


async def test_its_rules_are_kept_before_anything_is_sent_or_uploaded(ws_settings, hosts_settings, dashscope, fal,
                                                                      replicate, refs, voices, dirs):
    folder = refs["img1"].parent
    long_voice = media.wav(folder / "long.wav", seconds=8.5)
    long_clip = media.video(folder / "long.mp4", 320, 240, seconds=12.0, fps=8)
    everything = ws_settings.model_copy(update={"hosts": {**ws_settings.hosts, **{
        h: hosts_settings.hosts[h] for h in ("replicate", "fal")}}})
    base = {"prompt": "Image 1 waves", "model": "wan3.0-video", "provider": "dashscope",
            "reference_images": [str(refs["img1"])]}
    async with Client(build_server(everything)) as client:
        async def refused(**args) -> str:
            r = await call(client, "generate_r2v", {**base, **args})
            assert r["isError"] is True, text(r)
            return text(r).removeprefix(PREFIX)

        assert await refused(first_frame=str(refs["img2"])) == (
            "first_frame: wan3.0-video takes no first_frame. Fix: leave first_frame out: Wan 3.0 never takes a frame "
            "with references (generate_i2v opens on a frame), or use model=\"wan2.7-r2v\".")
        assert await refused(negative_prompt="blur") == (
            "negative_prompt: wan3.0-video takes no negative_prompt. Fix: say what to avoid in the prompt itself, or "
            "use model=\"wan2.7-r2v\".")
        assert await refused(reference_images=[str(refs["img1"])] * 11) == (
            "reference_images: 11 given. Limit: at most 10 with wan3.0-video. Fix: keep the 10 that matter most.")
        assert await refused(reference_videos=[str(refs["vid1"])] * 6) == (
            "reference_videos: 6 given. Limit: at most 5 with wan3.0-video. Fix: keep the 5 that matter most.")
        assert await refused(voices=[{"label": "Image 1", "audio": str(long_voice)},
                                     {"label": "Video 1", "audio": str(long_voice)}],
                             reference_videos=[str(refs["vid1"])]) == (
            "voices: last 17.0 s together. Limit: 15 s in all with wan3.0-video. Fix: trim them, or keep fewer.")
        assert await refused(reference_videos=[str(long_clip)], duration=20) == (
            "duration: is 20 s beside 12.0 s of reference videos. Limit: 30 s with the reference videos' seconds, on "
            "wan3.0-video. Fix: ask for at most 18 s, or trim the clips.")
        assert (await refused(duration=31)).startswith("duration: is 31")
        assert await refused(provider="replicate") == (
            "Error executing tool generate_r2v: [provider_unavailable] provider: Replicate does not serve "
            "wan3.0-video. Fix: use provider=dashscope or fal.")
        # Wan 2.7 stays the default, and its own limit names the model that makes longer videos.
        assert await refused(model="wan2.7-r2v", duration=20) == (
            "duration: is 20 s, but Wan 2.7 makes at most 15 s. Limit: 2-15 s. Fix: ask for 15 s or less, or "
            "model=\"wan3.0-video\" (up to 30 s, on dashscope or fal).")
    no_workspace = with_host(ws_settings, "dashscope", workspace_id=None, base_url=None)
    async with Client(build_server(no_workspace)) as client:
        r = await call(client, "generate_r2v", {**base, "dry_run": True})
    assert text(r).removeprefix(PREFIX) == (
        "model: DashScope serves wan3.0-video only on a workspace's own host. Limit: DASHSCOPE_WORKSPACE_ID set to a "
        "workspace id (letters, digits and -), in singapore or beijing. Fix: set DASHSCOPE_WORKSPACE_ID to your Model Studio workspace's id, or use "
        "provider=fal.")
    assert dashscope.received == [] and fal.received == [] and replicate.received == []


@ONE_ERA
async def test_the_preview_drafts_it_offline_with_the_voice_heard_and_its_own_length(client, refs, voices):
    import av

    r = await call(client, "generate_r2v", {
        "prompt": "Image 1 talks to Image 2", "model": "wan3.0-video", "duration": 16, "resolution": "720p",
        "reference_images": [str(refs["img1"]), str(refs["img2"])],
        "voices": [{"label": "Image 2", "audio": str(voices["high"])}], "wait_seconds": 60})
    view = r["structuredContent"]
    assert (view["status"], view["provider"], view["request"]["model"]) == ("succeeded", "preview", "wan3.0-video"), \
        text(r)
    assert view["output"] == {"width": 1280, "height": 720, "seconds": 16.0} and view["cost_estimate_usd"] == 0.0
    with av.open(view["local_path"]) as container:
        assert container.streams.audio, "the voice was not heard"
