"""Nobody gets in: Host and Origin compared whole, slow or greedy clients cut off, settings only from our own
names, identities that cannot collide, redaction no caller can steer."""

from __future__ import annotations

import json
import socket
import time

import cli_runner
import httpx
import pytest
from conftest import call, finish, text
from test_remote import ALICE, TOKENS, URL_REF, client, serving

from wan_r2v_mcp import http_guard
from wan_r2v_mcp.config import Settings
from wan_r2v_mcp.providers import api_key

pytestmark = pytest.mark.anyio


@pytest.fixture
def team(dirs) -> Settings:
    return Settings(data_dir=dirs["data"], output_dir=dirs["out"], http_tokens=TOKENS, time_scale=0.1,
                    progress_interval_seconds=1.0)


def _raw(port: int, head: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data:
                break
        return data


def _hung_up(s: socket.socket) -> bool:
    try:
        return s.recv(1024) == b""
    except ConnectionResetError:
        return True


# ------------------------------------------------------------------ Host and Origin, whole

def test_hosts_and_origins_that_only_start_like_an_allowed_one_are_refused(team):
    with serving(team) as url:
        port = int(url.split(":")[2].split("/")[0])
        bad_hosts = [f"127.0.0.1:{port}@evil.example", f"127.0.0.1:{port}.evil.example",
                     f"127.0.0.1:{port}, evil.example", "evil.example", f"127.0.0.1:{port}/x", ""]
        for host in bad_hosts:
            reply = _raw(port, f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            assert reply.startswith(b"HTTP/1.1 421 "), (host, reply[:80])
        bad_origins = [f"http://127.0.0.1:{port}.evil.example", f"http://localhost:{port}@evil.example",
                       f"http://127.0.0.1:{port}/path", "null", "http://evil.example", f"ftp://127.0.0.1:{port}"]
        for origin in bad_origins:
            reply = _raw(port, f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: {origin}\r\n"
                               "Connection: close\r\n\r\n".encode())
            assert reply.startswith(b"HTTP/1.1 403 "), (origin, reply[:80])
        for host, origin in ((f"127.0.0.1:{port}", f"http://127.0.0.1:{port}"), (f"localhost:{port}", None),
                             (f"[::1]:{port}", f"http://[::1]:{port}")):
            extra = f"Origin: {origin}\r\n" if origin else ""
            reply = _raw(port, f"GET /health HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n".encode())
            assert reply.startswith(b"HTTP/1.1 200 "), (host, reply[:80])


def test_the_guard_parses_values_whole():
    parse_host, parse_origin = http_guard.parse_host, http_guard.parse_origin
    assert parse_host("127.0.0.1:8000") == http_guard.Place(None, "127.0.0.1", 8000)
    assert parse_host("Example.COM") == http_guard.Place(None, "example.com", None)
    assert parse_host("[::1]:80") == http_guard.Place(None, "[::1]", 80)
    for bad in ("127.0.0.1:8000@evil", "a b", "127.0.0.1:99999", "host:", ":80", "a..b:1x"):
        assert parse_host(bad) is None, bad
    assert parse_origin("https://example.com") == http_guard.Place("https", "example.com", 443)
    for bad in ("https://example.com/", "https://u@example.com", "example.com", "https://example.com:1:2"):
        assert parse_origin(bad) is None, bad


# ------------------------------------------------------------------ slow and greedy clients

def test_a_half_sent_request_is_cut_off_and_one_address_cannot_hold_every_connection(team, monkeypatch):
    monkeypatch.setattr(http_guard, "HEADER_SECONDS", 0.5)
    monkeypatch.setattr(http_guard, "CONNECTIONS_PER_CLIENT", 20)
    with serving(team) as url:
        port = int(url.split(":")[2].split("/")[0])
        slow = socket.create_connection(("127.0.0.1", port), timeout=20)
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and never the rest
        assert _hung_up(slow)  # the server hung up: a deadline on the head, not a wait forever
        slow.close()
        held = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(20)]
        try:
            extra = socket.create_connection(("127.0.0.1", port), timeout=20)
            extra.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            assert _hung_up(extra)  # the 21st from one address is closed at once
            extra.close()
        finally:
            for s in held:
                s.close()
        with httpx.Client() as http:  # once they are gone, the server answers as before
            deadline = time.monotonic() + 10
            while True:
                try:
                    assert http.get(url.replace("/mcp", "/health")).status_code == 200
                    break
                except (httpx.TransportError, AssertionError):
                    assert time.monotonic() < deadline
                    time.sleep(0.05)


# ------------------------------------------------------------------ settings only from our own names

def test_bare_names_other_apps_set_are_not_read(dirs, monkeypatch):
    for name, value in (("ALLOWED_HOSTS", "*"), ("HTTP_TOKENS", '{"x": "y"}'), ("WAIT_CAP_SECONDS", "1"),
                        ("OAUTH_ISSUER", "https://evil.example"), ("PROVIDER", "fal"), ("HOST", "0.0.0.0")):
        monkeypatch.setenv(name, value)
    settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"])
    assert (settings.allowed_hosts, settings.http_tokens, settings.wait_cap_seconds, settings.oauth_issuer,
            settings.provider, settings.http_host) == (None, None, 50.0, None, None, "127.0.0.1")


@pytest.mark.parametrize(("name", "value", "line"), [
    ("PORT", "abc", "problem: the HTTP port (WAN_R2V_PORT, or PORT) is 'abc': set a number from 1 to 65535, or unset "
                    "it."),
    ("WAN_R2V_OAUTH_ISSUER", "issuer.example", "problem: WAN_R2V_OAUTH_ISSUER is 'issuer.example', not a whole URL: "
                                               "write it with its scheme and host, like https://example.com."),
    ("WAN_R2V_OAUTH_ISSUER", "https://[::1", "problem: WAN_R2V_OAUTH_ISSUER is 'https://[::1', not a whole URL: "
                                             "write it with its scheme and host, like https://example.com."),
    ("WAN_R2V_PUBLIC_URL", "http://r2v.example.com", "problem: WAN_R2V_PUBLIC_URL is 'http://r2v.example.com': use "
                                                     "https (plain http only on 127.0.0.1 or localhost)."),
    ("FAL_KEY", "fal key 123", "problem: FAL_KEY has a space or a quote inside it: set it to the key alone, as the "
                               "host's console shows it."),
])
def test_every_bad_setting_is_one_line_from_doctor_and_every_command(dirs, name, value, line):
    env = {"PATH": "", "WAN_R2V_DATA_DIR": str(dirs["data"]), "WAN_R2V_OUTPUT_DIR": str(dirs["out"]), name: value}
    doctor = cli_runner.run(["doctor"], cwd=dirs["data"], env=env, timeout=60)
    assert doctor.returncode == 1 and line in doctor.stdout.splitlines(), doctor.stdout
    served = cli_runner.run(["serve", "--transport", "http"], cwd=dirs["data"], env=env, timeout=60)
    assert served.returncode == 2 and "Traceback" not in served.stderr
    assert line.removeprefix("problem: ") in served.stderr


def test_a_key_pasted_with_quotes_and_a_trailing_space_is_the_key(dirs, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", "  'sk-pasted0123456789abcdef'  \n")
    settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"])
    assert api_key(settings, "dashscope") == "sk-pasted0123456789abcdef"


# ------------------------------------------------------------------ identities that cannot collide

async def test_oauth_subjects_and_token_callers_never_share_a_namespace_and_an_empty_subject_is_refused(dirs):
    from emulators.issuer import Issuer

    with Issuer() as issuer:
        aud = "https://r2v.example.com/mcp"
        settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"], oauth_issuer=issuer.url,
                            oauth_audience=aud, http_tokens=TOKENS, public_url="http://127.0.0.1:9/", time_scale=0.1)
        with serving(settings) as url:
            async with client(url, ALICE) as token_alice:  # the operator's token for the caller "alice"
                made = await call(token_alice, "generate_r2v", {"prompt": "Image 1", "reference_images": URL_REF,
                                                                "resolution": "720p", "duration": 2})
                assert not made["isError"]
            async with client(url, issuer.token("alice", aud)) as oauth_alice:  # an OAuth subject "alice"
                assert (await call(oauth_alice, "list_tasks", {}))["structuredContent"]["total"] == 0
            async with httpx.AsyncClient() as http:
                body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
                accept = {"Accept": "application/json, text/event-stream"}
                for token in (issuer.token("", aud), issuer.token("   ", aud), "x" * 60_000):
                    r = await http.post(url, json=body, headers={"Authorization": f"Bearer {token}", **accept})
                    assert r.status_code == 401, r.text


async def test_a_token_signed_with_an_algorithm_the_issuer_does_not_use_is_a_401(dirs):
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec
    from emulators.issuer import Issuer

    with Issuer() as issuer:
        aud = "https://r2v.example.com/mcp"
        settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"], oauth_issuer=issuer.url,
                            oauth_audience=aud, public_url="http://127.0.0.1:9/", time_scale=0.1)
        now = int(time.time())
        forged = jwt.encode({"iss": issuer.url, "sub": "mallory", "aud": aud, "iat": now, "exp": now + 600},
                            ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": issuer.kid})
        with serving(settings) as url:
            async with httpx.AsyncClient() as http:
                r = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                    headers={"Authorization": f"Bearer {forged}",
                                             "Accept": "application/json, text/event-stream"})
                assert r.status_code == 401


