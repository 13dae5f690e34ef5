"""generate_t2v: Wan 2.7 text-to-video on the same ledger, caps, task views and player as generate_r2v, on every host
that serves it, each with the body its docs describe; and the offline preview's honest title card."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import av
import media
import pytest
from conftest import DASHSCOPE_KEY, call, finish, text
from mcp import Client
from pydantic import SecretStr

from wan_r2v_mcp.providers.host_settings import with_host
from wan_r2v_mcp.server import build_server
from wan_r2v_mcp.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio

AUDIO_URL = "https://cdn.example.com/theme.mp3"
PREFIX = "Error executing tool generate_t2v: [invalid_input] "


@pytest.fixture
def all_hosts(hosts_settings, dashscope):
    return with_host(hosts_settings, "dashscope", api_key=SecretStr(DASHSCOPE_KEY), base_url=dashscope.base_url)


async def test_a_prompt_alone_becomes_a_preview_video_on_disk_recorded_as_text_to_video(client, settings):
    r = await call(client, "generate_t2v", {"prompt": "A lighthouse at dusk, waves crash", "duration": 2,
                                            "resolution": "720p", "aspect_ratio": "9:16", "wait_seconds": 30})
    view = r["structuredContent"]
    assert (r["isError"], view["status"], view["provider"]) == (False, "succeeded", "preview")
    assert view["output"] == {"width": 720, "height": 1280, "seconds": 2.0}
    assert view["references"] == [] and view["cost_estimate_usd"] == 0.0 and view["billable_seconds"] == 2.0
    assert "title card of your prompt" in view["notice"] and "not Wan 2.7 output" in view["notice"]
    decoded = media.decode(Path(view["local_path"]))
    assert (decoded["width"], decoded["height"], round(decoded["duration"])) == (720, 1280, 2)
    sidecar = json.loads(Path(view["sidecar_path"]).read_text())
    assert (sidecar["model"], sidecar["request"]["prompt"]) == ("wan2.7-t2v", "A lighthouse at dusk, waves crash")
    store = SQLiteStore(settings.data.ledger)
    try:
        assert store.get(view["task_id"]).model == "wan2.7-t2v"
    finally:
        store.close()


async def test_the_preview_plays_the_given_audio_as_its_sound(client, refs):
    r = await call(client, "generate_t2v", {"prompt": "A choir sings", "audio": str(refs["voice"]), "duration": 3,
                                            "resolution": "720p", "wait_seconds": 30})
    view = r["structuredContent"]
    assert view["status"] == "succeeded", text(r)
    assert [(ref["label"], ref["role"], ref["kind"]) for ref in view["references"]] == [("Audio", "audio", "audio")]
    with av.open(view["local_path"]) as container:
        assert container.streams.audio, "the audio was not heard"


DOCUMENTED = {  # each host's text-to-video body, as its API page shows it (family of Wan 2.7, per host)
    "dashscope": {"model": "wan2.7-t2v", "input": {"prompt": "A fox runs", "negative_prompt": "blur",
                                                   "audio_url": AUDIO_URL},
                  "parameters": {"resolution": "720P", "ratio": "9:16", "duration": 7, "watermark": False,
                                 "prompt_extend": False, "seed": 3}},
    "replicate": {"input": {"prompt": "A fox runs", "resolution": "720p", "aspect_ratio": "9:16", "duration": 7,
                            "negative_prompt": "blur", "audio": AUDIO_URL, "enable_prompt_expansion": False,
                            "seed": 3}},
    "fal": {"prompt": "A fox runs", "aspect_ratio": "9:16", "resolution": "720p", "duration": 7,
            "negative_prompt": "blur", "audio_url": AUDIO_URL, "enable_prompt_expansion": False, "seed": 3},
    "inferencesh": {"app": "alibaba/wan-2-7-t2v", "input": {"prompt": "A fox runs", "negative_prompt": "blur",
                                                            "resolution": "720P", "duration": 7, "watermark": False,
                                                            "prompt_extend": False, "seed": 3}},
}


@pytest.mark.parametrize("host", list(DOCUMENTED))
async def test_each_host_gets_the_text_to_video_body_its_docs_describe(all_hosts, host):
    args = {"prompt": "A fox runs", "negative_prompt": "blur", "resolution": "720p", "duration": 7, "seed": 3,
            "prompt_extend": False, "provider": host, "dry_run": True}
    if host != "inferencesh":  # its app takes neither (both refused below)
        args.update(audio=AUDIO_URL, aspect_ratio="9:16")
    async with Client(build_server(all_hosts)) as client:
        r = await call(client, "generate_t2v", args)
    assert r["isError"] is False, text(r)
    assert r["structuredContent"]["payload"] == DOCUMENTED[host]
    assert r["structuredContent"]["cost_estimate_usd"] == pytest.approx(0.70)  # 7 s at 720p, $0.10/s everywhere


async def test_a_model_priced_apart_on_a_host_is_estimated_at_its_own_price(all_hosts, refs):
    async with Client(build_server(all_hosts)) as client:
        t2v = await call(client, "generate_t2v", {"prompt": "A fox runs", "provider": "fal", "dry_run": True})
        r2v = await call(client, "generate_r2v", {"prompt": "Image 1 runs", "provider": "fal", "dry_run": True,
                                                  "reference_images": [str(refs["img1"])]})
    # 5 s at 1080p: fal's R2V is $0.10/s at any resolution; its T2V is taken at $0.15/s (the higher of two sources).
    assert (t2v["structuredContent"]["cost_estimate_usd"], r2v["structuredContent"]["cost_estimate_usd"]) == (0.75, 0.5)


async def test_dashscope_gets_the_audio_uploaded_for_this_model_and_the_video_lands(ds_settings, dashscope, refs,
                                                                                   result_videos):
    audio = media.wav(refs["voice"].parent / "theme.wav", seconds=2.5)
    async with Client(build_server(ds_settings)) as client:
        started = await call(client, "generate_t2v", {"prompt": "A fox runs", "audio": str(audio), "duration": 4,
                                                      "provider": "dashscope", "wait_seconds": 0})
        assert started["isError"] is False, text(started)
        done = await finish(client, started["structuredContent"]["task_id"])
    (policy,) = dashscope.calls("/api/v1/uploads")
    assert policy.query["model"] == "wan2.7-t2v"  # a temporary upload serves only the model it was asked for
    (create,) = dashscope.calls("/api/v1/services/aigc/video-generation/video-synthesis", "POST")
    key = create.json["input"]["audio_url"].removeprefix("oss://")
    assert create.json == {"model": "wan2.7-t2v", "input": {"prompt": "A fox runs", "audio_url": f"oss://{key}"},
                           "parameters": {"resolution": "1080P", "ratio": "16:9", "duration": 4, "watermark": False}}
    assert create.headers["x-dashscope-ossresourceresolve"] == "enable"
    assert dashscope.uploaded[key]["sha256"] == hashlib.sha256(audio.read_bytes()).hexdigest()
    view = done["structuredContent"]
    assert view["status"] == "succeeded" and Path(view["local_path"]).read_bytes() == result_videos(4)


@pytest.mark.parametrize("host", ["replicate", "fal", "inferencesh"])
async def test_the_other_hosts_make_it_at_their_own_endpoints(all_hosts, replicate, fal, inferencesh, host,
                                                             result_videos):
    async with Client(build_server(all_hosts)) as client:
        started = await call(client, "generate_t2v", {"prompt": "A fox runs", "duration": 3, "provider": host,
                                                      "wait_seconds": 0})
        assert started["isError"] is False, text(started)
        done = await finish(client, started["structuredContent"]["task_id"])
    sent = {"replicate": lambda: replicate.calls("/v1/models/wan-video/wan-2.7-t2v/predictions", "POST"),
            "fal": lambda: fal.calls("/fal-ai/wan/v2.7/text-to-video", "POST"),
            "inferencesh": lambda: [c for c in inferencesh.calls("/apps/run", "POST")
                                    if c.json["app"] == "alibaba/wan-2-7-t2v"]}[host]()
    assert len(sent) == 1
    view = done["structuredContent"]
    assert view["status"] == "succeeded" and Path(view["local_path"]).read_bytes() == result_videos(3)


async def test_what_a_host_cannot_make_is_refused_before_anything_is_sent(all_hosts, dashscope, refs):
    short = media.wav(refs["voice"].parent / "short.wav", seconds=2.5)
    async with Client(build_server(all_hosts)) as client:
        async def refused(args: dict) -> str:
            r = await call(client, "generate_t2v", {"prompt": "A fox runs", **args})
            assert r["isError"] is True
            return text(r)

        assert await refused({"provider": "inferencesh", "audio": AUDIO_URL}) == (
            f"{PREFIX}audio: inference.sh cannot take audio. Fix: leave audio out, or use provider=dashscope or "
            "replicate or fal.")
        assert await refused({"provider": "inferencesh", "aspect_ratio": "9:16"}) == (
            f"{PREFIX}aspect_ratio: inference.sh takes no aspect_ratio for this model: it makes 16:9. Fix: leave "
            "aspect_ratio out (it is 16:9), or use another provider.")
        assert await refused({"provider": "fal", "audio": str(short)}) == (
            f"{PREFIX}audio: lasts 2.5 s. Limit: 3-30 s on fal. Fix: use a clip of at least 3 s, or use "
            "provider=dashscope.")
        assert await refused({"provider": "replicate", "watermark": True}) == (
            f"{PREFIX}watermark: Replicate cannot take watermark. Fix: leave watermark out, or use "
            "provider=dashscope or inferencesh.")
        assert await refused({"provider": "dashscope", "audio": str(refs["img1"])}) == (
            "Error executing tool generate_t2v: [invalid_reference] audio: is an image (png), but audio takes audio. "
            "Fix: give an audio file here (wav, mp3).")
    assert dashscope.calls("/api/v1/services") == [] and dashscope.calls("/oss") == []
