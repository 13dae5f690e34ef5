"""The list sweep: one read of a host's job list (a page per 100 jobs) stands for a poll of every job this process
follows there. A job the list shows ended wakes its follower, which polls it once for the result; the list only
speeds this up, so a list that is forbidden, failing or garbled leaves every job polled at the host's own pace.

Replicas on one shared store read each host's list once for all of them: the replica holding the claim
"listing/<host>" reads it for every unfinished job there and keeps the reading in the store, which tells the others;
they read the reading instead of the host. (Three replicas, each reading the whole list, made three times the
host's list calls of one.)"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping

import anyio
from anyio.abc import TaskGroup

from ..errors import HostAnswerMalformed, R2VError
from ..providers.base import Capabilities, HostCandidate, Provider
from ..schema import TERMINAL, Status
from . import reconcile
from .pacing import Pacers, Turn
from .worker import Worker

log = logging.getLogger(__name__)


class ListSweep:
    def __init__(self, time_scale: float, pacers: Pacers, task_group: TaskGroup, worker: Worker | None = None):
        self._time_scale = time_scale
        self._pacers = pacers
        self._tg = task_group
        # On a shared store, the worker whose claim decides which replica reads the list, and whose store keeps it.
        self._shared = worker if worker is not None and worker.ledger.shared_across_hosts else None
        self._reading: dict[str, bool] = {}  # by provider: whether this replica read the list last time
        self._wake: dict[str, anyio.Event] = {}  # a follower's nap, cut short when a sweep sees its job end
        self._swept: dict[str, dict[str, tuple[str, float]]] = {}  # provider -> host job id -> (task id, sent at)
        # By provider: when its job list was last read whole, and the followed jobs it showed unfinished then (each
        # with the list's word for it: queued or running).
        self._listed: dict[str, tuple[float, dict[str, Status]]] = {}
        self._took: dict[str, float] = {}  # by provider: seconds from its last sweep falling due to its reading kept

    def include(self, provider: Provider, task_id: str, job_id: str, sent_at: float) -> None:
        """Look for this job in each sweep of its host's list (the host's sweep starts with its first job)."""
        name = provider.capabilities.name
        if name not in self._swept:
            self._swept[name] = {}
            self._tg.start_soon(self._loop, provider)
        self._swept[name][job_id] = (task_id, sent_at)

    def forget(self, task_id: str) -> None:
        self._wake.pop(task_id, None)
        for swept in self._swept.values():
            for job_id, (followed, _) in list(swept.items()):
                if followed == task_id:
                    del swept[job_id]

    async def nap(self, task_id: str, seconds: float) -> bool:
        """Sleep up to `seconds`; True when a sweep woke this follower because the host's list shows its job ended."""
        event = self._wake.setdefault(task_id, anyio.Event())
        with anyio.move_on_after(seconds):
            await event.wait()
        if event.is_set():
            self._wake.pop(task_id, None)
            return True
        return False

    def vouched(self, caps: Capabilities, job_id: str) -> Status | None:
        """What the host's job list, read whole and recently, showed of this job while unfinished (queued or
        running); None when no such reading showed it."""
        read_at, unfinished = self._listed.get(caps.name, (0.0, {}))
        # A sweep that waited for the host's pace (results first, then its pages) is late, not failing: its
        # reading still stands until the next one is as late.
        window = self._time_scale * (2 * caps.sweep_seconds + caps.poll_max_seconds) + 2 * self._took.get(caps.name, 0)
        fresh = time.monotonic() - read_at <= window
        return unfinished.get(job_id) if fresh else None

    async def _loop(self, provider: Provider) -> None:
        caps = provider.capabilities
        swept = self._swept[caps.name]
        assert caps.sweep_seconds
        interval = self._time_scale * caps.sweep_seconds
        while True:
            if self._shared is not None and not self._reading.get(caps.name):
                published = self._shared.signals.changed(f"listing/{caps.name}")
                with anyio.move_on_after(interval):  # woken when the reader keeps a new reading
                    await published.wait()
            else:
                await anyio.sleep(interval)
            due = time.monotonic()
            try:
                # The list is read when no result waits for the pace: each of those is one call that lands a video,
                # while a reading now would only find more results to wait behind them (its pages go first).
                await self._pacers.quiet(provider)
                if self._shared is not None:
                    await self._shared_once(provider, swept)
                elif swept:
                    read_at = time.monotonic()
                    listed = await self._read(provider, min(sent for _, sent in swept.values()))
                    self._apply(caps.name, swept, read_at, *_split(listed))
                self._took[caps.name] = time.monotonic() - due
            except Exception as exc:  # forbidden, failing, garbled: the followers poll at the host's pace meanwhile
                self._listed.pop(caps.name, None)
                message = exc.message if isinstance(exc, R2VError) else f"{type(exc).__name__}: {exc}"
                log.warning("sweeping %s's job list: %s", caps.title, message)

    async def _shared_once(self, provider: Provider, swept: dict[str, tuple[str, float]]) -> None:
        """Read the list for every replica if this one holds the claim on it (taken when free), else the reading
        the holder kept. A replica following nothing there lets the claim go."""
        worker, name = self._shared, provider.capabilities.name
        assert worker is not None
        key = f"listing/{name}"
        if not swept:
            if self._reading.pop(name, False):
                await anyio.to_thread.run_sync(worker.release, key)
            return
        self._reading[name] = await anyio.to_thread.run_sync(worker.claim, key) == 0
        if self._reading[name]:
            at_host = await anyio.to_thread.run_sync(worker.ledger.jobs_at_host, name)
            oldest = at_host[1] if at_host else min(sent for _, sent in swept.values())
            read_at = time.monotonic()
            unfinished, ended = _split(await self._read(provider, oldest))
            await anyio.to_thread.run_sync(worker.ledger.publish_listing, name, unfinished, sorted(ended))
            self._apply(name, swept, read_at, unfinished, ended)
            return
        reading = await anyio.to_thread.run_sync(worker.ledger.read_listing, name)
        if reading is not None:
            age, unfinished, ended = reading
            self._apply(name, swept, time.monotonic() - age, unfinished, set(ended))

    async def _read(self, provider: Provider, oldest: float) -> list[HostCandidate]:
        """The host's jobs sent since `oldest`, a page of 100 per call, each page at the host's pace."""
        now = time.time()
        since = max(oldest - reconcile.CLOCK_SKEW, now - 23 * 3600)
        listed = await provider.find_submitted(since=since, until=now + reconcile.CLOCK_SKEW,
                                               before_page=lambda: self._pacers.wait(provider, Turn.LIST))
        if listed is None:
            raise HostAnswerMalformed(f"{provider.capabilities.title} did not list its jobs")
        return listed

    def _apply(self, name: str, swept: dict[str, tuple[str, float]], read_at: float,
               unfinished: Mapping[str, Status], ended: Collection[str]) -> None:
        """Wake the followers of the jobs a reading shows ended; remember which it showed unfinished, how, and when."""
        for job_id in [j for j in swept if j in ended]:
            # Set even when its follower is not napping this moment (its round takes store calls): its next nap
            # ends at once, where a wake only for those napping was lost.
            self._wake.setdefault(swept.pop(job_id)[0], anyio.Event()).set()
        self._listed[name] = (read_at, {j: status for j, status in unfinished.items() if j in swept})


def _split(listed: list[HostCandidate]) -> tuple[dict[str, Status], set[str]]:
    """A listing's unfinished jobs (id: queued or running), and the ids of its ended ones."""
    unfinished = {c.provider_task_id: c.status for c in listed if c.status in ("queued", "running")}
    return unfinished, {c.provider_task_id for c in listed if c.status in TERMINAL}