# ------------------------------------------------------------------ redaction no caller can steer

async def test_a_callers_odd_key_never_rewrites_another_callers_errors_and_keys_kept_are_bounded(team):
    from wan_r2v_mcp import errors

    with serving(team) as url:
        async with client(url, ALICE, **{"X-Fal-Key": "not_found", "X-Replicate-Api-Token": "invalid_input"}) as alice:
            await call(alice, "list_tasks", {})
        async with client(url, ALICE) as again:
            missing = await call(again, "get_task", {"task_id": "r2v_nope"})
            assert text(missing).startswith("Error executing tool get_task: [not_found] task_id: no task")
            assert "***" not in text(missing)
    for i in range(errors.CALLER_SECRETS_KEPT + 500):
        errors.register_secret(f"fal-{i:06d}-0123456789abcdef", from_caller=True)
    assert len(errors._caller_secrets) == errors.CALLER_SECRETS_KEPT
    assert errors.redact("key fal-002499-0123456789abcdef here") == "key *** here"


def test_tokens_of_a_bad_shape_in_the_operators_list_are_one_line(dirs):
    with pytest.raises(ValueError, match="rename that caller"):
        _ = Settings(data_dir=dirs["data"], output_dir=dirs["out"],
                     http_tokens=json.dumps({"t" * 20: "oauth:alice"})).callers


