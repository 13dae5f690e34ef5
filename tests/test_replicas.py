"""Three replicas of the HTTP server (processes of their own) on one PostgreSQL and one shared folder, behind
Debian's nginx running the deployment's own site (deploy/nginx.conf, round robin): a handshake-era client's
consecutive calls land on different replicas and every call works; the replica following a task is killed mid-job,
nginx passes over it, and another replica takes the task up and finishes it, once; its download link works through
the balancer; callers stay apart whichever replica answers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import cli_runner
import httpx
import httpx2
import media
import pytest
from conftest import call, finish, text
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from test_remote import ALICE, BOB, TOKENS, _free_port

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@contextlib.contextmanager
def replica(env: dict[str, str]) -> Iterator[tuple[cli_runner.Started, str]]:
    """A server process of its own (serve --transport http) on a free loopback port; yields it and its /mcp URL."""
    port = _free_port()
    proc = cli_runner.start(["serve", "--transport", "http", "--port", str(port)], env=env)
    try:
        deadline = time.monotonic() + 60
        while True:  # ready when /health answers
            assert proc.poll() is None, proc.stderr_so_far()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the replica did not start"
            time.sleep(0.1)
        yield proc, f"http://127.0.0.1:{port}/mcp"
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        proc.communicate(0)  # its output folder goes


ROOT = Path(__file__).resolve().parents[1]
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


@contextlib.contextmanager
def nginx(port: int, replicas: list[int], folder: Path) -> Iterator[Path]:
    """Debian's nginx serving the deployment's own site, deploy/nginx.conf, on `port`, its upstream the replicas
    here instead of compose's DNS name; yields its access log, one line per request: the replicas that were tried
    (a refused one, then the next), the status, the method."""
    if NGINX is None:
        pytest.skip("nginx is not installed (.ci/tools.sh installs Debian's)")
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "server r2v:8000;" in site and "listen 8080;" in site  # what compose.yaml's replicas and port are
    site = site.replace("server r2v:8000;", "\n    ".join(f"server 127.0.0.1:{p};" for p in replicas))
    site = site.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    (folder / "site.conf").write_text(site)
    log = folder / "access.log"
    temp = " ".join(f"{kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                         "scgi"))
    (folder / "nginx.conf").write_text(
        f"worker_processes 1;\npid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'};\n"
        "events { worker_connections 256; }\n"
        f"http {{\n  log_format tried '$upstream_addr|$status|$request_method';\n  access_log {log} tried;\n"
        f"  {temp}\n  include {folder / 'site.conf'};\n}}\n")
    if os.geteuid() == 0:  # workers as root: the folder is the test's own, not readable by nobody
        (folder / "nginx.conf").write_text("user root;\n" + (folder / "nginx.conf").read_text())
    proc = subprocess.Popen([NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e",
                             str(folder / "error.log"), "-g", "daemon off;"])
    try:
        deadline = time.monotonic() + 30
        while True:  # ready when a replica's /health answers through it
            assert proc.poll() is None, (folder / "error.log").read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
        yield log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def served(log: Path) -> list[tuple[list[int], int, str]]:
    """The access log's requests: the replicas' ports tried, in turn, the status and the method."""
    out = []
    for line in log.read_text().splitlines():
        tried, status, method = line.split("|")
        out.append(([int(a.rsplit(":", 1)[1]) for a in tried.split(", ") if ":" in a], int(status), method))
    return out


def through(url: str, token: str) -> Client:
    """A handshake-era client on its defaults (one kept-alive connection to the balancer, which sends each request
    to the next replica)."""
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(60.0))
    return Client(streamable_http_client(url, http_client=http), mode="legacy")


@pytest.mark.long
async def test_three_replicas_behind_nginx_one_killed_mid_job_lose_nothing_and_keep_callers_apart(dirs, pg_url,
                                                                                                  tmp_path):
    import psycopg

    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAN_R2V_", "DASHSCOPE_", "REPLICATE_", "FAL_",
                                                                    "INFERENCE_"))}
    front = _free_port()  # the balancer's: the address clients and download links use, as in compose.yaml
    env.update(WAN_R2V_DATA_DIR=str(dirs["data"]), WAN_R2V_OUTPUT_DIR=str(dirs["out"]), WAN_R2V_TIME_SCALE="0.1",
               WAN_R2V_PROGRESS_INTERVAL="1", WAN_R2V_DATABASE_URL=pg_url, WAN_R2V_HTTP_TOKENS=TOKENS,
               WAN_R2V_PUBLIC_URL=f"http://127.0.0.1:{front}")
    with replica(env) as (one, a), replica(env) as (two, b), replica(env) as (three, c):
        procs = {p.pid: p for p in (one, two, three)}
        ports = [int(u.rsplit(":", 1)[1].split("/")[0]) for u in (a, b, c)]
        with nginx(front, ports, tmp_path) as log:
            url = f"http://127.0.0.1:{front}/mcp"
            async with through(url, ALICE) as alice, through(url, BOB) as bob:
                started = await call(alice, "generate_t2v", {"prompt": "A lighthouse", "duration": 8,
                                                             "resolution": "720p", "wait_seconds": 0})
                task_id = started["structuredContent"]["task_id"]
                with psycopg.connect(pg_url, autocommit=True) as conn:  # answered once recorded (wait 0):
                    with anyio.fail_after(30):                          # its render starts after
                        while (phase := conn.execute("SELECT phase FROM tasks WHERE task_id = %s",
                                                     (task_id,)).fetchone()[0]) != "running":
                            assert phase in ("pending", "creating", "queued"), phase
                            await anyio.sleep(0.02)  # reading the row, not waiting on a guess
                    # the replica following it (holder = host:pid:nonce)
                    holder = conn.execute("SELECT holder FROM leases WHERE task_id = %s", (task_id,)).fetchone()[0]
                doomed = procs[int(holder.split(":")[1])]
                doomed.send_signal(signal.SIGKILL)  # mid-render: its session ends, and its claim with it
                doomed.wait(timeout=30)
                before_kill = len(served(log))
                done = await finish(alice, task_id)  # taken up by another at its next beat
                unknown = text(await call(bob, "get_task", {"task_id": "r2v_nope"}))
                assert text(await call(bob, "get_task", {"task_id": task_id})) == unknown.replace("r2v_nope", task_id)
                assert (await call(bob, "list_tasks", {}))["structuredContent"] == {"tasks": [], "total": 0}
                mine = (await call(alice, "list_tasks", {}))["structuredContent"]
                for _ in range(3):  # more calls than replicas: one of them is sent to the dead one first
                    assert (await call(bob, "list_tasks", {}))["structuredContent"]["total"] == 0
            view = done["structuredContent"]
            video = httpx.get(view["download_url"], timeout=30)  # through nginx, from whichever replica
            requests = served(log)
    assert view["status"] == "succeeded", text(done)
    assert [t["task_id"] for t in mine["tasks"]] == [task_id]
    assert sorted(p.name for p in dirs["out"].glob("*.mp4")) == [f"{task_id}.mp4"]  # one video, under its own name
    assert media.decode(dirs["out"] / f"{task_id}.mp4")["duration"] == pytest.approx(8, abs=0.5)
    assert video.status_code == 200 and video.content == (dirs["out"] / f"{task_id}.mp4").read_bytes()
    assert {tried[-1] for tried, _, _ in requests} == set(ports)  # every replica answered some of the calls
    after = requests[before_kill:]
    dead = ports[[one, two, three].index(doomed)]
    assert any(tried[0] == dead and len(tried) == 2 for tried, _, _ in after)  # refused, then the next one
    assert [r for r in after if r[1] >= 500] == []  # nothing a client sent after the kill failed for it
