"""Two replicas of the HTTP server on one PostgreSQL and one shared folder, behind a round-robin "load balancer"
(each HTTP request of a client goes to the next replica): a handshake-era client's consecutive calls land on
different replicas and every call works; a task made by one replica is waited on, listed and read by the other."""

from __future__ import annotations

import httpx2
import pytest
from conftest import call, text
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr
from test_remote import ALICE, TOKENS, serving

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