# ------------------------------------------------------------------ nothing written for a refused request

def _tree(folder) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()
            and "tasks.sqlite3" not in p.name}


async def test_refused_saves_leave_the_data_folder_as_it_was(settings, refs, dirs, monkeypatch):
    """Issue #18: 800 saves refused by the cast's cap left 1,600 copies and thumbnails behind."""
    import base64

    from mcp import Client

    from wan_r2v_mcp.cast import roster
    from wan_r2v_mcp.server import build_server

    monkeypatch.setattr(roster, "CAST_MAX", 1)
    inline = "data:image/png;base64," + base64.b64encode(refs["img1"].read_bytes()).decode()
    async with Client(build_server(settings)) as client:
        assert not (await call(client, "save_character", {"name": "first", "reference": inline}))["isError"]
        before = _tree(dirs["data"])
        assert not any(name.startswith("inline/") for name in before)  # a data: URI's copy is gone once kept
        for i in range(20):
            given = str(refs["vid1"]) if i % 2 else inline
            r = await call(client, "save_character", {"name": f"c{i}", "reference": given})
            assert text(r).startswith("Error executing tool save_character: [invalid_input] name: the cast already "
                                      "has 1 characters. Limit: at most 1.")
        assert _tree(dirs["data"]) == before


async def test_a_remote_caller_cannot_tell_missing_paths_from_forbidden_ones(dirs):
    settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"], http_tokens=TOKENS,
                        allowed_dirs=str(dirs["refs"]), time_scale=0.1)
    (dirs["data"] / "secret.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    with serving(settings) as url:
        async with client(url, ALICE) as alice:
            words = []
            for path in (dirs["data"] / "secret.png", dirs["data"] / "nothing.png", dirs["refs"] / "nothing.png",
                         dirs["refs"] / ".hidden.png"):
                r = await call(alice, "generate_r2v", {"prompt": "Image 1", "reference_images": [str(path)]})
                words.append(text(r).replace(str(path), "<path>"))
            listed = await call(alice, "list_references", {"directory": str(dirs["data"] / "nope")})
    assert len(set(words)) == 1, words
    assert words[0].startswith("Error executing tool generate_r2v: [invalid_reference] reference_images[0]: <path> "
                               "is not a file this server may read.")
    assert "is not a file this server may read" in text(listed)


async def test_stitching_is_bounded_however_it_is_nested(client, refs):
    made = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "reference_images": [str(refs["img1"])],
                                               "resolution": "720p", "duration": 2, "wait_seconds": 45})
    task_id = made["structuredContent"]["task_id"]
    once = await call(client, "stitch", {"task_ids": [task_id] * 50})
    if once["structuredContent"]["status"] == "running":  # a 100 s join may outlast one call's wait on a busy machine
        once = await finish(client, once["structuredContent"]["task_id"])
    assert once["structuredContent"]["status"] == "succeeded"
    again = await call(client, "stitch", {"task_ids": [once["structuredContent"]["task_id"]] * 10})
    assert text(again) == ("Error executing tool stitch: [invalid_input] task_ids: together last 1000 s. Limit: at "
                           "most 600 s in one stitch. Fix: stitch fewer or shorter videos.")


