"""The surface a client sees: the tool list (pinned by a snapshot), annotations, and a real stdio process."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cli_runner
import media
import pytest
from conftest import call, dump
from mcp import Client, StdioServerParameters

from wan_r2v_mcp.server import build_server

pytestmark = pytest.mark.anyio

SNAPSHOT = Path(__file__).parent / "snapshots" / "tools_list.json"


async def test_tools_list_matches_the_committed_snapshot(client):
    listed = await client.list_tools()
    tools = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed.tools]
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(dump(tools) + "\n")
    assert dump(tools) + "\n" == SNAPSHOT.read_text(), "tools/list changed: rerun with UPDATE_SNAPSHOTS=1 and review the diff"


async def test_a_start_reads_the_tools_schemas_kept_by_the_last_and_makes_them_again_when_they_do_not_fit(settings):
    """The schemas are kept in the data folder for this very code: a second start reads them (and lists the same
    bytes as the snapshot); a file of another key, or one that is not JSON, is made again and replaced."""
    from wan_r2v_mcp.tools.schema_cache import code_key

    kept = settings.data.tool_schemas

    async def listed() -> str:
        async with Client(build_server(settings)) as client:
            return dump([t.model_dump(mode="json", by_alias=True, exclude_none=True)
                         for t in (await client.list_tools()).tools]) + "\n"

    assert not kept.exists()
    assert await listed() == SNAPSHOT.read_text()  # made, then kept
    first = json.loads(kept.read_text())
    assert first["key"] == code_key() and len(first["schemas"]) == 15
    stamp = kept.stat().st_mtime_ns
    assert await listed() == SNAPSHOT.read_text() and kept.stat().st_mtime_ns == stamp  # read, not written again
    for other in ({"key": "another version of the code", "schemas": {"generate_r2v": {"input": {}, "output": None}}},
                  {"key": first["key"], "schemas": {**first["schemas"], "get_task": {"input": 5}}},
                  "not json"):
        kept.write_text(other if isinstance(other, str) else json.dumps(other))
        assert await listed() == SNAPSHOT.read_text()
        assert json.loads(kept.read_text()) == first


async def test_annotations_say_what_each_tool_may_do(client):
    tools = {t.name: t.annotations for t in (await client.list_tools()).tools}
    defaults = {"read_only_hint": False, "destructive_hint": True, "idempotent_hint": False, "open_world_hint": True}

    def hints(name):  # as a client reads them: a hint not given means the spec's default
        given = tools[name].model_dump(exclude_none=True)
        return tuple(given.get(k, v) for k, v in defaults.items())

    assert hints("generate_r2v") == hints("generate_sequence") == (False, False, False, True)
    for name in ("get_task", "list_references", "list_tasks", "list_characters"):
        assert tools[name].read_only_hint is True, name
    assert hints("cancel_task") == (False, True, True, True)
    assert hints("delete_character") == (False, True, True, False)
    assert hints("save_character")[:2] == hints("stitch")[:2] == (False, False)


async def test_the_generate_schema_carries_the_models_limits(client):
    schema = next(t for t in (await client.list_tools()).tools if t.name == "generate_r2v").input_schema
    props = schema["properties"]
    assert schema["required"] == ["prompt"]
    assert list(props)[:5] == ["prompt", "reference_images", "reference_videos", "first_frame", "voices"]
    assert (props["prompt"]["minLength"], props["prompt"]["maxLength"]) == (1, 5000)
    assert props["negative_prompt"]["maxLength"] == 500
    assert props["aspect_ratio"]["enum"] == ["16:9", "9:16", "1:1", "4:3", "3:4"]
    assert props["resolution"] == {"default": "1080p", "description": "Output resolution.",
                                   "enum": ["720p", "1080p"], "type": "string"}
    # 30 with Wan 3.0's reference mode; Wan 2.7's 15 is said in the description and kept by its routes.
    assert (props["duration"]["minimum"], props["duration"]["maximum"], props["duration"]["default"]) == (2, 30, 5)
    assert props["model"] == {"default": "wan2.7-r2v", "enum": ["wan2.7-r2v", "wan3.0-video"], "type": "string",
                              "description": 'Wan 3.0 preview: dashscope, fal; voice k is "Audio k".'}
    # May be null: a strict client must send every field, and null is how it leaves one unset.
    assert props["seed"] == {"maximum": 2147483647, "minimum": 0, "type": ["integer", "null"],
                             "description": "Random when omitted."}
    assert '"Image 1"... in order' in props["reference_images"]["description"]
    assert '"Video 1"' in props["reference_videos"]["description"]


async def test_the_server_runs_as_a_real_stdio_process(dirs, refs):
    env = {**os.environ, "WAN_R2V_DATA_DIR": str(dirs["data"]), "WAN_R2V_OUTPUT_DIR": str(dirs["out"]),
           "WAN_R2V_ALLOWED_DIRS": str(dirs["refs"])}
    for key in ("DASHSCOPE_API_KEY", "REPLICATE_API_TOKEN", "INFERENCE_API_KEY", "FAL_KEY"):
        env.pop(key, None)
    params = StdioServerParameters(command=sys.executable, args=["-m", "wan_r2v_mcp"], env=env)
    async with Client(params, mode="legacy") as client:
        assert client.server_info.name == "wan-r2v-mcp"
        names = sorted(t.name for t in (await client.list_tools()).tools)
        assert names == ["cancel_task", "delete_character", "edit_video", "generate_i2v", "generate_r2v", "generate_sequence",
                         "generate_t2v",
                         "get_task",
                     "list_characters", "list_references", "list_tasks", "pick_take", "redo_shot", "save_character",
                     "stitch"]
        progress: list[float] = []

        async def on_progress(p, t, m):
            progress.append(p)

        result = await call(client, "generate_r2v", {
            "prompt": "Image 1 bows", "reference_images": [str(refs["img1"])], "resolution": "720p",
            "duration": 2, "wait_seconds": 45}, progress_callback=on_progress)
    view = result["structuredContent"]
    assert view["status"] == "succeeded", json.dumps(result)[:2000]
    assert media.decode(Path(view["local_path"]))["frames"] == 60
    assert progress, "progress notifications must cross the stdio pipe"


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_the_server_runs_over_streamable_http_without_local_files(dirs, refs):

    import anyio
    import httpx

    port = _free_port()
    env = {**os.environ, "WAN_R2V_DATA_DIR": str(dirs["data"]), "WAN_R2V_OUTPUT_DIR": str(dirs["out"])}
    proc = cli_runner.start(["serve", "--transport", "http", "--port", str(port)], cwd=dirs["data"], env=env)
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=0.5)
                break
            except httpx.TransportError:
                await anyio.sleep(0.1)
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            names = sorted(t.name for t in (await client.list_tools()).tools)
            assert "generate_r2v" in names
            refused = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": [str(refs["img1"])]})
            assert refused["isError"] is True
            assert "local files are off on this server" in refused["content"][0]["text"]
            progress = []

            async def on_progress(p, t, m):
                progress.append(p)

            ok = await call(client, "generate_r2v", {"prompt": "Image 1", "resolution": "720p", "duration": 2,
                                                     "reference_images": ["https://cdn.example.com/a.png"],
                                                     "wait_seconds": 45}, progress_callback=on_progress)
            assert ok["structuredContent"]["status"] == "succeeded"
            assert progress, "progress must arrive over streamable HTTP (SSE responses)"
    finally:
        proc.terminate()
        proc.communicate(10)


def test_doctor_reports_what_the_server_sees_without_secrets(dirs):

    env = {**os.environ, "WAN_R2V_DATA_DIR": str(dirs["data"]), "WAN_R2V_OUTPUT_DIR": str(dirs["out"]),
           "DASHSCOPE_API_KEY": "sk-doctor000000000000000"}
    out = cli_runner.run(["doctor"], cwd=dirs["data"], env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "default provider: dashscope" in lines
    assert "  dashscope: key set (DASHSCOPE_REGION=singapore)" in lines and "  fal: no key (FAL_KEY not set)" in lines
    assert f"output folder: {dirs['out'].resolve()} (writable)" in lines
    assert any(line.startswith("clients start it with: /") for line in lines)
    assert "sk-doctor000000000000000" not in out.stdout + out.stderr


async def test_the_prompt_template_names_the_labels_the_references_will_get(client):
    listed = await client.list_prompts()
    assert [p.name for p in listed.prompts] == ["r2v_prompt"]
    got = await client.get_prompt("r2v_prompt", {"scene": "a duel at dawn", "images": "2", "videos": "1",
                                                 "shots": "2"})
    body = got.messages[0].content.text
    assert body.splitlines()[1].startswith("The references will be named Image 1, Image 2, Video 1 - ")
    assert body.splitlines()[-1] == ('Split it into 2 shots covering the 5 s: Shot 1 [0-2s], Shot 2 [2-5s], each with '
                                     'its own line ("Shot 1 [0-3s]: ...").')
    bad = await client.get_prompt("r2v_prompt", {"scene": "x", "images": "lots", "videos": "9"})
    assert bad.messages[0].content.text == (
        "r2v_prompt cannot write this brief:\n"
        "- images: is 'lots'. Limit: a whole number, 0-5. Fix: pass one in that range.\n"
        "- videos: is '9'. Limit: a whole number, 0-5. Fix: pass one in that range.")


async def test_a_ledger_that_cannot_be_opened_is_said_to_every_call_while_the_server_stays_up(settings):
    """A damaged ledger file does not make the server vanish: it answers the handshake and the tool list, and each
    call that needs the ledger says which file, why, and what to do; nothing is made meanwhile."""
    ledger = settings.data.ledger
    ledger.write_bytes(b"not a database, whatever its name says " * 100)
    async with Client(build_server(settings)) as client:
        assert len((await client.list_tools()).tools) == 15
        for tool, args in (("get_task", {"task_id": "r2v_0123456789abcdef"}), ("list_tasks", {}),
                           ("generate_t2v", {"prompt": "A lighthouse", "duration": 2, "wait_seconds": 0})):
            r = await call(client, tool, args)
            assert r["isError"] is True and r["content"] == [{"type": "text", "text": (
                f"Error executing tool {tool}: [ledger_unavailable] the task ledger {ledger} could not be opened (DatabaseError: file is not a "
                "database). Fix: check that the data folder (WAN_R2V_DATA_DIR) is writable and on a local disk; move "
                "a damaged ledger file aside, then restart the server.")}], (tool, r)
    assert ledger.read_bytes().startswith(b"not a database")  # left as it was, for whoever looks at it
    assert not list(settings.output_dir.iterdir())


async def test_a_database_that_does_not_answer_takes_the_replica_out_and_every_call_says_why(dirs):
    """Over HTTP with WAN_R2V_DATABASE_URL pointing nowhere: /health answers 503 (a load balancer takes the replica
    out), and a call is answered with the reason and the fix, the URL's password in neither."""
    import anyio
    import httpx

    port, nowhere = _free_port(), _free_port()
    env = {**os.environ, "WAN_R2V_DATA_DIR": str(dirs["data"]), "WAN_R2V_OUTPUT_DIR": str(dirs["out"]),
           "WAN_R2V_DATABASE_URL": f"postgresql://alice:pw-{nowhere}-s3cret@127.0.0.1:{nowhere}/wan"}
    proc = cli_runner.start(["serve", "--transport", "http", "--port", str(port)], cwd=dirs["data"], env=env)
    try:
        health = None
        for _ in range(200):  # until it listens and has tried the database
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                if health.status_code == 503:
                    break
            except httpx.TransportError:
                pass
            await anyio.sleep(0.1)
        from wan_r2v_mcp import __version__

        assert health is not None and health.status_code == 503, health
        assert health.json() == {"status": "unavailable", "error": "ledger_unavailable", "version": __version__}
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            r = await call(client, "list_tasks", {})
        said = r["content"][0]["text"]
        assert r["isError"] is True and said.startswith(
            "Error executing tool list_tasks: [ledger_unavailable] the task ledger could not be opened: the database at WAN_R2V_DATABASE_URL did not "
            "let this server in (OperationalError: connection failed: "), said
        assert said.endswith("Fix: check that PostgreSQL is running and that the URL's host, port, user, password and "
                             "database are right, then restart the server."), said
        assert "s3cret" not in said
    finally:
        proc.terminate()
        out, err = proc.communicate(10)
    assert "ledger_unavailable" in err and "s3cret" not in err + out
