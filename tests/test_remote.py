"""Remote and team use over real HTTP (issue #10): identities, isolation, roots, per-caller keys, videos over the wire."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import cli_runner
import httpx
import httpx2
import media
import pytest
import uvicorn
from conftest import DASHSCOPE_KEY, call, finish, text
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from wan_r2v_mcp.config import Settings
from wan_r2v_mcp.http_guard import server_config
from wan_r2v_mcp.providers.host_settings import with_host
from wan_r2v_mcp.server import http_app

pytestmark = pytest.mark.anyio

ALICE, BOB = "alice-token-0123456789abcdef", "bob-token-0123456789abcdefgh"
TOKENS = json.dumps({ALICE: "alice", BOB: "bob"})
URL_REF = ["https://cdn.example.com/a.png"]
QUICK = {"resolution": "720p", "duration": 2}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(settings: Settings, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """The real HTTP app under uvicorn on a loopback port (a free one unless given), in a thread; yields its /mcp
    URL."""
    port = port or _free_port()
    server = uvicorn.Server(server_config(http_app(settings, host), "127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def client(url: str, token: str | None = None, mode: str = "auto", **headers: str) -> Client:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60.0))
    return Client(streamable_http_client(url, http_client=http), mode=mode)  # type: ignore[arg-type]


@pytest.fixture
def team(dirs) -> Settings:
    return Settings(data_dir=dirs["data"], output_dir=dirs["out"], allowed_dirs=str(dirs["refs"]),
                    http_tokens=TOKENS, time_scale=0.1, progress_interval_seconds=1.0)


# ------------------------------------------------------------------ identity

async def test_without_a_valid_token_every_request_is_a_401_with_the_challenge_and_nothing_is_read(team, dirs):
    with serving(team) as url:
        async with httpx.AsyncClient() as http:
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": "generate_r2v", "arguments": {"prompt": "Image 1", "reference_images": URL_REF}}}
            for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": f"Basic {ALICE}"}):
                r = await http.post(url, json=body, headers={**headers, "Accept": "application/json, text/event-stream"})
                assert r.status_code == 401
                assert r.headers["www-authenticate"] == ('Bearer error="invalid_token", '
                                                         'error_description="Authentication required"')
                assert ALICE not in r.text and BOB not in r.text
    assert not any(dirs["out"].iterdir())
    import sqlite3

    with sqlite3.connect(dirs["data"] / "tasks.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0] == 0


async def test_each_caller_sees_only_its_own_tasks_and_anothers_id_reads_like_an_unknown_one(team):
    with serving(team) as url:
        async with client(url, ALICE) as alice, client(url, BOB) as bob:
            mine = (await call(alice, "generate_r2v", {"prompt": "Image 1 waves", "reference_images": URL_REF,
                                                       **QUICK, "wait_seconds": 30}))["structuredContent"]
            assert mine["status"] == "succeeded"
            task_id = mine["task_id"]
            unknown = text(await call(bob, "get_task", {"task_id": "r2v_nope"}))
            assert text(await call(bob, "get_task", {"task_id": task_id})) == unknown.replace("r2v_nope", task_id)
            assert text(await call(bob, "cancel_task", {"task_id": task_id})) == unknown.replace(
                "r2v_nope", task_id).replace("get_task", "cancel_task")
            assert (await call(bob, "list_tasks", {}))["structuredContent"] == {"tasks": [], "total": 0}
            assert (await call(alice, "list_tasks", {}))["structuredContent"]["total"] == 1
            with pytest.raises(Exception, match="no task"):
                await bob.read_resource(f"r2v://tasks/{task_id}")
            listed = json.loads((await bob.read_resource("r2v://tasks")).contents[0].text)
            assert listed == {"total": 0, "tasks": []}
            # The duplicate guard is per caller too: the same request from bob is bob's own task.
            theirs = (await call(bob, "generate_r2v", {"prompt": "Image 1 waves", "reference_images": URL_REF,
                                                       **QUICK}))["structuredContent"]
            assert theirs["task_id"] != task_id and theirs["duplicate"] is False


async def test_an_oauth_callers_identity_is_the_tokens_subject_and_bad_tokens_are_refused(dirs):
    from emulators.issuer import Issuer

    with Issuer() as issuer:
        public = "http://127.0.0.1:9/"  # the audience the tokens are minted for
        settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"], oauth_issuer=issuer.url,
                            oauth_audience="https://r2v.example.com/mcp", oauth_scopes="r2v", public_url=public,
                            time_scale=0.1)
        aud = "https://r2v.example.com/mcp"
        with serving(settings) as url:
            async with client(url, issuer.token("carol", aud)) as carol:
                done = (await call(carol, "generate_r2v", {"prompt": "Image 1", "reference_images": URL_REF, **QUICK,
                                                           "wait_seconds": 30}))["structuredContent"]
                assert done["status"] == "succeeded"
            async with client(url, issuer.token("carol", aud)) as again:
                assert (await call(again, "list_tasks", {}))["structuredContent"]["total"] == 1
            async with client(url, issuer.token("dave", aud)) as dave:
                assert (await call(dave, "list_tasks", {}))["structuredContent"]["total"] == 0
            async with httpx.AsyncClient() as http:
                init = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
                for token, status in ((issuer.token("carol", aud, expires_in=-60), 401),
                                      (issuer.token("carol", "https://another.example.com/mcp"), 401),
                                      (issuer.token("carol", aud, issuer="https://evil.example.com"), 401),
                                      (issuer.token("carol", aud, scope="profile"), 403)):
                    r = await http.post(url, json=init, headers={"Authorization": f"Bearer {token}",
                                                                 "Accept": "application/json, text/event-stream"})
                    assert r.status_code == status, (status, r.text)
                    assert r.headers["www-authenticate"].startswith("Bearer error=")
                    assert "resource_metadata=" in r.headers["www-authenticate"]
                meta = await http.get(url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp"))
                assert meta.status_code == 200 and meta.json()["authorization_servers"] == [issuer.url]


# ------------------------------------------------------------------ safe by default

def test_with_no_identities_the_server_refuses_any_address_but_loopback(dirs):
    settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"])
    with pytest.raises(ValueError, match="refusing to serve on 0.0.0.0 with no caller identities"):
        http_app(settings, "0.0.0.0")
    env = {"PATH": "", "WAN_R2V_DATA_DIR": str(dirs["data"]), "WAN_R2V_OUTPUT_DIR": str(dirs["out"])}
    done = cli_runner.run(["serve", "--transport", "http", "--host", "0.0.0.0"], cwd=dirs["data"], env=env, timeout=30)
    assert done.returncode == 2
    assert done.stderr == ("wan-r2v-mcp: refusing to serve on 0.0.0.0 with no caller identities: set "
                           "WAN_R2V_HTTP_TOKENS (or WAN_R2V_OAUTH_ISSUER), or serve on 127.0.0.1\n")


async def test_on_a_public_address_host_origin_and_body_size_are_checked(team):
    settings = team.model_copy(update={"public_url": "https://r2v.example.com", "max_body_bytes": 20_000})
    with serving(settings, host="0.0.0.0") as url:
        async with httpx.AsyncClient() as http:
            base = {"Authorization": f"Bearer {ALICE}", "Accept": "application/json, text/event-stream"}
            init = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
            assert (await http.post(url, json=init, headers={**base, "Host": "evil.example.com"})).status_code == 421
            assert (await http.post(url, json=init, headers={**base, "Host": "r2v.example.com",
                                                             "Origin": "https://evil.example.com"})).status_code == 403
            big = {**init, "params": {"padding": "x" * 30_000}}
            assert (await http.post(url, json=big, headers={**base, "Host": "r2v.example.com"})).status_code == 413
            ok = await http.post(url, json=init, headers={**base, "Host": "r2v.example.com",
                                                          "MCP-Protocol-Version": "2026-07-28"})
            assert ok.status_code != 421 and ok.status_code != 403


# ------------------------------------------------------------------ roots never widen what the server reads

async def test_a_remote_clients_roots_can_narrow_the_allowed_folders_but_never_widen_them(team, dirs, tmp_path):
    from mcp.types import ListRootsResult, Root

    inside = media.image(dirs["refs"] / "team" / "a.png", 320, 240)
    elsewhere = media.image(dirs["refs"] / "private" / "b.png", 320, 240)
    outside = media.image(tmp_path / "outside" / "c.png", 320, 240)

    async def roots(_context):
        return ListRootsResult(roots=[Root(uri=(dirs["refs"] / "team").as_uri()), Root(uri=outside.parent.as_uri()),
                                      Root(uri="file:///etc")])

    with serving(team) as url:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {ALICE}"}, timeout=httpx2.Timeout(60.0))
        async with Client(streamable_http_client(url, http_client=http), mode="legacy",
                          list_roots_callback=roots) as alice:
            async def check(path):
                return (await call(alice, "list_references", {"reference_images": [str(path)]}))["structuredContent"]

            assert (await check(inside))["ok"] is True
            for path in (elsewhere, outside, Path("/etc/hostname")):
                report = await check(path)
                # Over HTTP, outside and missing read alike (a remote caller learns nothing of the server's disk).
                assert report["ok"] is False and "is not a file this server may read" in \
                    report["references"][0]["problems"][0], report


# ------------------------------------------------------------------ per-caller host keys

async def test_a_callers_own_host_key_pays_for_its_tasks_only_and_is_never_written(team, dirs, dashscope):
    settings = with_host(team, "dashscope", base_url=dashscope.base_url)
    with serving(settings) as url:
        async with client(url, ALICE, **{"X-DashScope-Api-Key": DASHSCOPE_KEY}) as alice, client(url, BOB) as bob:
            done = (await call(alice, "generate_r2v", {"prompt": "Image 1", "reference_images": URL_REF,
                                                       "wait_seconds": 30}))["structuredContent"]
            assert done["provider"] == "dashscope" and done["status"] == "succeeded"
            refused = await call(bob, "generate_r2v", {"prompt": "Image 1", "reference_images": URL_REF,
                                                       "provider": "dashscope"})
            assert text(refused).startswith("Error executing tool generate_r2v: [provider_unavailable] provider: "
                                            "DashScope needs an API key and DASHSCOPE_API_KEY is not set.")
            assert (await call(bob, "generate_r2v", {"prompt": "Image 1", "reference_images": URL_REF, **QUICK})
                    )["structuredContent"]["provider"] == "preview"
        async with client(url, BOB, **{"X-DashScope-Api-Key": "sk-wrong0123456789abcdef"}) as wrong:
            failed = (await call(wrong, "generate_r2v", {"prompt": "Image 1 bows", "reference_images": URL_REF,
                                                         "wait_seconds": 30}))["structuredContent"]
            assert failed["status"] == "failed" and failed["error"]["code"] == "auth_failed"
            assert "sk-wrong" not in json.dumps(failed)
    (create,) = [c for c in dashscope.calls("/api/v1/services") if c.headers["authorization"].endswith(DASHSCOPE_KEY)]
    assert create.json["input"]["prompt"] == "Image 1"
    for path in [*dirs["data"].rglob("*"), *dirs["out"].rglob("*")]:
        if path.is_file():
            assert DASHSCOPE_KEY.encode() not in path.read_bytes() and b"sk-wrong" not in path.read_bytes(), path


@pytest.mark.long
async def test_after_a_restart_a_task_on_a_callers_key_waits_until_the_caller_brings_it_again(team, dashscope):
    dashscope.timing.pending = 3.0
    settings = with_host(team, "dashscope", base_url=dashscope.base_url)
    with serving(settings) as url:
        async with client(url, ALICE, **{"X-DashScope-Api-Key": DASHSCOPE_KEY}) as alice:
            task_id = (await call(alice, "generate_r2v", {"prompt": "Image 1", "reference_images": URL_REF,
                                                          "wait_seconds": 0}))["structuredContent"]["task_id"]
    with serving(settings) as url:  # a new process: the key was held in memory only
        async with client(url, ALICE) as alice:
            with anyio.fail_after(30):  # the new process takes the task up, and finds no key for it
                while not (waiting := (await call(alice, "get_task", {"task_id": task_id, "wait_seconds": 0}))["structuredContent"])[
                        "stage"].startswith("waiting:"):
                    await anyio.sleep(0.05)
            assert waiting["status"] in ("queued", "running")
            assert waiting["stage"] == ("waiting: this task was submitted with its caller's own DashScope key, which "
                                        "the server no longer holds (it restarted since); call any tool again with "
                                        "the X-DashScope-Api-Key header and it is followed again")
        async with client(url, ALICE, **{"X-DashScope-Api-Key": DASHSCOPE_KEY}) as alice:
            await call(alice, "list_tasks", {})
            done = (await finish(alice, task_id))["structuredContent"]
    assert done["status"] == "succeeded"


# ------------------------------------------------------------------ the video reaches a remote client

async def test_a_finished_video_comes_back_as_a_signed_url_with_ranges_a_poster_and_a_resource(team, dirs):
    with serving(team) as url:
        async with client(url, ALICE) as alice:
            result = await call(alice, "generate_r2v", {"prompt": "Image 1", "reference_images": URL_REF, **QUICK,
                                                        "wait_seconds": 30})
            view = result["structuredContent"]
            blob = (await alice.read_resource(f"r2v://tasks/{view['task_id']}/video")).contents[0]
        assert view["local_path"] is None and view["poster_path"] is None  # no server path for a remote caller
        video = (dirs["out"] / f"{view['task_id']}.mp4").read_bytes()
        assert [c["type"] for c in result["content"]] == ["text", "resource_link", "image"]
        assert result["content"][1]["uri"] == f"r2v://tasks/{view['task_id']}/video"
        import base64

        assert base64.b64decode(blob.blob) == video
        assert view["download_url"].startswith(url.replace("/mcp", f"/videos/{view['task_id']}.mp4?c=alice&e="))
        async with httpx.AsyncClient() as http:
            full = await http.get(view["download_url"])
            assert full.status_code == 200 and full.content == video and full.headers["content-type"] == "video/mp4"
            part = await http.get(view["download_url"], headers={"Range": "bytes=0-99"})
            assert part.status_code == 206 and part.content == video[:100]
            # A sandboxed player view (an opaque origin) asks with "Origin: null": the signature decides, not the
            # origin, while /mcp still refuses that origin.
            embedded = await http.get(view["download_url"], headers={"Range": "bytes=0-99", "Origin": "null"})
            assert embedded.status_code == 206 and embedded.content == video[:100]
            posted = await http.post(url, headers={"Origin": "null", "Authorization": f"Bearer {ALICE}"}, json={})
            assert posted.status_code == 403 and posted.text == "Invalid Origin header"
            assert part.headers["content-range"] == f"bytes 0-99/{len(video)}"
            poster = await http.get(view["poster_url"])
            assert poster.status_code == 200 and poster.content[:3] == b"\xff\xd8\xff"
            unsigned = view["download_url"].split("?")[0]
            for bad in (unsigned, view["download_url"].replace("c=alice", "c=bob"),
                        view["download_url"].replace("&s=", "&s=0")):
                r = await http.get(bad)
                assert r.status_code == 403 and r.text == ("This link is not valid or has expired; get_task gives a "
                                                           "fresh one.")


async def test_reading_a_video_over_the_inline_cap_says_what_to_do_instead(team):
    with serving(team.model_copy(update={"resource_max_bytes": 1000})) as url:
        async with client(url, ALICE) as alice:
            view = (await call(alice, "generate_r2v", {"prompt": "Image 1", "reference_images": URL_REF, **QUICK,
                                                       "wait_seconds": 30}))["structuredContent"]
            with pytest.raises(Exception, match="over the 1,000-byte cap for reading it inline; fetch the task's "
                                                "download_url"):
                await alice.read_resource(f"r2v://tasks/{view['task_id']}/video")


async def test_smitherys_per_connection_query_parameters_carry_a_callers_key_too(team, dashscope):
    settings = with_host(team, "dashscope", base_url=dashscope.base_url)
    with serving(settings) as url:
        async with client(f"{url}?dashscopeApiKey={DASHSCOPE_KEY}", ALICE) as alice:
            done = (await call(alice, "generate_r2v", {"prompt": "Image 1", "reference_images": URL_REF,
                                                       "wait_seconds": 30}))["structuredContent"]
    assert done["provider"] == "dashscope" and done["status"] == "succeeded"
    (create,) = dashscope.calls("/api/v1/services")
    assert create.headers["authorization"] == f"Bearer {DASHSCOPE_KEY}"


async def test_characters_and_sequences_belong_to_their_caller(team, dirs):
    hero = media.image(dirs["refs"] / "hero.png", 640, 480)
    with serving(team) as url:
        async with client(url, ALICE) as alice, client(url, BOB) as bob:
            saved = await call(alice, "save_character", {"name": "hero", "reference": str(hero)})
            assert saved["isError"] is False
            assert (await call(bob, "list_characters", {}))["structuredContent"] == {"characters": []}
            assert json.loads((await bob.read_resource("r2v://characters")).contents[0].text) == {"characters": []}
            r = await call(bob, "generate_r2v", {"prompt": "@hero waves", "characters": ["hero"], **QUICK})
            assert "characters[0]: no character is named 'hero'. Limit: saved: none yet." in text(r)
            r = await call(bob, "delete_character", {"name": "hero"})
            assert "no character is named 'hero'" in text(r)
            assert [c["name"] for c in (await call(alice, "list_characters", {}))["structuredContent"][
                "characters"]] == ["hero"]

            seq = (await call(alice, "generate_sequence", {
                "shots": [{"prompt": "@hero walks", "duration": 2}, {"prompt": "@hero sits", "duration": 2}],
                "characters": ["hero"], "resolution": "720p", "wait_seconds": 45}))["structuredContent"]
            assert seq["status"] == "succeeded" and seq["download_url"]
            unknown = text(await call(bob, "get_task", {"task_id": "seq_nope"}))
            assert text(await call(bob, "get_task", {"task_id": seq["task_id"]})) == unknown.replace(
                "seq_nope", seq["task_id"])
            r = await call(bob, "stitch", {"task_ids": [s["task_id"] for s in seq["shots"]]})
            assert text(r).count("no task \"r2v_") == 2
            r = await call(bob, "redo_shot", {"task_id": seq["task_id"], "shot": 1})
            assert "[not_found]" in text(r)
            async with httpx.AsyncClient() as http:
                got = await http.get(seq["download_url"])
                assert got.status_code == 200 and got.content == (team.videos_dir / f"{seq['task_id']}.mp4").read_bytes()
