"""Two replicas of the HTTP server on one PostgreSQL and one shared folder, behind a round-robin "load balancer"
(each HTTP request of a client goes to the next replica): a handshake-era client's consecutive calls land on
different replicas and every call works; a task made by one replica is waited on, listed and read by the other."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import httpx2
import media
import pytest
from conftest import call, finish, text
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr
from test_remote import ALICE, TOKENS, _free_port, serving

from wan_r2v_mcp.config import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


class RoundRobin(httpx2.AsyncBaseTransport):
    """Sends each request to the next replica, as a load balancer without sticky sessions does."""

    def __init__(self, ports: list[int]):
        self.ports, self.sent = ports, []
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = self.ports[len(self.sent) % len(self.ports)]
        self.sent.append(port)
        request.url = request.url.copy_with(port=port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_any_replica_answers_any_call_of_a_handshake_era_client(dirs, pg_url):
    settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"], http_tokens=TOKENS, time_scale=0.1,
                        progress_interval_seconds=1.0, database_url=SecretStr(pg_url))
    with serving(settings) as first, serving(settings) as second:
        ports = [int(u.rsplit(":", 1)[1].split("/")[0]) for u in (first, second)]
        balancer = RoundRobin(ports)
        http = httpx2.AsyncClient(transport=balancer, headers={"Authorization": f"Bearer {ALICE}"},
                                  timeout=httpx2.Timeout(60.0))
        async with Client(streamable_http_client(first, http_client=http), mode="legacy") as alice:
            started = await call(alice, "generate_t2v", {"prompt": "A lighthouse", "duration": 2,
                                                         "resolution": "720p", "wait_seconds": 0})
            assert started["isError"] is False, text(started)
            task_id = started["structuredContent"]["task_id"]
            done = started
            for _ in range(10):  # each call on the other replica than the one before
                done = await call(alice, "get_task", {"task_id": task_id, "wait_seconds": 20})
                if done["structuredContent"]["status"] == "succeeded":
                    break
            assert done["structuredContent"]["status"] == "succeeded", text(done)
            listed = await call(alice, "list_tasks", {})
            assert [t["task_id"] for t in listed["structuredContent"]["tasks"]] == [task_id]
        await http.aclose()
    assert set(balancer.sent) == set(ports) and len(balancer.sent) >= 4  # both replicas answered


@contextlib.contextmanager
def replica(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, str]]:
    """A server process of its own (serve --transport http) on a free loopback port; yields it and its /mcp URL."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "wan_r2v_mcp", "serve", "--transport", "http", "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:  # ready when /health answers
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
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


async def test_a_task_whose_replica_is_killed_is_taken_over_by_another_and_finished_once(dirs, pg_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAN_R2V_", "DASHSCOPE_", "REPLICATE_", "FAL_",
                                                                    "INFERENCE_"))}
    env.update(WAN_R2V_DATA_DIR=str(dirs["data"]), WAN_R2V_OUTPUT_DIR=str(dirs["out"]), WAN_R2V_TIME_SCALE="0.1",
               WAN_R2V_PROGRESS_INTERVAL="1", WAN_R2V_DATABASE_URL=pg_url)
    with replica(env) as (doomed, first), replica(env) as (_, second):
        async with Client(streamable_http_client(first), mode="legacy") as alice:
            started = await call(alice, "generate_t2v", {"prompt": "A lighthouse", "duration": 8,
                                                         "resolution": "720p", "wait_seconds": 0})
            assert started["structuredContent"]["status"] == "running", text(started)
            task_id = started["structuredContent"]["task_id"]
        doomed.send_signal(signal.SIGKILL)  # mid-render: its lease is left to run out
        doomed.wait(timeout=30)
        async with Client(streamable_http_client(second), mode="legacy") as alice:
            done = await finish(alice, task_id)  # taken over once the dead replica's lease runs out
    view = done["structuredContent"]
    assert view["status"] == "succeeded", text(done)
    assert sorted(p.name for p in dirs["out"].glob("*.mp4")) == [f"{task_id}.mp4"]  # one video, under its own name
    assert media.decode(dirs["out"] / f"{task_id}.mp4")["duration"] == pytest.approx(8, abs=0.5)
