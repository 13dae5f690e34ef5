"""Three replicas of the HTTP server (processes of their own) on one PostgreSQL and one shared folder, behind a
round-robin load balancer: a handshake-era client's consecutive calls land on different replicas and every call
works; the replica following a task is killed mid-job and another takes it up and finishes it, once; callers stay
apart whichever replica answers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator

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


class Balancer:
    """A round-robin TCP load balancer: each connection goes to the next replica that accepts it (one that does not,
    a killed one, is passed over), as nginx's upstream does with its passive checks."""

    def __init__(self, ports: list[int]):
        self.ports, self.sent = list(ports), []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        turn = 0
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            for _ in range(len(self.ports)):
                port = self.ports[turn % len(self.ports)]
                turn += 1
                try:
                    backend = socket.create_connection(("127.0.0.1", port), timeout=2)
                except OSError:
                    continue
                backend.settimeout(None)
                self.sent.append(port)
                for a, b in ((client, backend), (backend, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()
                break
            else:
                client.close()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for end in (src, dst):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()


def through(url: str, token: str) -> Client:
    """A handshake-era client whose every request opens a connection of its own (so each may reach another
    replica)."""
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(60.0),
                              limits=httpx2.Limits(max_keepalive_connections=0))
    return Client(streamable_http_client(url, http_client=http), mode="legacy")


@pytest.mark.long
async def test_three_replicas_behind_a_balancer_one_killed_mid_job_lose_nothing_and_keep_callers_apart(dirs,
                                                                                                     pg_url):
    import psycopg

    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAN_R2V_", "DASHSCOPE_", "REPLICATE_", "FAL_",
                                                                    "INFERENCE_"))}
    env.update(WAN_R2V_DATA_DIR=str(dirs["data"]), WAN_R2V_OUTPUT_DIR=str(dirs["out"]), WAN_R2V_TIME_SCALE="0.1",
               WAN_R2V_PROGRESS_INTERVAL="1", WAN_R2V_DATABASE_URL=pg_url, WAN_R2V_HTTP_TOKENS=TOKENS)
    with replica(env) as (one, a), replica(env) as (two, b), replica(env) as (three, c):
        procs = {p.pid: p for p in (one, two, three)}
        balancer = Balancer([int(u.rsplit(":", 1)[1].split("/")[0]) for u in (a, b, c)])
        url = f"http://127.0.0.1:{balancer.port}/mcp"
        try:
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
                done = await finish(alice, task_id)  # taken up by another at its next beat
                unknown = text(await call(bob, "get_task", {"task_id": "r2v_nope"}))
                assert text(await call(bob, "get_task", {"task_id": task_id})) == unknown.replace("r2v_nope", task_id)
                assert (await call(bob, "list_tasks", {}))["structuredContent"] == {"tasks": [], "total": 0}
                mine = (await call(alice, "list_tasks", {}))["structuredContent"]
        finally:
            balancer.close()
    assert done["structuredContent"]["status"] == "succeeded", text(done)
    assert [t["task_id"] for t in mine["tasks"]] == [task_id]
    assert sorted(p.name for p in dirs["out"].glob("*.mp4")) == [f"{task_id}.mp4"]  # one video, under its own name
    assert media.decode(dirs["out"] / f"{task_id}.mp4")["duration"] == pytest.approx(8, abs=0.5)
    assert len(set(balancer.sent)) == 3  # every replica answered some of the calls
