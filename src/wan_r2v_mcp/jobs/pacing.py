"""Pacing: the calls to one host are spaced out so that together they stay within its rate limit: this process's
calls, or, on a store that servers of several machines share, every replica's together."""

from __future__ import annotations

import time

import anyio

from ..providers.base import Provider
from ..store import Store


class Pacer:
    """Calls one at a time, each at least `interval` after the one before was let go. Spaced by when calls are
    really let go, not by slots planned ahead: after the event loop was held up, planned slots would all be due at
    once and go out together, past the host's rate (a 429 each)."""

    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second
        self._last = -float("inf")
        self._turn = anyio.Lock()  # FIFO: callers go in the order they came

    async def wait(self) -> None:
        async with self._turn:
            delay = self._last + self.interval - time.monotonic()
            if delay > 0:
                await anyio.sleep(delay)
            self._last = time.monotonic()


class Pacers:
    """One pace per host, at its documented rate (`max_polls_per_second`), compressed with the emulators' clock."""

    def __init__(self, time_scale: float, store: Store | None = None):
        self._time_scale = time_scale
        self._store = store if store is not None and store.shared_across_hosts else None
        self._pacers: dict[str, Pacer] = {}

    async def wait(self, provider: Provider) -> None:
        caps = provider.capabilities
        per_second = caps.max_polls_per_second / self._time_scale
        if self._store is not None and not caps.local:  # the slot is reserved in the store, for all replicas
            delay = await anyio.to_thread.run_sync(self._store.pace, caps.name, 1.0 / per_second)
            if delay:
                await anyio.sleep(delay)
            return
        if caps.name not in self._pacers:
            self._pacers[caps.name] = Pacer(per_second)
        await self._pacers[caps.name].wait()
