"""The list sweep: one read of a host's job list (a page per 100 jobs) stands for a poll of every job this process
follows there. A job the list shows ended wakes its follower, which polls it once for the result; the list only
speeds this up, so a list that is forbidden, failing or garbled leaves every job polled at the host's own pace."""

from __future__ import annotations

import logging
import time

import anyio
from anyio.abc import TaskGroup

from ..errors import HostAnswerMalformed, R2VError
from ..providers.base import Capabilities, Provider
from . import reconcile
from .pacing import Pacers

log = logging.getLogger(__name__)


class ListSweep:
    def __init__(self, time_scale: float, pacers: Pacers, task_group: TaskGroup):
        self._time_scale = time_scale
        self._pacers = pacers
        self._tg = task_group
        self._wake: dict[str, anyio.Event] = {}  # a follower's nap, cut short when a sweep sees its job end
        self._swept: dict[str, dict[str, tuple[str, float]]] = {}  # provider -> host job id -> (task id, sent at)
        # By provider: when its job list was last read whole, and the followed jobs it showed unfinished then.
        self._listed: dict[str, tuple[float, frozenset[str]]] = {}

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

    def vouched(self, caps: Capabilities, job_id: str) -> bool:
        """Whether the host's job list, read whole and recently, showed this job still unfinished."""
        read_at, unfinished = self._listed.get(caps.name, (0.0, frozenset()))
        fresh = time.monotonic() - read_at <= self._time_scale * (2 * caps.sweep_seconds + caps.poll_max_seconds)
        return fresh and job_id in unfinished

    async def _loop(self, provider: Provider) -> None:
        caps = provider.capabilities
        swept = self._swept[caps.name]
        assert caps.sweep_seconds
        while True:
            await anyio.sleep(self._time_scale * caps.sweep_seconds)
            if not swept:
                continue
            try:
                await self._once(provider, swept)
            except Exception as exc:  # forbidden, failing, garbled: the followers poll at the host's pace meanwhile
                self._listed.pop(caps.name, None)
                message = exc.message if isinstance(exc, R2VError) else f"{type(exc).__name__}: {exc}"
                log.warning("sweeping %s's job list: %s", caps.title, message)

    async def _once(self, provider: Provider, swept: dict[str, tuple[str, float]]) -> None:
        caps = provider.capabilities
        now = time.time()
        since = max(min(sent for _, sent in swept.values()) - reconcile.CLOCK_SKEW, now - 23 * 3600)
        for _ in range(len(swept) // 100 + 1):
            await self._pacers.wait(provider)
        read_at = time.monotonic()
        listed = await provider.find_submitted(since=since, until=now + reconcile.CLOCK_SKEW)
        if listed is None:
            raise HostAnswerMalformed(f"{caps.title} did not list its jobs")
        unfinished = set()
        for c in listed:
            if c.provider_task_id not in swept:
                continue
            if c.status in ("succeeded", "failed", "canceled"):
                event = self._wake.get(swept.pop(c.provider_task_id)[0])
                if event is not None:
                    event.set()
            elif c.status in ("queued", "running"):
                unfinished.add(c.provider_task_id)
        self._listed[caps.name] = (read_at, frozenset(unfinished))
