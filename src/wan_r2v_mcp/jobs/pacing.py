"""Pacing: the calls to one host are spaced out so that together they stay within its rate limit: this process's
calls, or, on a store that servers of several machines share, every replica's together.

In one process, calls take their turns by what they are for, then in the order they came (`Turn`): a page of the
job list stands for a poll of every job on it, and a poll of a job the list shows ended brings a result to disk, so
neither waits behind polls that only ask whether a job is still running. (With thousands of jobs in flight the
host's limit, not this server, bounds how fast results land: one poll each for its video's address, which the list
does not carry.)"""

from __future__ import annotations

import heapq
import itertools
import time
from enum import IntEnum

import anyio

from ..providers.base import Provider
from ..store import Store


class Turn(IntEnum):
    LIST = 0  # a page of the host's job list
    RESULT = 1  # a job known to have ended (or being canceled, or a lost create being looked for)
    ROUTINE = 2  # a job not yet known to have ended


class Gate:
    """One call at a time between `enter()` and `leave()`, the most urgent waiter first, FIFO within a `Turn`."""

    def __init__(self) -> None:
        self._waiting: list[list] = []  # heap of [turn, arrival, event]
        self._arrivals = itertools.count()
        self._held = False
        self._results = 0  # waiters of Turn.RESULT or more urgent
        self._quiet = anyio.Event()
        self._quiet.set()

    async def enter(self, turn: Turn) -> None:
        entry = [int(turn), next(self._arrivals), anyio.Event()]
        heapq.heappush(self._waiting, entry)
        self._count(turn, +1)
        try:
            while self._held or self._waiting[0] is not entry:
                entry[2] = anyio.Event()
                await entry[2].wait()
        except BaseException:  # canceled while waiting: out of the line, and the next one told
            self._waiting.remove(entry)
            heapq.heapify(self._waiting)
            self._count(turn, -1)
            self._wake_next()
            raise
        heapq.heappop(self._waiting)
        self._count(turn, -1)
        self._held = True

    def leave(self) -> None:
        self._held = False
        self._wake_next()

    async def quiet(self) -> None:
        """Until no call of Turn.RESULT (or more urgent) is waiting."""
        await self._quiet.wait()

    def _wake_next(self) -> None:
        if self._waiting and not self._held:
            self._waiting[0][2].set()

    def _count(self, turn: Turn, step: int) -> None:
        if turn <= Turn.RESULT:
            self._results += step
            if self._results == 0:
                self._quiet.set()
            elif self._quiet.is_set():
                self._quiet = anyio.Event()


class Pacer:
    """Calls one at a time, each at least `interval` after the one before was let go. Spaced by when calls are
    really let go, not by slots planned ahead: after the event loop was held up, planned slots would all be due at
    once and go out together, past the host's rate (a 429 each)."""

    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second
        self._last = -float("inf")
        self.gate = Gate()

    async def wait(self, turn: Turn = Turn.ROUTINE) -> None:
        await self.gate.enter(turn)
        try:
            delay = self._last + self.interval - time.monotonic()
            if delay > 0:
                await anyio.sleep(delay)
            self._last = time.monotonic()
        finally:
            self.gate.leave()


class Pacers:
    """One pace per host, at its documented rate (`max_polls_per_second`), compressed with the emulators' clock."""

    def __init__(self, time_scale: float, store: Store | None = None):
        self._time_scale = time_scale
        self._store = store if store is not None and store.shared_across_hosts else None
        self._pacers: dict[str, Pacer] = {}
        # Threads of their own for the store's slot reservations, never queued behind every call's store work.
        self._reserving = anyio.CapacityLimiter(4)

    async def wait(self, provider: Provider, turn: Turn = Turn.ROUTINE) -> None:
        caps = provider.capabilities
        per_second = caps.max_polls_per_second / self._time_scale
        if self._store is not None and not caps.local:
            # The slot is reserved in the store, for all replicas, in the order asked: turns by what a call is for
            # are taken only within one process. (Taken here too, one reservation at a time, the database's round
            # trip on a loaded replica became the pace: bench/replicas.py, one replica, done to disk 3.5 -> 10 s.)
            delay = await anyio.to_thread.run_sync(self._store.pace, caps.name, 1.0 / per_second,
                                                   limiter=self._reserving)
            if delay:
                await anyio.sleep(delay)
            return
        if caps.name not in self._pacers:
            self._pacers[caps.name] = Pacer(per_second)
        await self._pacers[caps.name].wait(turn)

    async def quiet(self, provider: Provider) -> None:
        """Until no call to this host that brings a result (or reads its list) waits for its turn here."""
        if (pacer := self._pacers.get(provider.capabilities.name)) is not None:
            await pacer.gate.quiet()
