"""What an agent sees (issue #11): no argument silently dropped, one error language, schemas every client takes."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from conftest import call, text

pytestmark = pytest.mark.anyio

PREFIX = "Error executing tool generate_r2v: [invalid_input] "


@pytest.mark.parametrize(("given", "meant"), [("aspect", "aspect_ratio"), ("ratio", "aspect_ratio"),
                                               ("length", "duration"), ("negative", "negative_prompt"),
                                               ("images", "reference_images"), ("ref_images", "reference_images")])
async def test_an_unknown_argument_name_is_refused_with_the_closest_real_one(client, refs, given, meant):
    r = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": [str(refs["img1"])],
                                            given: "9:16"})
    assert r["isError"] is True
    assert text(r) == f"{PREFIX}{given}: is not an argument of generate_r2v; did you mean {meant}? Nothing was " \
                      f"submitted. Fix: use {meant}."
    assert (await call(client, "list_tasks", {}))["structuredContent"]["total"] == 0


async def test_every_tool_refuses_unknown_names_in_the_same_words(client):
    r = await call(client, "get_task", {"id": "r2v_x"})
    assert text(r) == ("Error executing tool get_task: [invalid_input] 2 problems with the arguments:\n"
                       "- id: is not an argument of get_task; did you mean task_id? Fix: use task_id.\n"
                       "- task_id: is required. Fix: pass task_id: A generate tool's task_id.")
    r = await call(client, "list_tasks", {"count": 5})
    assert text(r) == ("Error executing tool list_tasks: [invalid_input] count: is not an argument of list_tasks; did "
                       "you mean limit? Fix: use limit.")


async def test_every_tool_that_waits_waits_alike_by_default(client):
    """Issue #19: get_task answered at once by default where the generate tools waited 50 s, so the same words
    ("call get_task") meant two things. A client that listens to no progress is answered within its quiet wait."""
    waits = {t.name: t.input_schema["properties"]["wait_seconds"] for t in (await client.list_tools()).tools
             if "wait_seconds" in t.input_schema["properties"]}
    assert {name: w["default"] for name, w in waits.items()} == dict.fromkeys(
        ["generate_r2v", "generate_t2v", "generate_i2v", "edit_video", "get_task", "generate_sequence", "redo_shot"],
        50)
    worded = {w.get("description") for w in waits.values()} - {None, ""}
    assert worded == {"Seconds to wait, with progress (cap 50); 0 answers at once."}


async def test_task_tools_speak_the_field_limit_fix_language_not_pydantics(client):
    r = await call(client, "get_task", {"task_id": "r2v_x", "wait_seconds": -5})
    assert text(r) == ("Error executing tool get_task: [invalid_input] wait_seconds: is -5. Limit: at least 0. Fix: "
                       "use 0 or more.")
    r = await call(client, "list_tasks", {"limit": 500})
    assert text(r) == ("Error executing tool list_tasks: [invalid_input] limit: is 500. Limit: 1 to 100. Fix: use a "
                       "value from 1 to 100.")
    r = await call(client, "list_tasks", {"status": "done"})
    assert text(r).startswith("Error executing tool list_tasks: [invalid_input] status: 'done' is not an accepted "
                              "value. Limit: one of 'all', 'queued', 'running', 'succeeded', 'failed' or "
                              "'canceled'.")


async def test_seed_minus_one_says_to_leave_it_out_and_1080P_is_accepted(client, refs):
    r = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": [str(refs["img1"])], "seed": -1})
    assert text(r) == f"{PREFIX}seed: is -1. Limit: 0 to 2147483647. Fix: leave seed out for a random one."
    ok = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": [str(refs["img1"])],
                                             "resolution": "1080P", "dry_run": True})
    assert ok["isError"] is False and ok["structuredContent"]["request"]["resolution"] == "1080p"


async def test_tools_list_is_small_and_every_schema_passes_the_strict_converters(client):
    from agents.strict_schema import ensure_strict_json_schema
    from google.genai._mcp_utils import mcp_to_gemini_tool

    result = await client.list_tools()
    listed = result.tools
    # The bytes of the JSON-RPC result, as every client reads it at every connection; in the 2026 era the SDK also
    # stamps the server's info (with its icon) on every result alike, which is not the tool list's to carry.
    body = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    body.pop("_meta", None)
    size = len(json.dumps(body, separators=(",", ":")))
    assert size <= 16 * 1024, size  # every tool together
    first = {**body, "tools": [t for t in body["tools"] if t["name"] not in ("generate_t2v", "generate_i2v",
                                                                            "edit_video")]}
    assert len(json.dumps(first, separators=(",", ":"))) <= 12 * 1024  # the reference-to-video server as it was
    for tool in listed:
        ensure_strict_json_schema(copy.deepcopy(tool.input_schema))  # the OpenAI Agents SDK's strict conversion
        mcp_to_gemini_tool(tool)  # google-genai's MCP tool converter


async def test_voices_as_a_list_or_the_older_map_mean_the_same(client, refs):
    base = {"prompt": "Image 1 says hello", "reference_images": [str(refs["img1"])], "dry_run": True}
    listed = await call(client, "generate_r2v", {**base, "voices": [{"label": "Image 1", "audio": str(refs["voice"])}]})
    mapped = await call(client, "generate_r2v", {**base, "voices": {"Image 1": str(refs["voice"])}})
    assert listed["structuredContent"]["payload"] == mapped["structuredContent"]["payload"]
    assert [r["label"] for r in listed["structuredContent"]["references"]] == ["Image 1", "Voice of Image 1"]


async def test_the_prompt_is_checked_where_money_is_spent(client, refs):
    base = {"reference_images": [str(refs["img1"])], "dry_run": True}
    old = await call(client, "generate_r2v", {**base, "prompt": "Character 1 waves"})
    assert text(old) == (f'{PREFIX}prompt: "Character 1" is Wan 2.6 naming, which Wan 2.7 ignores. Fix: write '
                         '"Image 1" instead.')
    for prompt, warning in (
            ("A woman waves", 'the prompt names no reference. Fix: name what each reference does, e.g. "Image 1 '
                              'walks into the room".'),
            ("image1 waves", '"image1" is written without a space. Fix: write "Image 1", as Wan 2.7 names '
                             'references.'),
            ("Image 1 waves at the first image", '"the first image" does not name a reference. Fix: write '
                                                 '"Image 1".')):
        r = (await call(client, "generate_r2v", {**base, "prompt": prompt}))
        assert r["isError"] is False and r["structuredContent"]["warnings"] == [warning], prompt
        assert f"Prompt warnings: {warning}" in text(r)


async def test_cancelling_a_finished_task_says_there_is_nothing_to_cancel(client, refs):
    done = (await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": [str(refs["img1"])],
                                                "resolution": "720p", "duration": 2, "wait_seconds": 30}))
    task_id = done["structuredContent"]["task_id"]
    r = await call(client, "cancel_task", {"task_id": task_id})
    assert r["structuredContent"]["status"] == "succeeded"
    assert text(r).startswith(f"Task {task_id} had already ended (succeeded): there is nothing to cancel. ")


async def test_the_result_reports_the_size_and_length_of_the_file_that_really_came_back(ds_settings, dashscope):
    from mcp import Client

    from wan_r2v_mcp.server import build_server

    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": ["https://cdn.example.com/a.png"],
                                                "resolution": "1080p", "duration": 4})
        planned = await call(client, "generate_r2v", {"prompt": "Image 1", "dry_run": True,
                                                      "reference_images": ["https://cdn.example.com/a.png"],
                                                      "first_frame": "https://cdn.example.com/f.png"})
    view = r["structuredContent"]
    assert view["request"]["width"] == 1920 and view["output"] == {"width": 480, "height": 270, "seconds": 4.0}
    assert text(r).startswith(f"Task {view['task_id']} succeeded on dashscope: video (480x270, 4 s) saved to ")
    assert "Output 5 s, shaped like the first frame (aspect_ratio does not apply)." in text(planned)


@pytest.mark.parametrize(("given", "said"), [
    ("https://[::1/x.png", "is not a valid URL"),
    ("~nosuchuser/a.png", "'~nosuchuser/a.png' names a user with no home folder on this machine"),
    ("https://example.com:99999/a.png", "is not a valid URL"),
    ("file:///tmp/%00x.png", "contains a NUL character (%00)"),
    ("data:image/png;base64,!!!", "is a data URI whose base64 does not decode"),
])
async def test_malformed_references_are_named_never_an_unhandled_error(client, given, said):
    r = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": [given], "dry_run": True})
    assert text(r).startswith(f"Error executing tool generate_r2v: [invalid_reference] reference_images[0]: {said}.")


async def test_a_bare_file_name_gets_the_path_it_most_likely_meant(client, refs):
    r = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": ["alice.png"], "dry_run": True})
    assert text(r) == ("Error executing tool generate_r2v: [invalid_reference] reference_images[0]: 'alice.png' is a "
                       "relative path, and the server's working folder is not yours. Fix: did you mean "
                       f"{refs['img1']}? Give the absolute path.")


async def test_every_tool_is_strict_on_the_openai_agents_mcp_path_and_fully_usable_with_nulls(tmp_path):
    """Issue #19: on the SDK's own MCP path (`convert_schemas_to_strict`) three tools stayed non-strict ($refs), and
    where strict applied a model had to send every field: no character without a voice, no listing of all tasks."""
    import os
    import sys

    import media
    from agents import Agent, RunContextWrapper
    from agents.mcp import MCPServerStdio
    from agents.tool_context import ToolContext

    picture = media.image(tmp_path / "refs" / "alice.png", 640, 480)
    clip = media.video(tmp_path / "refs" / "walk.mp4", 320, 240, seconds=2.0)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("WAN_R2V_")},
           "WAN_R2V_DATA_DIR": str(tmp_path / "data"), "WAN_R2V_OUTPUT_DIR": str(tmp_path / "out"),
           "WAN_R2V_ALLOWED_DIRS": str(tmp_path / "refs")}
    server = MCPServerStdio(params={"command": sys.executable, "args": ["-m", "wan_r2v_mcp"], "env": env},
                            name="wan-r2v")  # the SDK's defaults, its 5 s call timeout included
    async with server:
        agent = Agent(name="director", mcp_servers=[server], mcp_config={"convert_schemas_to_strict": True})
        tools = {t.name: t for t in await agent.get_all_tools(RunContextWrapper(None))}
        assert len(tools) == 15 and all(t.strict_json_schema for t in tools.values()), [
            n for n, t in tools.items() if not t.strict_json_schema]

        async def invoke(tool: str, **given):  # what a strict model sends: every field, null where it means unset
            schema = tools[tool].params_json_schema
            assert set(schema["required"]) == set(schema["properties"])
            args = json.dumps({k: given.get(k) for k in schema["properties"]})
            context = ToolContext(context=None, tool_name=tool, tool_call_id="call-1", tool_arguments=args)
            return await tools[tool].on_invoke_tool(context, args)

        saved = await invoke("save_character", name="alice", reference=str(picture), voice="", description="barista",
                             replace=False)
        assert "Saved character @alice" in str(saved), saved
        listed = await invoke("list_tasks", limit=20, status="all")
        assert "No tasks yet." in str(listed), listed
        dry = await invoke("generate_r2v", prompt="@alice waves", characters=["alice"], dry_run=True, voices=[],
                           reference_images=[], reference_videos=[], resolution="720p", aspect_ratio="16:9",
                           duration=2, watermark=False, allow_duplicate=False, wait_seconds=0)
        assert "Dry run on preview" in str(dry), dry
        drawn = await invoke("generate_t2v", prompt="A fox runs", dry_run=True, resolution="720p",
                             aspect_ratio="16:9", duration=2, watermark=False, allow_duplicate=False, wait_seconds=0)
        assert "Dry run on preview" in str(drawn), drawn  # audio, seed and the rest sent as null
        animated = await invoke("generate_i2v", prompt="Alice waves", first_frame=str(picture), dry_run=True,
                                resolution="720p", duration=2, watermark=False, allow_duplicate=False, wait_seconds=0)
        assert "Dry run on preview" in str(animated), animated  # last_frame, first_clip, driving_audio null
        edited = await invoke("edit_video", prompt="Make it night", video=str(clip), dry_run=True, resolution="720p",
                              duration=0, audio_setting="auto", reference_images=[], watermark=False,
                              allow_duplicate=False, wait_seconds=0)
        assert "Dry run on preview" in str(edited), edited  # aspect_ratio, seed and the rest null


@pytest.mark.long
async def test_an_agent_on_openai_agents_defaults_gets_its_video_without_a_timed_out_call(tmp_path, dashscope):
    """Issue #19: openai-agents waits 5 s per call by default; generate_r2v (default wait 50 s) and the
    get_task(wait_seconds=50) our words ask for timed out there, unanswered, while the task ran on and was paid.
    A client that asks for no progress is now answered within WAN_R2V_QUIET_WAIT (4 s)."""
    import os
    import re
    import sys

    from agents import Agent, RunContextWrapper
    from agents.mcp import MCPServerStdio
    from agents.tool_context import ToolContext
    from conftest import DASHSCOPE_KEY
    from emulators.dashscope import Timing

    url_ref = ["https://cdn.example.com/a.png"]
    dashscope.timing = Timing(pending=3.0, running=9.0)  # a 12 s job: longer than two of the client's timeouts
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("WAN_R2V_")},
           "WAN_R2V_DATA_DIR": str(tmp_path / "data"), "WAN_R2V_OUTPUT_DIR": str(tmp_path / "out"),
           "DASHSCOPE_API_KEY": DASHSCOPE_KEY, "DASHSCOPE_BASE_URL": dashscope.base_url, "WAN_R2V_TIME_SCALE": "0.1"}
    server = MCPServerStdio(params={"command": sys.executable, "args": ["-m", "wan_r2v_mcp"], "env": env},
                            name="wan-r2v")  # client_session_timeout_seconds: its default, 5 s
    calls = []
    async with server:
        agent = Agent(name="director", mcp_servers=[server])
        tools = {t.name: t for t in await agent.get_all_tools(RunContextWrapper(None))}

        async def invoke(tool: str, args: dict) -> str:
            raw = json.dumps(args)
            context = ToolContext(context=None, tool_name=tool, tool_call_id=f"call-{len(calls)}", tool_arguments=raw)
            answer = str(await tools[tool].on_invoke_tool(context, raw))
            calls.append((tool, answer[:200]))
            assert "timed out" not in answer.lower(), answer
            return answer

        # Only what our words say: generate, then get_task(task_id, wait_seconds=50) until it is done.
        first = await invoke("generate_r2v", {"prompt": "Image 1 waves", "reference_images": url_ref,
                                              "provider": "dashscope", "resolution": "720p", "duration": 2})
        task_id = re.search(r"r2v_[A-Za-z0-9_-]+", first).group(0)
        answer = first
        while "succeeded" not in answer.split(".")[0]:
            assert len(calls) < 40, calls
            answer = await invoke("get_task", {"task_id": task_id, "wait_seconds": 50})
    assert "saved to" in answer
    assert len(dashscope.calls("/api/v1/services/aigc/video-generation/video-synthesis", "POST")) == 1
    assert 3 <= len(calls) <= 8, calls  # about one call per 4 s of the job


async def test_google_genai_on_its_own_mcp_path_declares_every_tool_and_calls_one(tmp_path):
    """Issue #19: google-genai's converter was called by hand; here the SDK itself takes an MCP session as a tool,
    declares our tools to a (loopback) Gemini API and calls the one the model asks for, with strict-style nulls."""
    import os
    import sys

    from emulators.gemini import GeminiEmulator
    from google import genai
    from google.genai import types
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("WAN_R2V_")},
           "WAN_R2V_DATA_DIR": str(tmp_path / "data"), "WAN_R2V_OUTPUT_DIR": str(tmp_path / "out")}
    params = StdioServerParameters(command=sys.executable, args=["-m", "wan_r2v_mcp"], env=env)
    with GeminiEmulator({"name": "list_tasks", "args": {"limit": 5, "status": "all"}}) as gemini:
        model = genai.Client(api_key="gemini-emulated-0123456789",
                             http_options=types.HttpOptions(base_url=gemini.root, api_version="v1beta"))
        async with Client(stdio_client(params), mode="legacy") as mcp_client:
            reply = await model.aio.models.generate_content(
                model="gemini-2.5-flash", contents="What have I made so far?",
                # A dict: the SDK deep-copies a GenerateContentConfig, and a live mcp 2.x session cannot be copied.
                config={"tools": [mcp_client.session]})
    assert reply.text == "Done."
    first, second = gemini.requests
    declared = sorted(d["name"] for tool in first["tools"] for d in tool.get("functionDeclarations", []))
    assert declared == sorted(["generate_r2v", "generate_t2v", "generate_i2v", "edit_video", "list_references", "get_task", "cancel_task", "list_tasks",
                               "save_character", "list_characters", "delete_character", "generate_sequence",
                               "redo_shot", "pick_take", "stitch"])
    response = next(part["functionResponse"] for content in second["contents"] for part in content["parts"]
                    if "functionResponse" in part)
    assert response["name"] == "list_tasks" and "No tasks yet." in json.dumps(response)


TS_SDK = Path(__file__).resolve().parent.parent / ".ci" / "tools" / "node_modules" / "@modelcontextprotocol" / "sdk"


@pytest.mark.skipif(not TS_SDK.is_dir() or shutil.which("node") is None,
                    reason="node or the TypeScript SDK is missing: .ci/tools.sh installs it")
@pytest.mark.long
def test_a_typescript_sdk_client_on_its_defaults_gets_its_video_without_a_timed_out_call(tmp_path, dashscope):
    """Issue #19: the TypeScript SDK's default timeout is not reset by progress unless asked; a client on its
    defaults asks for no progress, so every call is answered within WAN_R2V_QUIET_WAIT."""
    import os
    import subprocess
    import sys

    from conftest import DASHSCOPE_KEY
    from emulators.dashscope import Timing

    dashscope.timing = Timing(pending=3.0, running=9.0)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("WAN_R2V_")},
           "WAN_R2V_DATA_DIR": str(tmp_path / "data"), "WAN_R2V_OUTPUT_DIR": str(tmp_path / "out"),
           "DASHSCOPE_API_KEY": DASHSCOPE_KEY, "DASHSCOPE_BASE_URL": dashscope.base_url, "WAN_R2V_TIME_SCALE": "0.1",
           "NODE_PATH": str(TS_SDK.parent.parent)}
    args = {"prompt": "Image 1 waves", "reference_images": ["https://cdn.example.com/a.png"], "provider": "dashscope",
            "resolution": "720p", "duration": 2}
    script = Path(__file__).resolve().parent / "clients" / "ts_client.cjs"
    done = subprocess.run(["node", str(script), sys.executable, json.dumps(args)], env=env, capture_output=True,
                          text=True, timeout=120)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0, (done.stdout, done.stderr[-2000:])
    calls, end = lines[:-1], lines[-1]
    assert end["end"] == "succeeded" and Path(end["local_path"]).is_file(), lines
    assert all(c["error"] is None and c["ms"] < 10_000 for c in calls), calls
    assert 3 <= len(calls) <= 8, calls  # about one call per 4 s of a 12 s job
    assert len(dashscope.calls("/api/v1/services/aigc/video-generation/video-synthesis", "POST")) == 1
