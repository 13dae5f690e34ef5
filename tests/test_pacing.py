"""The host's pace: calls take their turns by what they are for (a list page, then a result, then a poll that only
asks whether a job runs), in the order they came within each, and never closer together than the pace."""

from __future__ import annotations

import time

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from wan_r2v_mcp.jobs.pacing import Pacer, Turn

pytestmark = pytest.mark.anyio


async def test_pages_then_results_go_first_and_the_rest_in_the_order_they_came():
    pacer = Pacer(per_second=40)  # 25 ms apart
    let_go: list[tuple[str, float]] = []

    async def call(name: str, turn: Turn) -> None:
        await pacer.wait(turn)
        let_go.append((name, time.monotonic()))

    async with anyio.create_task_group() as tg:
        await call("first", Turn.ROUTINE)  # at once: nothing before it
        tg.start_soon(call, "holder", Turn.ROUTINE)  # waits out the pace holding the turn; the rest line up behind
        await wait_all_tasks_blocked()
        for name, turn in [("poll 1", Turn.ROUTINE), ("poll 2", Turn.ROUTINE), ("result 1", Turn.RESULT),
                           ("poll 3", Turn.ROUTINE), ("page", Turn.LIST), ("result 2", Turn.RESULT)]:
            tg.start_soon(call, name, turn)
            await wait_all_tasks_blocked()
    assert [name for name, _ in let_go] == ["first", "holder", "page", "result 1", "result 2", "poll 1", "poll 2",
                                            "poll 3"]
    gaps = [b - a for (_, a), (_, b) in zip(let_go, let_go[1:])]
    assert min(gaps) >= pacer.interval * 0.999


async def test_quiet_waits_for_the_results_in_line_and_a_canceled_waiter_leaves_it():
    pacer = Pacer(per_second=40)
    order: list[str] = []

    async def call(name: str, turn: Turn) -> None:
        await pacer.wait(turn)
        order.append(name)

    async def quiet() -> None:
        await pacer.gate.quiet()
        order.append("quiet")

    await pacer.wait()
    async with anyio.create_task_group() as tg:
        tg.start_soon(call, "holder", Turn.ROUTINE)
        await wait_all_tasks_blocked()
        tg.start_soon(call, "result 1", Turn.RESULT)
        await wait_all_tasks_blocked()
        async with anyio.create_task_group() as doomed:
            doomed.start_soon(call, "canceled", Turn.RESULT)
            await wait_all_tasks_blocked()
            doomed.cancel_scope.cancel()
        tg.start_soon(call, "poll", Turn.ROUTINE)
        tg.start_soon(call, "result 2", Turn.RESULT)
        await wait_all_tasks_blocked()
        tg.start_soon(quiet)
    # quiet once no result waits in line (the last one has its turn), before the routine poll behind them
    assert order == ["holder", "result 1", "quiet", "result 2", "poll"]


async def test_every_page_of_a_long_job_list_waits_for_its_own_turn(ds_settings, dashscope):
    """A sweep over 250 jobs is three calls: each page is asked for only after its turn at the pace, never as a
    burst after the first (a burst of pages went past the host's limit: 429s)."""
    from wan_r2v_mcp.providers.dashscope import DashScopeProvider

    for i in range(250):
        dashscope.make_job({"model": "wan2.7-r2v", "input": {"prompt": f"job {i}"}})
    provider = DashScopeProvider(ds_settings)
    pages_asked: list[int] = []  # how many list calls the host had received when each turn was given

    async def turn() -> None:
        pages_asked.append(len(dashscope.calls("/api/v1/tasks", "GET")))

    listed = await provider.find_submitted(since=time.time() - 60, until=time.time() + 60, before_page=turn)
    await provider.aclose()
    assert len(listed) == 250
    assert pages_asked == [0, 1, 2] and len(dashscope.calls("/api/v1/tasks", "GET")) == 3
