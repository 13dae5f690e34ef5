"""The worker loop: one driver per unfinished task or sequence, under a lease, restarted when it fails.

Tasks and sequences are driven alike. Each kind says which of its ids are unfinished, how to drive one and
how to end one whose driver keeps failing; the worker runs one driver per id in the server's task group,
renews this process's leases on a clock of their own, and now and then takes up any unfinished id that
nobody drives (a crash, or another server on the same ledger that stopped).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.abc import TaskGroup

from ..config import Settings
from ..store import Store

log = logging.getLogger(__name__)

LEASE_SECONDS = 60.0  # a claim lasts this long; the keeper renews every claim of this process 4 times as often
SWEEP_SECONDS = 20.0  # how often unfinished ids that nobody drives are looked for (on a shared store: every beat)
RESTARTS = 5  # a driver that failed unexpectedly this many times in a row ends its work with the error


def holder_is_dead(holder: str) -> bool:
    """A claim made by a process of this machine that no longer runs (a crash, a kill -9) is void at once."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or os.name == "nt":  # os.kill(pid, 0) would kill on Windows
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _never(holder: str) -> bool:
    return False


async def until_done(work: Callable[[], Awaitable[None]], what: str, time_scale: float,
                     give_up: Callable[[Exception], None]) -> None:
    """Run `work` to its end; a bug or an unexpected answer is logged and it starts again after a growing pause. After
    `RESTARTS` such failures `give_up` ends the work with a true error, so no driver runs forever."""
    failures = 0
    while True:
        try:
            await work()
            return
        except Exception as exc:
            failures += 1
            if failures > RESTARTS:
                log.exception("%s failed %d times; giving up", what, failures)
                try:
                    give_up(exc)
                except Exception:  # the ledger itself failing: the next start or sweep takes the work up again
                    log.exception("%s: recording the failure failed too", what)
                return
            log.exception("%s failed (%d); starting again", what, failures)
            await anyio.sleep(time_scale * min(5.0 * failures, 60.0))


class Signals:
    """One event per id that anything waiting on it (a tool call's wait, a sequence's driver) waits on; each change
    of the id sets it. Listeners hear of every change (a sequence listens to its shots' tasks)."""

    def __init__(self) -> None:
        self._events: dict[str, anyio.Event] = {}
        self.listeners: list[Callable[[str], None]] = []

    def changed(self, key: str) -> anyio.Event:
        return self._events.setdefault(key, anyio.Event())

    def notify(self, key: str) -> None:
        event = self._events.pop(key, None)
        if event is not None:
            event.set()
        for listener in self.listeners:
            listener(key)

    def notify_all(self) -> None:
        """Wake every waiter (what changed is not known: each reads its row again)."""
        for key in list(self._events):
            self.notify(key)


@dataclass(frozen=True)
class Kind:
    """What the worker needs to drive one kind of work (tasks, sequences)."""

    name: str
    unclaimed: Callable[[], list[str]]  # unfinished ids no live claim covers (on one machine: every unfinished id)
    drive: Callable[[str], Awaitable[None]]
    give_up: Callable[[str, Exception], None]


