"""Pacing: the calls this process makes to one host are spaced out so that together they stay within its rate limit."""

from __future__ import annotations

import time

import anyio

from ..providers.base import Provider


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
    """One pacer per host, at its documented rate (`max_polls_per_second`), compressed with the emulators' clock."""

    def __init__(self, time_scale: float):
        self._time_scale = time_scale
        self._pacers: dict[str, Pacer] = {}

    async def wait(self, provider: Provider) -> None:
        caps = provider.capabilities
        if caps.name not in self._pacers:
            self._pacers[caps.name] = Pacer(caps.max_polls_per_second / self._time_scale)
        await self._pacers[caps.name].wait()