def test_a_browser_host_on_an_allowed_origin_gets_its_preflight_answered_and_others_do_not(team):
    """Issue #19: /mcp answered a browser's preflight with 401 and no CORS headers."""
    with serving(team) as url:
        port = int(url.split(":")[2].split("/")[0])
        ask = ("OPTIONS /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: {origin}\r\n"
               "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization, content-type, "
               "mcp-protocol-version\r\nConnection: close\r\n\r\n")
        good = _raw(port, ask.format(port=port, origin=f"http://localhost:{port}").encode()).decode()
        assert good.startswith("HTTP/1.1 204 ")
        assert f"access-control-allow-origin: http://localhost:{port}" in good.lower()
        assert "access-control-allow-headers: authorization, content-type, mcp-protocol-version" in good.lower()
        bad = _raw(port, ask.format(port=port, origin="https://evil.example").encode()).decode()
        assert bad.startswith("HTTP/1.1 403 ") and "access-control-allow-origin" not in bad.lower()
        with httpx.Client() as http:  # the request itself still needs its token, and its answer is readable
            r = http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                          headers={"Origin": f"http://localhost:{port}", "Accept": "application/json, text/event-stream"})
            assert r.status_code == 401
            assert r.headers["access-control-allow-origin"] == f"http://localhost:{port}"
            assert "WWW-Authenticate" in r.headers["access-control-expose-headers"]


async def test_a_refused_generation_a_dry_run_and_a_check_keep_nothing_of_their_data_uris(settings, refs, dirs):
    import base64

    from mcp import Client

    from wan_r2v_mcp.server import build_server

    inline = "data:image/png;base64," + base64.b64encode(refs["img1"].read_bytes()).decode()
    async with Client(build_server(settings)) as client:
        refused = await call(client, "generate_r2v", {"prompt": "Image 1 meets Image 7", "reference_images": [inline]})
        assert refused["isError"]
        dry = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": [inline], "dry_run": True})
        assert not dry["isError"]
        takes = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": [inline], "dry_run": True,
                                                    "variants": 3})  # three takes checked, none kept
        assert not takes["isError"] and len(takes["structuredContent"]["takes"]) == 3
        checked = await call(client, "list_references", {"reference_images": [inline]})
        assert not checked["isError"]
    folder = dirs["data"] / "inline"
    assert not folder.exists() or not any(folder.iterdir())
