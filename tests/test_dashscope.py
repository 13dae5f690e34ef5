"""DashScope through the MCP client, against the loopback emulator: exact payloads, uploads, errors."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path

import httpx
import media
import pytest
from conftest import DASHSCOPE_KEY, call, finish, text
from mcp import Client

from wan_r2v_mcp.config import Settings
from wan_r2v_mcp.server import build_server

pytestmark = pytest.mark.anyio

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def cast(refs, dirs):
    r = dirs["refs"]
    return {
        "images": [refs["img1"], refs["img2"]],
        "video": refs["vid1"],
        "first": media.image(r / "opening.png", 1280, 720, color=(10, 10, 10)),
        "voice_a": refs["voice"],
        "voice_b": media.wav(r / "bob.wav", seconds=3.0),
    }


async def test_the_full_flow_sends_the_media_protocol_exactly_and_lands_the_video(ds_settings, dashscope, cast, dirs,
                                                                                 result_videos):
    async with Client(build_server(ds_settings), mode="legacy") as client:
        started = await call(client, "generate_r2v", {
            "prompt": "Video 1 hands Image 1 a cup in the cafe of Image 2",
            "negative_prompt": "blurry",
            "reference_images": [str(p) for p in cast["images"]],
            "reference_videos": [str(cast["video"])],
            "first_frame": str(cast["first"]),
            "voices": {"Video 1": str(cast["voice_b"]), "Image 1": str(cast["voice_a"])},
            "resolution": "720p", "aspect_ratio": "16:9", "duration": 8, "prompt_extend": False,
            "seed": 42, "provider": "dashscope", "wait_seconds": 0})
        view = started["structuredContent"]
        assert started["isError"] is False and view["provider"] == "dashscope"
        assert view["status"] in ("queued", "running")
        done = await finish(client, view["task_id"])

    # Six local files went up through getPolicy and the OSS form, each under a generated name.
    assert len(dashscope.calls("/api/v1/uploads", "GET")) == 6
    assert all(c.query == {"action": "getPolicy", "model": "wan2.7-r2v"} for c in dashscope.calls("/api/v1/uploads"))
    uploads = dashscope.calls("/oss", "POST")
    assert len(uploads) == 6
    for up in uploads:
        assert "authorization" not in up.headers  # the API key never goes to the storage host
        name = up.form["key"].rsplit("/", 1)[1]
        # A generated name only (a random hex may spell "cafe" itself, so the file's stems are not looked for in it).
        assert re.fullmatch(r"ref-[0-9a-f]{32}\.(png|jpg|mp4|wav|mp3)", name), name
        assert not any(stem in up.form["key"].rsplit("/", 1)[0] for stem in ("alice", "cafe", "bob", "opening"))
        assert up.files["file"]["filename"] == name
    by_sha = {u["sha256"]: key for key, u in dashscope.uploaded.items()}
    oss = {name: "oss://" + by_sha[_sha(p)] for name, p in
           [("img1", cast["images"][0]), ("img2", cast["images"][1]), ("video", cast["video"]),
            ("first", cast["first"]), ("voice_a", cast["voice_a"]), ("voice_b", cast["voice_b"])]}

    (create,) = dashscope.calls(CREATE, "POST")
    assert create.json == {
        "model": "wan2.7-r2v",
        "input": {
            "prompt": "Video 1 hands Image 1 a cup in the cafe of Image 2",
            "negative_prompt": "blurry",
            "media": [
                {"type": "reference_image", "url": oss["img1"], "reference_voice": oss["voice_a"]},
                {"type": "reference_image", "url": oss["img2"]},
                {"type": "reference_video", "url": oss["video"], "reference_voice": oss["voice_b"]},
                {"type": "first_frame", "url": oss["first"]},
            ],
        },
        "parameters": {"resolution": "720P", "ratio": "16:9", "duration": 8, "watermark": False,
                       "prompt_extend": False, "seed": 42},
    }
    assert create.headers["authorization"] == f"Bearer {DASHSCOPE_KEY}"
    assert create.headers["x-dashscope-async"] == "enable"
    assert create.headers["x-dashscope-ossresourceresolve"] == "enable"
    assert create.headers["content-type"] == "application/json"

    final = done["structuredContent"]
    assert final["status"] == "succeeded" and final["provider_task_id"] in dashscope.tasks
    # With a first_frame the emulated model opens on it: the file is that job's own result, byte for byte.
    assert Path(final["local_path"]).read_bytes() == dashscope.result_bytes(dashscope.tasks[final["provider_task_id"]])
    assert final["billable_seconds"] == 13.0  # usage: 5 s of input video + 8 s out
    assert final["video_url"].startswith(dashscope.root + "/results/")
    assert final["video_url_expires_at"] is not None
    sidecar = json.loads(Path(final["sidecar_path"]).read_text())
    assert sidecar["payload"]["input"]["media"][0]["url"] == oss["img1"]
    assert sidecar["video_url"] == final["video_url"]


async def test_https_references_pass_through_untouched_and_nothing_is_uploaded(ds_settings, dashscope):
    async with Client(build_server(ds_settings)) as client:
        result = await call(client, "generate_r2v", {
            "prompt": "Image 1 waves", "provider": "dashscope", "wait_seconds": 20,
            "reference_images": ["https://cdn.example.com/people/alice.png?sig=abc"]})
    assert result["structuredContent"]["status"] == "succeeded"
    assert dashscope.calls("/api/v1/uploads") == [] and dashscope.calls("/oss") == []
    (create,) = dashscope.calls(CREATE, "POST")
    assert create.json["input"]["media"] == [{"type": "reference_image",
                                              "url": "https://cdn.example.com/people/alice.png?sig=abc"}]
    assert "x-dashscope-ossresourceresolve" not in create.headers


async def test_a_file_is_uploaded_once_while_its_temporary_url_lives(ds_settings, dashscope, refs):
    async with Client(build_server(ds_settings)) as client:
        for prompt in ("Image 1 waves", "Image 1 bows"):
            r = await call(client, "generate_r2v", {"prompt": prompt, "provider": "dashscope",
                                                    "reference_images": [str(refs["img1"])], "wait_seconds": 20})
            assert r["structuredContent"]["status"] == "succeeded"
    assert len(dashscope.calls("/oss")) == 1
    first, second = dashscope.calls(CREATE, "POST")
    assert first.json["input"]["media"] == second.json["input"]["media"]


async def test_the_default_provider_is_dashscope_when_its_key_is_set(ds_settings, dashscope, refs):
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": [str(refs["img1"])],
                                                "dry_run": True})
    assert r["structuredContent"]["provider"] == "dashscope"
    assert r["structuredContent"]["payload"]["input"]["media"] == [
        {"type": "reference_image", "url": "<Image 1: local file, uploaded to DashScope storage on submit>"}]
    assert r["structuredContent"]["cost_estimate_usd"] == 0.75  # 5 s at 1080p, $0.15/s
    assert dashscope.received == []


@pytest.mark.parametrize("code,ours,hint", [
    ("InvalidParameter", "host_invalid_parameter", "fix what the host names"),
    ("DataInspectionFailed", "content_moderation", "change the prompt or the references"),
])
async def test_a_failed_generation_carries_a_stable_code_the_hosts_words_and_a_hint(ds_settings, dashscope, refs,
                                                                                    code, ours, hint):
    dashscope.next_outcome.append(("FAILED", (code, "Input data may contain inappropriate content.\u202e")))
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "provider": "dashscope",
                                                "reference_images": [str(refs["img1"])], "wait_seconds": 20})
    view = r["structuredContent"]
    assert r["isError"] is True and view["status"] == "failed"
    assert view["error"]["code"] == ours
    assert view["error"]["message"].endswith("DashScope said: Input data may contain inappropriate content.")
    assert hint in view["error"]["hint"]
    assert text(r).startswith(f"Task {view['task_id']} failed on dashscope [{ours}]: ")


async def test_unknown_at_the_host_is_terminal(ds_settings, dashscope, refs):
    dashscope.next_outcome.append(("UNKNOWN", None))
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "provider": "dashscope",
                                                "reference_images": [str(refs["img1"])], "wait_seconds": 20})
    view = r["structuredContent"]
    assert view["status"] == "failed" and view["error"]["code"] == "task_unknown"
    assert "DASHSCOPE_REGION" in view["error"]["hint"]


async def test_a_key_from_the_other_region_gets_a_hint_naming_it(dirs, dashscope, refs):
    settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"], allowed_dirs=str(dirs["refs"]),
                        hosts={"dashscope": {"api_key": "sk-beijingkey000000000000", "base_url": dashscope.base_url,
                                             "region": "singapore"}})
    async with Client(build_server(settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "provider": "dashscope",
                                                "reference_images": ["https://cdn.example.com/a.png"]})
    view = r["structuredContent"]
    assert r["isError"] is True and view["error"]["code"] == "auth_failed"
    assert "if this key is from Beijing, set DASHSCOPE_REGION=beijing" in view["error"]["hint"]
    assert "sk-beijingkey000000000000" not in json.dumps(r)


async def test_a_429_on_create_is_waited_out_and_sent_once_more(ds_settings, dashscope, refs):
    dashscope.fault("create", status=429, headers={"Retry-After": "1"},
                    body={"code": "Throttling.RateQuota", "message": "Requests rate limit exceeded"})
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "provider": "dashscope",
                                                "reference_images": ["https://cdn.example.com/a.png"], "wait_seconds": 20})
    assert r["structuredContent"]["status"] == "succeeded"
    assert len(dashscope.calls(CREATE)) == 2 and len(dashscope.tasks) == 1


async def test_server_errors_while_polling_are_retried(ds_settings, dashscope, refs):
    dashscope.fault("poll", status=503, body={"code": "ServiceUnavailable", "message": "busy"}, times=2)
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "provider": "dashscope",
                                                "reference_images": ["https://cdn.example.com/a.png"], "wait_seconds": 30})
    assert r["structuredContent"]["status"] == "succeeded"


async def test_a_create_whose_answer_is_lost_is_found_at_the_host_and_never_sent_again(ds_settings, dashscope, refs,
                                                                                     result_videos):
    dashscope.fault("create", drop=True)  # the host makes the job, the answer never arrives
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "provider": "dashscope",
                                                "reference_images": ["https://cdn.example.com/a.png"], "wait_seconds": 30})
    view = r["structuredContent"]
    assert len(dashscope.calls(CREATE)) == 1 and len(dashscope.tasks) == 1
    (host_id,) = dashscope.tasks
    assert view["status"] == "succeeded" and view["provider_task_id"] == host_id
    assert Path(view["local_path"]).read_bytes() == result_videos(view["request"]["duration"])
    assert dashscope.calls("/api/v1/tasks", "GET")[0].query["model_name"] == "wan2.7-r2v"


async def test_a_create_answered_with_a_server_error_is_sent_again_only_once_the_host_list_proves_it_made_nothing(
        ds_settings, dashscope):
    dashscope.fault("create", status=502, body={"code": "InternalError", "message": "bad gateway"})
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "provider": "dashscope",
                                                "reference_images": ["https://cdn.example.com/a.png"], "wait_seconds": 30})
    view = r["structuredContent"]
    # The host's own job list, read over half a minute, proved that nothing was made (DashScope's task list reference): only then
    # was the create sent once more. One job, one payment.
    assert len(dashscope.calls(CREATE)) == 2 and len(dashscope.tasks) == 1
    assert view["status"] == "succeeded" and view["provider_task_id"] in dashscope.tasks


async def test_a_create_that_twice_made_nothing_fails_as_not_created(ds_settings, dashscope):
    dashscope.fault("create", status=502, body={"code": "InternalError", "message": "bad gateway"}, times=2)
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "provider": "dashscope",
                                                "reference_images": ["https://cdn.example.com/a.png"], "wait_seconds": 30})
    view = r["structuredContent"]
    assert len(dashscope.calls(CREATE)) == 2 and dashscope.tasks == {}
    assert view["status"] == "failed" and view["error"] == {
        "code": "not_created",
        "message": "the create request did not make a job: the host's job list shows none made at that time",
        "hint": "nothing was created or paid; generate again"}


async def test_someone_elses_job_in_the_window_is_not_adopted(ds_settings, dashscope):
    # another client of the same account created a job a moment ago, with another prompt
    other = {"model": "wan2.7-r2v", "input": {"prompt": "a different prompt", "media": []}}
    created = httpx.post(dashscope.base_url + "/services/aigc/video-generation/video-synthesis", json=other,
                         headers={"Authorization": f"Bearer {DASHSCOPE_KEY}", "X-DashScope-Async": "enable"})
    assert created.status_code == 200
    dashscope.fault("create", drop=True)
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "provider": "dashscope",
                                                "reference_images": ["https://cdn.example.com/a.png"],
                                                "wait_seconds": 30})
    view = r["structuredContent"]
    ours = next(t for t in dashscope.tasks.values() if t.body["input"]["prompt"] == "Image 1 waves")
    assert len(dashscope.tasks) == 2
    assert view["provider_task_id"] == ours.task_id and view["status"] == "succeeded"


async def test_cancel_reaches_the_host_while_the_task_is_pending(ds_settings, dashscope, refs):
    dashscope.timing.pending = 30
    async with Client(build_server(ds_settings)) as client:
        started = await call(client, "generate_r2v", {"prompt": "Image 1", "provider": "dashscope", "wait_seconds": 0,
                                                      "reference_images": ["https://cdn.example.com/a.png"]})
        task_id = started["structuredContent"]["task_id"]
        canceled = await call(client, "cancel_task", {"task_id": task_id})
    assert canceled["structuredContent"]["status"] == "canceled"
    job = canceled["structuredContent"]["provider_task_id"]
    (cancel,) = dashscope.calls("/api/v1/tasks/", "POST")
    assert cancel.path == f"/api/v1/tasks/{job}/cancel"
    assert dashscope.status_of(dashscope.tasks[job]) == "CANCELED"


async def test_an_expired_result_url_is_reported_as_such(ds_settings, dashscope, refs):
    dashscope.results_expired = True
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "provider": "dashscope",
                                                "reference_images": ["https://cdn.example.com/a.png"], "wait_seconds": 20})
    assert r["structuredContent"]["error"]["code"] == "result_expired"


async def test_fields_dashscope_cannot_take_are_refused_before_any_upload(ds_settings, dashscope, refs):
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "provider": "dashscope", "shot_type": "multi",
                                                "reference_images": [str(refs["img1"])]})
    assert r["isError"] is True
    assert text(r) == ("Error executing tool generate_r2v: [invalid_input] shot_type: DashScope cannot take shot_type. "
                       "Fix: leave shot_type out, or use provider=replicate or fal.")
    assert dashscope.received == []


async def test_the_key_never_reaches_the_ledger_or_the_results(ds_settings, dashscope, refs, dirs):
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "provider": "dashscope",
                                                "reference_images": [str(refs["img1"])], "wait_seconds": 20})
        listed = await call(client, "list_tasks", {})
    assert DASHSCOPE_KEY not in json.dumps(r) + json.dumps(listed)
    for path in list(dirs["data"].rglob("*")) + list(dirs["out"].rglob("*")):
        if path.is_file():
            assert DASHSCOPE_KEY.encode() not in path.read_bytes(), path
    with sqlite3.connect(dirs["data"] / "tasks.sqlite3") as db:
        assert DASHSCOPE_KEY not in json.dumps(db.execute("SELECT * FROM tasks").fetchall())


async def test_a_missing_key_points_at_the_variable_and_the_preview(settings, refs):
    async with Client(build_server(settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "provider": "dashscope",
                                                "reference_images": [str(refs["img1"])]})
    assert text(r) == ("Error executing tool generate_r2v: [provider_unavailable] provider: DashScope needs an API key and "
                       "DASHSCOPE_API_KEY is not set. Fix: set DASHSCOPE_API_KEY in the server's environment, or try "
                       "provider=\"preview\" for a free offline draft.")


async def test_a_workspace_id_is_sent_on_every_call(dirs, dashscope, refs):
    settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"], allowed_dirs=str(dirs["refs"]),
                        hosts={"dashscope": {"api_key": DASHSCOPE_KEY, "base_url": dashscope.base_url,
                                             "workspace_id": "ws-1234"}})
    async with Client(build_server(settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "provider": "dashscope",
                                                "reference_images": [str(refs["img1"])], "wait_seconds": 20})
    assert r["structuredContent"]["status"] == "succeeded"
    api_calls = [c for c in dashscope.received if c.path.startswith("/api/v1/")]
    assert api_calls and all(c.headers.get("x-dashscope-workspace") == "ws-1234" for c in api_calls)
    assert all("x-dashscope-workspace" not in c.headers for c in dashscope.calls("/oss"))


async def test_an_unknown_region_is_named_with_the_fix(dirs, refs):
    settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"],
                        hosts={"dashscope": {"api_key": DASHSCOPE_KEY, "region": "tokyo"}})
    async with Client(build_server(settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "provider": "dashscope",
                                                "reference_images": ["https://cdn.example.com/a.png"]})
    assert text(r) == ("Error executing tool generate_r2v: [not_configured] DASHSCOPE_REGION='tokyo' is not a region "
                       "that serves Wan 2.7. Fix: set DASHSCOPE_REGION to singapore or beijing, or "
                       "DASHSCOPE_BASE_URL to the API base.")


async def test_slow_answers_while_polling_do_not_break_the_flow(ds_settings, dashscope):
    dashscope.fault("poll", delay=2.0, times=2)
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "provider": "dashscope",
                                                "reference_images": ["https://cdn.example.com/a.png"], "wait_seconds": 30})
    assert r["structuredContent"]["status"] == "succeeded"


@pytest.mark.parametrize("region,url", [("singapore", "https://dashscope-intl.aliyuncs.com/api/v1"),
                                        ("beijing", "https://dashscope.aliyuncs.com/api/v1")])
def test_regions_choose_their_hosts(dirs, region, url):
    from wan_r2v_mcp.providers.dashscope import DashScopeProvider

    settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"],
                        hosts={"dashscope": {"api_key": DASHSCOPE_KEY, "region": region}})
    assert DashScopeProvider(settings).base_url == url


async def test_a_job_its_list_shows_running_is_said_to_run_without_a_poll(ds_settings, dashscope):
    """The job list that stands for polls also says when a job starts: the task reads running from then on,
    though the job itself is polled only once, when the list shows it ended."""
    dashscope.job_timing = lambda: (0.3, 4.0)
    seen: list[str] = []

    async def on_progress(progress, total, message):
        seen.append(message)

    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_t2v", {"prompt": "A lighthouse at dusk", "duration": 2, "resolution": "720p",
                                                "provider": "dashscope", "wait_seconds": 45},
                       progress_callback=on_progress)
    assert r["structuredContent"]["status"] == "succeeded", text(r)
    assert [t.polls for t in dashscope.tasks.values()] == [1]  # the list, not polls, told it
    assert any("running: started at DashScope, as its job list shows;" in m for m in seen), seen