class Worker:
    def __init__(self, settings: Settings, ledger: Store, task_group: TaskGroup):
        self.settings = settings
        self.ledger = ledger
        self.signals = Signals()
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._tg = task_group
        self._kinds: list[Kind] = []
        self._running: set[str] = set()
        self._renewing = anyio.CapacityLimiter(1)
        # The ids this process held at its last claim or renewal: a driver asks the store again only when its id is
        # not among them (a claim per driver per round was a write transaction on the event loop each, a database
        # round trip on a shared store: hundreds a second at a thousand tasks).
        self._held: set[str] = set()

    @property
    def lease_seconds(self) -> float:
        """How long a claim lasts: shorter on the emulators' compressed clock, so a takeover is seen in a test, but
        never so short that a busy machine's late renewal would hand a live task to another server."""
        return max(5.0, LEASE_SECONDS * min(1.0, self.settings.time_scale))

    def add(self, kind: Kind) -> None:
        self._kinds.append(kind)

    def start(self) -> int:
        """Take up every unfinished id of every kind, and keep leases and the sweep going in the background. Changes
        other servers make to the store wake this one's waiters."""
        token = anyio.lowlevel.current_token()

        def heard(key: str | None) -> None:  # on the store's listening thread
            try:
                anyio.from_thread.run_sync(self.signals.notify_all if key is None else self.signals.notify,
                                           *(() if key is None else (key,)), token=token)
            except RuntimeError:  # the event loop has ended: nobody is waiting any more
                pass

        self.ledger.listen(heard, self.holder)
        started = 0
        for kind in self._kinds:
            for key in kind.unclaimed():
                self.run(kind, key)
                started += 1
        self._tg.start_soon(self._keep)
        return started

    def running(self, key: str) -> bool:
        return key in self._running

    def run(self, kind: Kind, key: str, drive: Callable[[], Awaitable[None]] | None = None) -> None:
        """Make sure one driver drives `key` (on the event loop's thread); `drive` replaces the kind's for this run
        (a new task's first run submits it, then follows it)."""
        if key not in self._running:
            self._running.add(key)
            self._tg.start_soon(self._run, kind, key, drive or (lambda: kind.drive(key)))

    async def _run(self, kind: Kind, key: str, drive: Callable[[], Awaitable[None]]) -> None:
        try:
            await until_done(drive, f"{kind.name} {key}", self.settings.time_scale,
                             lambda exc: kind.give_up(key, exc))
        finally:
            self._running.discard(key)
            self.release(key)
            self.signals.notify(key)

    def claim(self, key: str) -> float:
        """Take or renew this process's lease on `key`: 0 when it is ours, else the seconds another holder keeps it."""
        stale = _never if self.ledger.shared_across_hosts else holder_is_dead
        held = self.ledger.take_lease(key, self.holder, self.lease_seconds, stale)
        if held:
            self._held.discard(key)
        else:
            self._held.add(key)
        return held

    def release(self, key: str) -> None:
        """Let go of this process's claim on `key` (another's is left as it is)."""
        self._held.discard(key)
        self.ledger.release_lease(key, self.holder)

    async def held_elsewhere(self, key: str) -> bool:
        """True when another server drives `key`: its writes reach our waiters through the store. On one machine
        this driver asks again after a pause (waiters told); on a shared store it ends, and the sweep tries again
        once the claim may have lapsed (not every replica asking for every task every few seconds). A claim this
        process still held at its last renewal is not asked for again."""
        if key in self._held:
            return False
        held = self.claim(key)
        if held and not self.ledger.shared_across_hosts:
            await anyio.sleep(min(held, self.settings.progress_interval_seconds))
            self.signals.notify(key)
        return bool(held)

    @property
    def leaves_what_others_hold(self) -> bool:
        return self.ledger.shared_across_hosts

    async def _keep(self) -> None:
        """Renew this process's claims on a clock of their own, never held up by a driver; sweep for orphans."""
        next_sweep = time.monotonic() + SWEEP_SECONDS * self.settings.time_scale
        renewed_at = time.time()
        while True:
            await anyio.sleep(self.lease_seconds / 4)
            now = time.time()
            if now - renewed_at > self.lease_seconds:  # the loop was blocked so long that claims may have lapsed
                log.warning("leases renewed %.0f s apart (they last %.0f s)", now - renewed_at, self.lease_seconds)
            renewed_at = now
            try:
                # A token of its own: behind the work of every call in the shared thread limiter, a renewal could
                # come after its claims lapsed, and another replica would drive them too.
                renewed = await anyio.to_thread.run_sync(self.ledger.renew_leases, self.holder, self.lease_seconds,
                                                         limiter=self._renewing)
                self._held &= renewed  # a claim another replica took meanwhile (a lapse, a dropped session) is lost
            except Exception:  # a locked or busy ledger: try again at the next beat
                self._held.clear()  # meanwhile each driver's next round asks the store whether its claim holds
                log.exception("renewing leases failed")
            # A shared store names the unclaimed ids in one indexed query, and a dead replica's claims are void at
            # once there, so its work is taken up at the next beat rather than when its claims would have run out.
            if time.monotonic() >= next_sweep or self.ledger.shared_across_hosts:
                next_sweep = time.monotonic() + SWEEP_SECONDS * self.settings.time_scale
                for kind in self._kinds:
                    try:
                        for key in await anyio.to_thread.run_sync(kind.unclaimed, limiter=self._renewing):
                            self.run(kind, key)
                    except Exception:
                        log.exception("looking for unfinished %s failed", kind.name)
