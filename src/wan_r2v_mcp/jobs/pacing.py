"""Pacing: the calls to one host are spaced out so that together they stay within its rate limit: this process's
calls, or, on a store that servers of several machines share, every replica's together."""

from __future__ import annotations

import time

import anyio

from ..providers.base import Provider
from ..store import Store


class Pacer:
    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second
        self._next = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval  # reserved before sleeping: no lock needed on one event loop
        if slot > now:
            await anyio.sleep(slot - now)


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
