"""The worker loop that drives tasks and sequences alike: one driver per id, restarted when it fails, given up after
`RESTARTS` failures, its lease released when it ends. Driven on a real store, with a real task group."""

from __future__ import annotations

import anyio
import pytest

from wan_r2v_mcp.config import Settings
from wan_r2v_mcp.jobs.worker import RESTARTS, Kind, Worker
from wan_r2v_mcp.store.memory import MemoryStore


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", output_dir=tmp_path / "out", time_scale=0.0001)


def test_a_failing_driver_is_started_again_and_its_lease_released_when_it_ends(settings):
    store = MemoryStore()
    runs: list[str] = []
    given_up: list[str] = []
    ended = anyio.Event()

    async def drive(key: str) -> None:
        runs.append(key)
        assert worker.claim(key) == 0  # held by this worker throughout
        if len(runs) < 3:
            raise RuntimeError("an unexpected answer")
        ended.set()

    async def main() -> None:
        nonlocal worker
        async with anyio.create_task_group() as tg:
            worker = Worker(settings, store, tg)
            kind = Kind("testing", lambda: [] if ended.is_set() else ["t_1"], drive,
                        lambda key, exc: given_up.append(key))
            worker.add(kind)
            assert worker.start() == 1
            worker.run(kind, "t_1")  # already driven: no second driver
            await ended.wait()
            with anyio.fail_after(10):
                while worker.running("t_1"):
                    await anyio.sleep(0.001)
            tg.cancel_scope.cancel()

    worker: Worker
    anyio.run(main)
    assert (runs, given_up) == (["t_1"] * 3, [])
    assert store.take_lease("t_1", "someone else", 30, lambda holder: False) == 0  # released


def test_a_driver_that_keeps_failing_is_given_up_with_its_error(settings):
    store = MemoryStore()
    runs: list[str] = []
    given_up: list[tuple[str, str]] = []

    async def drive(key: str) -> None:
        runs.append(key)
        raise ValueError(f"bad {len(runs)}")

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            worker = Worker(settings, store, tg)
            kind = Kind("testing", lambda: [], drive, lambda key, exc: given_up.append((key, str(exc))))
            worker.add(kind)
            worker.run(kind, "seq_1")
            with anyio.fail_after(10):
                while not given_up:
                    await worker.signals.changed("seq_1").wait()
            tg.cancel_scope.cancel()

    anyio.run(main)
    assert runs == ["seq_1"] * (RESTARTS + 1)
    assert given_up == [("seq_1", f"bad {RESTARTS + 1}")]


def test_an_id_another_live_holder_drives_is_left_to_it(settings):
    store = MemoryStore()
    store.take_lease("r2v_1", "other-host:1:abcd", 30, lambda holder: False)

    async def main() -> bool:
        async with anyio.create_task_group() as tg:
            worker = Worker(settings.model_copy(update={"progress_interval_seconds": 0.01}), store, tg)
            held = await worker.held_elsewhere("r2v_1")
            tg.cancel_scope.cancel()
            return held

    assert anyio.run(main) is True
