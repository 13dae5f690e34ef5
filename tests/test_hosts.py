"""Replicate, inference.sh and fal behind the same tools, each against its loopback emulator."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import FAL_KEY, REPLICATE_KEY, call, finish, text
from mcp import Client

from wan_r2v_mcp.config import Settings
from wan_r2v_mcp.providers import available, provider_class
from wan_r2v_mcp.providers.base import OPTIONAL_FIELDS
from wan_r2v_mcp.schema import MODEL_ID, R2VRequest
from wan_r2v_mcp.server import build_server

pytestmark = pytest.mark.anyio


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def _generate_and_finish(settings, args) -> tuple[dict, dict]:
    async with Client(build_server(settings)) as client:
        started = await call(client, "generate_r2v", {"wait_seconds": 0, **args})
        assert started["isError"] is False, text(started)
        done = await finish(client, started["structuredContent"]["task_id"])
    return started["structuredContent"], done["structuredContent"]


# ------------------------------------------------------------------ Replicate

async def test_replicate_end_to_end(hosts_settings, replicate, refs, result_videos):
    _, view = await _generate_and_finish(hosts_settings, {
        "prompt": "Video 1 hands Image 1 a cup", "provider": "replicate", "negative_prompt": "blur",
        "reference_images": [str(refs["img1"])], "reference_videos": [str(refs["vid1"])],
        "resolution": "720p", "aspect_ratio": "9:16", "duration": 6, "shot_type": "multi", "seed": 9})
    uploads = replicate.calls("/v1/files", "POST")
    assert [u.files["content"]["sha256"] for u in uploads] == [_sha(refs["img1"]), _sha(refs["vid1"])]
    assert all("alice" not in u.files["content"]["filename"] and "bob" not in u.files["content"]["filename"]
               for u in uploads)
    file_ids = list(replicate.files)
    (create,) = replicate.calls("/v1/models/wan-video/wan-2.7-r2v/predictions", "POST")
    assert create.json == {"input": {
        "prompt": "Video 1 hands Image 1 a cup",
        "reference_images": [f"{replicate.base_url}/files/{file_ids[0]}"],
        "reference_videos": [f"{replicate.base_url}/files/{file_ids[1]}"],
        "resolution": "720p", "aspect_ratio": "9:16", "duration": 6, "negative_prompt": "blur",
        "shot_type": "multi", "seed": 9}}
    assert create.headers["authorization"] == f"Bearer {REPLICATE_KEY}"
    assert view["status"] == "succeeded" and view["provider_task_id"] in replicate.predictions
    assert Path(view["local_path"]).read_bytes() == result_videos(view["request"]["duration"])
    assert view["video_url_expires_at"] is not None  # outputs are deleted after 1 h, so it was fetched at once


async def test_replicate_failure(hosts_settings, replicate):
    replicate.next_outcome.append("failed")
    _, failed = await _generate_and_finish(hosts_settings, {"prompt": "Image 1", "provider": "replicate",
                                                            "reference_images": ["https://cdn.example.com/a.png"]})
    assert failed["status"] == "failed" and failed["error"]["code"] == "generation_failed"
    assert failed["error"]["message"].endswith("Replicate said: CUDA out of memory")


async def test_replicate_throttling_on_create_is_waited_out(hosts_settings, replicate):
    replicate.fault("create", status=429, headers={"Retry-After": "1"},
                    body={"detail": "Request was throttled. Expected available in 1 second.", "status": 429})
    _, view = await _generate_and_finish(hosts_settings, {"prompt": "Image 1", "provider": "replicate",
                                                          "reference_images": ["https://cdn.example.com/a.png"]})
    assert view["status"] == "succeeded" and len(replicate.calls("/v1/models/")) == 2


# ------------------------------------------------------------------ inference.sh

async def test_inferencesh_end_to_end_with_first_frame_and_voice(hosts_settings, inferencesh, refs, result_videos):
    _, view = await _generate_and_finish(hosts_settings, {
        "prompt": "Video 1 waves at Image 1", "provider": "inferencesh",
        "reference_images": [str(refs["img1"])], "reference_videos": [str(refs["vid1"])],
        "first_frame": str(refs["img2"]), "voices": {"Video 1": str(refs["voice"])},
        "resolution": "720p", "aspect_ratio": "1:1", "duration": 4, "prompt_extend": False, "seed": 3})
    stored = {k.split("/")[3].split("?")[0]: v for k, v in inferencesh.stored.items()}
    assert sorted(v["sha256"] for v in stored.values()) == sorted(
        _sha(p) for p in (refs["img1"], refs["vid1"], refs["img2"], refs["voice"]))
    assert all(v["authorization"] is None for v in stored.values())  # the key never goes to storage
    (create,) = inferencesh.calls("/apps/run", "POST")
    inp = create.json["input"]
    assert create.json["app"] == "alibaba/wan-2-7-r2v"
    assert set(inp) == {"prompt", "reference_images", "reference_videos", "first_frame", "reference_voice",
                        "resolution", "ratio", "duration", "watermark", "prompt_extend", "seed"}
    assert (inp["resolution"], inp["ratio"], inp["duration"], inp["prompt_extend"], inp["seed"]) == ("720P", "1:1", 4,
                                                                                                      False, 3)
    assert all(u.startswith("https://cloud.inference.sh/u/") for u in
               inp["reference_images"] + inp["reference_videos"] + [inp["first_frame"], inp["reference_voice"]])
    assert view["status"] == "succeeded" and Path(view["local_path"]).read_bytes() == result_videos(view["request"]["duration"])


async def test_inferencesh_field_names_follow_the_live_schema(hosts_settings, inferencesh):
    inferencesh.fields = ["prompt", "images", "videos", "aspect_ratio", "resolution", "duration", "watermark"]
    _, view = await _generate_and_finish(hosts_settings, {"prompt": "Image 1", "provider": "inferencesh",
                                                          "reference_images": ["https://cdn.example.com/a.png"]})
    (create,) = inferencesh.calls("/apps/run", "POST")
    assert create.json["input"] == {"prompt": "Image 1", "images": ["https://cdn.example.com/a.png"],
                                    "resolution": "1080P", "aspect_ratio": "16:9", "duration": 5, "watermark": False}
    assert view["status"] == "succeeded"


async def test_inferencesh_falls_back_to_known_names_when_the_schema_does_not_answer(hosts_settings, inferencesh):
    inferencesh.schema_available = False
    _, view = await _generate_and_finish(hosts_settings, {"prompt": "Image 1", "provider": "inferencesh",
                                                          "reference_images": ["https://cdn.example.com/a.png"]})
    assert "reference_images" in inferencesh.calls("/apps/run")[0].json["input"] and view["status"] == "succeeded"


@pytest.mark.long
async def test_inferencesh_status_9_is_not_done_and_13_is_a_refusal(hosts_settings, inferencesh):
    inferencesh.phases = [(0.1, 2), (8.0, 9)]  # long in UPLOADING: must still read as running
    inferencesh.next_outcome.append(13)
    async with Client(build_server(hosts_settings)) as client:
        started = await call(client, "generate_r2v", {"prompt": "Image 1", "provider": "inferencesh",
                                                      "reference_images": ["https://cdn.example.com/a.png"],
                                                      "wait_seconds": 4})
        assert started["structuredContent"]["status"] == "running"
        assert started["structuredContent"]["stage"] == "inference.sh uploading"
        done = await finish(client, started["structuredContent"]["task_id"])
    assert done["structuredContent"]["status"] == "failed" and done["structuredContent"]["error"]["code"] == "billing"


async def test_inferencesh_takes_one_voice_on_the_first_video(hosts_settings, inferencesh, refs):
    async with Client(build_server(hosts_settings)) as client:
        r = await call(client, "generate_r2v", {
            "prompt": "Video 1 and Image 1", "provider": "inferencesh", "reference_images": [str(refs["img1"])],
            "reference_videos": [str(refs["vid1"])], "voices": {"Image 1": str(refs["voice"])}})
    assert text(r) == ('Error executing tool generate_r2v: [invalid_input] voices: inference.sh gives its one voice '
                       'to Video 1, not to Image 1. Fix: key the voice to "Video 1" (reorder the references so that '
                       'character comes first), or use provider=dashscope.')
    assert inferencesh.received == []


# ------------------------------------------------------------------ fal

async def test_fal_end_to_end(hosts_settings, fal, refs, result_videos):
    _, view = await _generate_and_finish(hosts_settings, {
        "prompt": "Video 1 dances with Image 1", "provider": "fal", "reference_images": [str(refs["img1"])],
        "reference_videos": [str(refs["vid1"])], "resolution": "1080p", "aspect_ratio": "4:3", "duration": 7,
        "shot_type": "single", "seed": 1})
    assert sorted(v["sha256"] for v in fal.stored.values()) == sorted(_sha(p) for p in (refs["img1"], refs["vid1"]))
    assert all(v["authorization"] is None for v in fal.stored.values())
    (create,) = fal.calls("/fal-ai/wan/v2.7/reference-to-video", "POST")
    body = create.json
    assert body["duration"] == 7 and body["multi_shots"] is False and body["seed"] == 1
    assert (body["resolution"], body["aspect_ratio"]) == ("1080p", "4:3")
    assert all(u.startswith("https://v3.fal.media/files/") for u in body["reference_image_urls"] + body["reference_video_urls"])
    assert create.headers["authorization"] == f"Key {FAL_KEY}"
    polls = fal.calls("/fal-ai/wan/requests/", "GET")
    assert all(p.path.startswith(f"/fal-ai/wan/requests/{view['provider_task_id']}") for p in polls)
    assert view["status"] == "succeeded" and Path(view["local_path"]).read_bytes() == result_videos(view["request"]["duration"])
    assert view["cost_estimate_usd"] == pytest.approx(0.9)  # (2 s of reference video + 7 s out) x $0.10


async def test_fal_completed_with_an_error_result_is_a_failure(hosts_settings, fal):
    fal.next_fails = True
    _, view = await _generate_and_finish(hosts_settings, {"prompt": "Image 1", "provider": "fal",
                                                          "reference_images": ["https://cdn.example.com/a.png"]})
    assert view["status"] == "failed"
    assert view["error"]["message"] == ("fal rejected an input. fal said: Content policy violation: the prompt was "
                                        "flagged")


@pytest.mark.parametrize("host", ["replicate", "inferencesh", "fal"])
async def test_each_host_cancels_a_queued_job(hosts_settings, replicate, inferencesh, fal, host):
    emulator = {"replicate": replicate, "inferencesh": inferencesh, "fal": fal}[host]
    replicate.starting, inferencesh.phases, fal.in_queue = 30, [(30, 2)], 30  # keep the job queued
    async with Client(build_server(hosts_settings)) as client:
        started = await call(client, "generate_r2v", {"prompt": "Image 1", "provider": host, "wait_seconds": 0,
                                                      "reference_images": ["https://cdn.example.com/a.png"]})
        canceled = await call(client, "cancel_task", {"task_id": started["structuredContent"]["task_id"]})
    assert canceled["structuredContent"]["status"] == "canceled"
    (cancel,) = [r for r in emulator.received if emulator.name_of(r) == "cancel"]  # one cancel, of the job made
    assert canceled["structuredContent"]["provider_task_id"] in cancel.path


# ------------------------------------------------------------------ every field maps or is refused, on every host

FIELD_VALUES = {"negative_prompt": "blur", "first_frame": "https://cdn.example.com/f.png",
                "voices": {"Image 1": "https://cdn.example.com/v.wav"}, "shot_type": "multi",
                "prompt_extend": False, "watermark": True, "seed": 5}
# Where each field's value must show up in a host's payload (a path into the JSON), when the host takes it.
WHERE = {
    "dashscope": {"negative_prompt": "input.negative_prompt", "first_frame": "input.media.1.url",
                  "voices": "input.media.0.reference_voice", "prompt_extend": "parameters.prompt_extend",
                  "watermark": "parameters.watermark", "seed": "parameters.seed"},
    "replicate": {"negative_prompt": "input.negative_prompt", "shot_type": "input.shot_type", "seed": "input.seed"},
    "inferencesh": {"negative_prompt": "input.negative_prompt", "first_frame": "input.first_frame",
                    "voices": "input.reference_voice", "prompt_extend": "input.prompt_extend",
                    "watermark": "input.watermark", "seed": "input.seed"},
    "fal": {"negative_prompt": "negative_prompt", "shot_type": "multi_shots", "seed": "seed"},
}
EXPECTED = {"first_frame": "https://cdn.example.com/f.png", "voices": "https://cdn.example.com/v.wav",
            "shot_type": {"replicate": "multi", "fal": True}}


def _dig(payload, path: str):
    for part in path.split("."):
        payload = payload[int(part)] if part.isdigit() else payload[part]
    return payload


@pytest.mark.parametrize("host", ["dashscope", "replicate", "inferencesh", "fal"])
@pytest.mark.parametrize("field", [f for f in OPTIONAL_FIELDS if f in R2VRequest.model_fields])
async def test_every_canonical_field_maps_or_is_refused(dirs, host, field):
    settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"],
                        hosts={"dashscope": {"api_key": "sk-x000000000000"},
                               "replicate": {"api_key": "r8_x000000000000"},
                               "inferencesh": {"api_key": "inf_x000000000000"},
                               "fal": {"api_key": "fal-x000000000000"}})
    args = {"prompt": "Image 1", "reference_images": ["https://cdn.example.com/a.png"], "provider": host,
            "dry_run": True, field: FIELD_VALUES[field]}
    async with Client(build_server(settings)) as client:
        r = await call(client, "generate_r2v", args)
    if field in provider_class(host).routes[MODEL_ID].supports:
        assert r["isError"] is False, text(r)
        expected = EXPECTED.get(field, FIELD_VALUES[field])
        if isinstance(expected, dict):
            expected = expected[host]
        assert _dig(r["structuredContent"]["payload"], WHERE[host][field]) == expected
    else:
        assert r["isError"] is True
        others = [h for h in available() if h != "preview" and field in provider_class(h).routes[MODEL_ID].supports]
        assert f"{field}: {provider_class(host).capabilities.title} cannot take {field}." in text(r)
        if others:
            assert f"or use provider={' or '.join(others)}" in text(r)


@pytest.mark.parametrize("host,limit", [("replicate", 10), ("fal", 10), ("dashscope", 15), ("inferencesh", 15)])
async def test_duration_caps_per_host(dirs, host, limit):
    settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"],
                        hosts={"dashscope": {"api_key": "sk-x000000000000"},
                               "replicate": {"api_key": "r8_x000000000000"},
                               "inferencesh": {"api_key": "inf_x000000000000"},
                               "fal": {"api_key": "fal-x000000000000"}})
    async with Client(build_server(settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": ["https://cdn.example.com/a.png"],
                                                "provider": host, "dry_run": True, "duration": 12})
    assert r["isError"] is (limit < 12), text(r)


async def test_the_default_provider_follows_the_keys_present(dirs):
    only_fal = Settings(data_dir=dirs["data"], output_dir=dirs["out"], hosts={"fal": {"api_key": "fal-x000000000000"}})
    async with Client(build_server(only_fal)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "dry_run": True,
                                                "reference_images": ["https://cdn.example.com/a.png"]})
        assert r["structuredContent"]["provider"] == "fal"
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "dry_run": True, "provider": "preview",
                                                "reference_images": ["https://cdn.example.com/a.png"]})
        assert r["structuredContent"]["provider"] == "preview"
    none = Settings(data_dir=dirs["data"], output_dir=dirs["out"])
    async with Client(build_server(none)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "dry_run": True,
                                                "reference_images": ["https://cdn.example.com/a.png"]})
    assert r["structuredContent"]["provider"] == "preview"
    assert json.dumps(r).count("fal-x000000000000") == 0


@pytest.mark.parametrize("host", ["replicate", "inferencesh", "fal"])
async def test_each_host_waits_out_a_429_on_create(hosts_settings, replicate, inferencesh, fal, host):
    emulator = {"replicate": replicate, "inferencesh": inferencesh, "fal": fal}[host]
    emulator.fault("create", status=429, headers={"Retry-After": "1"}, body={"detail": "slow down"})
    _, view = await _generate_and_finish(hosts_settings, {"prompt": "Image 1", "provider": host,
                                                          "reference_images": ["https://cdn.example.com/a.png"]})
    creates = [r for r in emulator.received if emulator.name_of(r) == "create"]
    assert view["status"] == "succeeded" and len(creates) == 2


@pytest.mark.parametrize("host", ["replicate", "inferencesh", "fal"])
async def test_each_host_survives_server_errors_while_polling(hosts_settings, replicate, inferencesh, fal, host):
    emulator = {"replicate": replicate, "inferencesh": inferencesh, "fal": fal}[host]
    emulator.fault("poll", status=503, body={"detail": "busy"}, times=2)
    _, view = await _generate_and_finish(hosts_settings, {"prompt": "Image 1", "provider": host,
                                                          "reference_images": ["https://cdn.example.com/a.png"]})
    assert view["status"] == "succeeded"


@pytest.mark.anyio
async def test_quotes_racing_in_threads_share_one_client_per_host_and_key(tmp_path, monkeypatch):
    import threading

    import anyio

    from wan_r2v_mcp.providers.registry import ProviderRegistry

    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    registry = ProviderRegistry(Settings(data_dir=tmp_path / "data", output_dir=tmp_path / "out"))
    start = threading.Barrier(16)
    got: list = []

    def quote() -> None:
        start.wait(timeout=30)
        got.append(registry.get("fal"))

    async with anyio.create_task_group() as tg:
        for _ in range(16):
            tg.start_soon(anyio.to_thread.run_sync, quote)
    assert len(got) == 16 and len({id(p) for p in got}) == 1 and len(registry._made) == 1
    registry.warm(["fal", "replicate", "preview"])  # replicate has no key here: left to its first use to say so
    assert sorted(name for name, _ in registry._made) == ["fal", "preview"] and registry.get("fal") is got[0]
    await registry.aclose()
