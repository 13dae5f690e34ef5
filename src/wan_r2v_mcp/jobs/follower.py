"""Following a task from its create to its video on disk: polls, the list sweep, pacing, download and cancel.

This is the only code that changes a followed task's phase (through `Lifecycle`). The worker runs one
driver per unfinished task, so a tool call never waits on a host: it waits on the ledger, bounded by the
wait cap. A new task's driver first submits it (`jobs.submit`); a create whose answer was lost is looked
for at the host (`jobs.finding`); a finished job is saved (`jobs.download`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..config import Settings
from ..errors import FollowingFailed, InputError, Interrupted, PollFailed, ProviderError, ProviderUnavailable
from ..providers.base import HostJob, JobRef, Provider
from ..providers.registry import ProviderRegistry
from ..store import Spend, Store, TaskRecord
from . import results
from .download import Downloader
from .finding import Finder
from .lifecycle import AT_HOST, CANCEL_BEFORE_ID, Lifecycle, Phase, cancel_unsent, host_says
from .listing import ListSweep
from .pacing import Pacers, Turn
from .quote import Quote
from .submit import Submitter, new_task_id
from .worker import RESTARTS, Kind, Worker

log = logging.getLogger(__name__)


class Follower:
    def __init__(self, settings: Settings, ledger: Store, providers: ProviderRegistry, worker: Worker,
                 task_group: TaskGroup):
        self.settings = settings
        self.ledger = ledger
        self.lifecycle = Lifecycle(ledger)
        self.providers = providers
        self.worker = worker
        self.signals = worker.signals
        self.pacers = Pacers(settings.time_scale, ledger)
        self.submitter = Submitter(ledger, self.lifecycle, worker)
        self.sweep = ListSweep(settings.time_scale, self.pacers, task_group, worker)
        self.finder = Finder(settings, ledger, self.lifecycle, self.pacers, self.submitter)
        self.downloader = Downloader(settings, ledger, self.lifecycle, self.signals)
        self.kind = Kind("following", ledger.unclaimed_tasks, self._drive, self._give_up)
        worker.add(self.kind)

    def _scaled(self, seconds: float) -> float:
        return seconds * self.settings.time_scale

    def _notify(self, task_id: str) -> None:
        self.signals.notify(task_id)

    new_task_id = staticmethod(new_task_id)

    def submit(self, q: Quote, owner: str, task_id: str | None = None, *, check: Callable[[Spend], None],
               duplicate_of: tuple[str, float] | None = None, sequence_id: str | None = None,
               shot: int | None = None) -> tuple[str, bool]:
        """Admit and record the intent (before anything leaves the machine), then submit and follow it in the
        background. Returns the task id (`task_id` when the caller chose it beforehand, as a sequence does) and
        whether it is an identical earlier request's task instead. Takes ownership of the quote's files."""
        task_id = task_id or new_task_id()
        earlier = self.submitter.admit(q, owner, task_id, check=check, duplicate_of=duplicate_of,
                                       sequence_id=sequence_id, shot=shot)
        if earlier is not None:
            return earlier, True
        pending: list[Quote] = [q]

        async def submit_then_follow() -> None:
            if pending:  # once: a restarted driver follows the task from whatever phase the submit left it in
                await self.submitter.send(pending.pop(), task_id, owner)
            await self._drive(task_id)

        self.worker.run(self.kind, task_id, submit_then_follow)
        return task_id, False

    def watch(self, task_id: str) -> None:
        self.worker.run(self.kind, task_id)

    async def _drive(self, task_id: str) -> None:
        try:
            await self._follow(task_id)
        finally:
            self.sweep.forget(task_id)

    def _give_up(self, task_id: str, exc: Exception) -> None:
        """End a task whose following keeps failing, saying what is known of its job at the host."""
        record = self.ledger.get(task_id)
        if record is None or Phase(record.phase).terminal:
            return
        why = f"{type(exc).__name__}: {exc}"[:200]
        if Phase(record.phase) in AT_HOST:
            where = f"job {record.provider_task_id} at {record.provider}" if record.provider_task_id else \
                f"a job at {record.provider} made at {results.iso(record.submitted_at)}"
            fix = (f"the server stopped following it; {where} may still finish and is billed by the host: look for it "
                   "in the host's console before generating again")
        else:
            fix = "nothing was sent to a host; generate again"
        self.lifecycle.fail(task_id, FollowingFailed(f"following this task failed {RESTARTS + 1} times ({why})",
                                                     fix=fix), default_code=FollowingFailed.code)

    async def _follow(self, task_id: str) -> None:
        delay = None
        poll_now = False  # woken by a sweep, the list cannot vouch for the job, or the safety interval ran out
        woken = False  # the list showed the job ended
        last_poll = time.monotonic()  # the create's answer (or the last poll) said how the job stands
        state: dict[str, Any] = {}  # reconciliation's memory between rounds
        transient = 0
        while True:
            record = self.ledger.get(task_id)
            if record is None or Phase(record.phase).terminal:
                return
            if await self.worker.held_elsewhere(task_id):
                if self.worker.leaves_what_others_hold:
                    return
                continue
            try:
                provider = self._provider_of(record)
            except InputError as exc:  # the key was removed, or its caller's own key is gone with a restart
                if Phase(record.phase) in AT_HOST:
                    self.lifecycle.note(task_id, Phase(record.phase),
                                        stage=f"waiting: {exc.message}; {exc.fix}")
                    self._notify(task_id)
                    await anyio.sleep(self._scaled(60.0))
                    continue
                self.lifecycle.fail(task_id, exc, default_code=ProviderUnavailable.code)
                self._notify(task_id)
                return
            caps = provider.capabilities
            if delay is None:
                delay = caps.poll_initial_seconds
            phase = Phase(record.phase)
            try:
                if phase is Phase.PENDING:  # its submitter stopped before any create was sent
                    self.lifecycle.fail(task_id, Interrupted(
                        "the server stopped before this task was submitted; nothing was sent or paid",
                        fix="generate again"), only_from=frozenset({Phase.PENDING}))
                elif phase is Phase.CREATING:  # its submitter stopped while the create was in flight
                    self.lifecycle.answer_lost(task_id, "the server stopped while the create was in flight")
                elif record.provider_task_id is None:  # UNKNOWN, or CANCELING before the id came back
                    wait = await self.finder.look(record, provider, state)
                    if wait is not None:
                        await anyio.sleep(wait)
                elif phase is Phase.DOWNLOADING:
                    await self.downloader.save(record, provider)
                elif caps.sweep_seconds and not poll_now and phase is not Phase.CANCELING:
                    # The sweep reads the host's job list and wakes this watcher when the list shows the job ended.
                    # The list only speeds this up: each nap lasts one of the host's documented poll intervals, and
                    # the job is polled after it unless the list's last good reading showed the job unfinished
                    # (then it waits for the list, or for the safety interval). A list that is forbidden, failing,
                    # garbled or silent about the job so leaves it polled at the host's own pace.
                    self.sweep.include(provider, task_id, record.provider_task_id, record.submitted_at or record.created_at)
                    woken = await self.sweep.nap(task_id, self._scaled(caps.poll_max_seconds))
                    listed = self.sweep.vouched(caps, record.provider_task_id)
                    poll_now = woken or listed is None or \
                        time.monotonic() - last_poll >= self._scaled(caps.sweep_safety_seconds)
                    if not poll_now and listed == "running" and phase is Phase.QUEUED:
                        # The list shows the job started: say so now, not at the next poll (minutes away).
                        self.lifecycle.move(task_id, Phase.RUNNING, only_from=frozenset({Phase.QUEUED}),
                                            stage=f"started at {caps.title}, as its job list shows")
                else:
                    # Ahead of the polls that only ask whether a job still runs: one the list shows ended (a result
                    # to land), and a cancel.
                    turn = Turn.RESULT if woken or phase is Phase.CANCELING else Turn.ROUTINE
                    poll_now = woken = False
                    last_poll = time.monotonic()
                    await self.pacers.wait(provider, turn)
                    job = await provider.poll(JobRef(record.provider_task_id, record.payload, record.model))
                    # A cancel is sent on each poll where it stops a job (a host that takes it only as a signal is
                    # sent it once: when it was asked for before the job's id was known).
                    if phase is Phase.CANCELING and job.status in ("queued", "running") and (
                            not caps.cancel_is_request or cancel_unsent(phase, record.stage)):
                        job = await provider.cancel(JobRef(record.provider_task_id, record.payload, record.model)) or job
                    self.apply(task_id, job)
                    if job.status in ("queued", "running") and not (caps.sweep_seconds and phase is not Phase.CANCELING):
                        await self.sweep.nap(task_id, self._scaled(delay))
                        delay = min(delay * 1.5, caps.poll_max_seconds)
                transient = 0
            except ProviderError as exc:
                if not exc.retryable:
                    self.lifecycle.fail(task_id, exc, default_code=PollFailed.code)
                    self._notify(task_id)
                    return
                transient += 1
                log.warning("following %s: %s (attempt %d)", task_id, exc.message, transient)
                await anyio.sleep(self._scaled(min(caps.poll_initial_seconds * 2 ** transient, 120.0)))
            self._notify(task_id)

    def _provider_of(self, record: TaskRecord) -> Provider:
        return self.providers.get(record.provider, caller=record.owner, callers_key_only=record.key_from == "caller")

    # ------------------------------------------------------------------ what the host says

    def apply(self, task_id: str, job: HostJob) -> None:
        """Record what the host says of a followed job, as a guarded move."""
        to, values = host_says(job)
        stage = "downloading the result" if to is Phase.DOWNLOADING else job.stage
        if to in (Phase.QUEUED, Phase.RUNNING):
            moved = self.lifecycle.move(task_id, to, only_from=frozenset({Phase.QUEUED, Phase.RUNNING}),
                                        stage=stage, **values)
            if not moved:  # being canceled: the host has not stopped it yet
                self.lifecycle.note(task_id, Phase.CANCELING, stage=f"cancel requested; {job.stage}",
                                    progress=job.progress)
        else:
            if to is Phase.DOWNLOADING and self._phase(task_id) is Phase.CANCELING:
                stage = "the host finished the job despite the cancel (it is paid): downloading the result"
            self.lifecycle.move(task_id, to, stage=stage, **values)
        self._notify(task_id)

    def _phase(self, task_id: str) -> Phase | None:
        record = self.ledger.get(task_id)
        return Phase(record.phase) if record else None

    async def cancel(self, record: TaskRecord) -> None:
        """Stop a task: before anything was sent, locally; at the host otherwise (a job still finishing is delivered)."""
        task_id = record.task_id
        phase = Phase(record.phase)
        if phase is Phase.PENDING and self.lifecycle.move(task_id, Phase.CANCELED, only_from=frozenset({Phase.PENDING}),
                                                          stage="canceled before anything was sent"):
            self._notify(task_id)
            return
        record = self.ledger.get(task_id) or record
        phase = Phase(record.phase)
        if phase.terminal or phase is Phase.DOWNLOADING:
            return  # nothing left to stop: a finished job is delivered
        if record.provider_task_id is None:  # the create is in flight or its answer is being looked for
            if self.lifecycle.move(task_id, Phase.CANCELING, only_from=frozenset({Phase.CREATING, Phase.UNKNOWN}),
                                   stage=CANCEL_BEFORE_ID):
                self._notify(task_id)
                self.watch(task_id)
                return  # its driver sends the cancel once the host's answer brings the id
            record = self.ledger.get(task_id) or record  # the id came back meanwhile: cancel at the host now
            if Phase(record.phase).terminal or record.provider_task_id is None:
                return
        provider = self._provider_of(record)
        job = await provider.cancel(JobRef(record.provider_task_id, record.payload, record.model))
        if job is not None:
            if job.status in ("queued", "running") and provider.capabilities.cancel_is_request:
                # Only a signal to a running job (fal): follow it until the host says it ended.
                self.lifecycle.move(task_id, Phase.CANCELING, only_from=frozenset({Phase.QUEUED, Phase.RUNNING}),
                                    stage=job.stage, progress=job.progress)
            else:  # canceled, finished, or a host that will not stop it (DashScope: queued jobs only)
                self.apply(task_id, job)
        self._notify(task_id)
        self.watch(task_id)

