"""The runner: one verb per tool (generate, view, wait, cancel, list), each a few lines over quote and follower.

Tools call these and nothing else; the follower does the host work in the background, so a call waits
on the ledger, never on a host, and returns within its wait cap whatever the host does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..cast.roster import Cast
from ..config import Settings
from ..errors import InputError, InputErrors, NotFoundError
from ..providers.registry import ProviderRegistry
from ..references.folders import Folders
from ..schema import AnyArgs, SequenceArgs, TaskView
from ..store import Store, TaskRecord
from .fingerprint import fingerprint
from .follower import Follower
from .lifecycle import Phase, cancel_unsent
from .quote import Quote, budget_check, check_free_work, dry_run, quote
from .sequencer import Sequencer
from .sequences import SeqPhase, is_sequence_id
from .takes import group_fingerprint, seeds_for
from .views import TYPICAL_RUN_SECONDS, takes_dry_run, task_view
from .worker import Worker

ProgressReport = Callable[[float, float | None, str], Awaitable[None]]
_BEFORE_HOST = frozenset({Phase.PENDING, Phase.CREATING, Phase.UNKNOWN})


@dataclass(frozen=True)
class Patience:
    """How long one call may wait on a task, and how it reports while it does (None: the client asked for no
    progress). The tools decide it from the request; the runner only honours it."""

    report: ProgressReport | None
    cap: float  # seconds: no call answers later than this, whatever wait_seconds asks
    # When the call began: its checks (a generate's probes and admission) count against the wait, so a slow check
    # cannot push the answer past a client's timeout.
    began: float = field(default_factory=time.monotonic)


def _warnings(q: Quote) -> list[str]:
    """What may not come out as meant: the intake's warnings and the host's notes on the request."""
    return [f"{f.message}. Fix: {f.fix}." for f in q.intake.findings if f.severity == "warning"] + \
        q.provider.notes(q.request)


class Runner:
    def __init__(self, settings: Settings, ledger: Store, task_group: TaskGroup):
        self.settings = settings
        self.ledger = ledger
        self.providers = ProviderRegistry(settings)
        self.worker = Worker(settings, ledger, task_group)
        self.follower = Follower(settings, ledger, self.providers, self.worker, task_group)
        self.cast = Cast(ledger, settings.data.cast)
        self.sequencer = Sequencer(settings, ledger, self.providers, self.follower, self.cast, self.worker)

    def start(self) -> int:
        """Take up every unfinished task and sequence (after a restart), and start the worker's keeper."""
        return self.worker.start()

    async def aclose(self) -> None:
        await self.providers.aclose()

    async def all_sent(self) -> None:
        """Return once every submit of this server in flight has sent its create (or ended before)."""
        await self.follower.submitter.all_sent()

    # ------------------------------------------------------------------ the tools' verbs

    async def generate(self, args: AnyArgs, folders: Folders, patience: Patience,
                       owner: str = "") -> TaskView:
        """Quote, then return a dry run, an identical request's task, or a new task followed in the background."""
        if args.variants > 1:
            return await self._takes(args, folders, patience, owner)
        q = await anyio.to_thread.run_sync(lambda: quote(args, folders, settings=self.settings,
                                                           providers=self.providers, ledger=self.ledger, owner=owner,
                                                           cast=self.cast))  # probes
        warnings = _warnings(q)
        if args.dry_run:
            q.close()
            q.intake.discard_inline()  # a dry run keeps nothing
            return dry_run(q).model_copy(update={"warnings": warnings})
        if q.provider.capabilities.local:
            try:
                check_free_work(self.ledger, owner, [q.provider.capabilities.name], "a preview")
            except BaseException:
                q.close()
                q.intake.discard_inline()
                raise
        # The duplicate guard, the caps and the insert are one transaction: ten identical calls at once make one task,
        # and concurrent calls can never together pass a cap.
        cast = list(q.cast or ())
        task_id, duplicate = self.follower.submit(
            q, owner, check=budget_check(q.cost_estimate, self.settings),
            duplicate_of=None if args.allow_duplicate else (
                q.fingerprint, time.time() - self.settings.duplicate_window_seconds))
        if cast and not duplicate:
            self.cast.used(owner, cast)
        # wait_seconds=0 is answered once the task is recorded (its references upload and its create goes out
        # after); any longer wait also lasts until the host has the job, so a refusal comes back in this answer.
        view = await self.wait(task_id, args.wait_seconds, patience, owner, until_at_host=args.wait_seconds > 0)
        return view.model_copy(update={"duplicate": duplicate, "warnings": warnings + view.warnings})

    async def _takes(self, args: AnyArgs, folders: Folders, patience: Patience,
                     owner: str) -> TaskView:
        """The request made `variants` times, each take with its own seed: every take checked and priced before
        anything is recorded, the group admitted as all of its takes, then each take sent."""
        seeds = seeds_for(args.seed, args.variants)
        quotes: list[Quote] = []
        try:
            for seed in seeds:
                take = args.model_copy(update={"seed": seed, "variants": 1})
                quotes.append(await anyio.to_thread.run_sync(lambda t=take: quote(
                    t, folders, settings=self.settings, providers=self.providers, ledger=self.ledger, owner=owner,
                    cast=self.cast)))
            first = quotes[0]
            warnings = _warnings(first)
            if args.dry_run:
                views = [dry_run(q) for q in quotes]
                for q in quotes:  # a dry run keeps nothing
                    q.close()
                    q.intake.discard_inline()
                return takes_dry_run(views, seeds).model_copy(update={"warnings": warnings})
            if first.provider.capabilities.local:
                check_free_work(self.ledger, owner, [first.provider.capabilities.name], "a preview")
        except BaseException:
            for q in quotes:
                q.close()
                q.intake.discard_inline()
            raise
        group_fp = group_fingerprint(fingerprint(first.provider.capabilities.name, first.model,
                                                 first.request.model_copy(update={"seed": args.seed}), first.intake),
                                     len(quotes))
        request = args.model_dump(mode="json", exclude={"wait_seconds", "dry_run", "allow_duplicate", "variants"})
        files = self.cast.files(owner, first.cast or {})  # the characters' references, beside the takes on the sheet
        group_id, duplicate = self.sequencer.takes.start(
            quotes, seeds, owner, request, files, group_fp,
            duplicate_of=None if args.allow_duplicate else (
                group_fp, time.time() - self.settings.duplicate_window_seconds))
        if not duplicate:
            self.sequencer.drive(group_id)  # its driver waits for the takes and draws the sheet
        if first.cast and not duplicate:
            self.cast.used(owner, list(first.cast))
        view = await self.wait(group_id, args.wait_seconds, patience, owner)
        return view.model_copy(update={"duplicate": duplicate, "warnings": warnings + view.warnings})

    async def pick_take(self, task_id: str, take: int, shot: int | None, patience: Patience,
                        owner: str = "") -> TaskView:
        """Choose which take is a group's video, or which take a sequence's shot uses (it is joined again)."""
        record = self.sequencer.record(task_id, owner) if is_sequence_id(task_id) else None
        if record is None:
            self.record(task_id, owner)  # an unknown id reads as unknown; a plain task has one take
            raise InputErrors([InputError(f"{task_id} is a single task: it has no takes to pick from",
                                          field="task_id", fix="generate with variants=2-4 to get takes, then pick")])
        if record.kind == "takes":
            self.sequencer.takes.pick(record, take)
            return self.view(task_id, owner)
        self.sequencer.pick(record, shot, take)
        return await self.wait(task_id, patience.cap, patience, owner)

    def record(self, task_id: str, owner: str = "") -> TaskRecord:
        record = self.ledger.get(task_id)
        if record is None or record.owner != owner:  # another caller's task reads exactly like an unknown one
            raise NotFoundError(f"no task \"{task_id}\"", field="task_id",
                                fix="use a task_id returned by a generate tool; list_tasks shows recent ones")
        return record

    async def sequence(self, args: SequenceArgs, patience: Patience, owner: str = "") -> TaskView:
        """Check every shot, then return a dry run or start the sequence (its shots are made in the background)."""
        spec, quotes = await anyio.to_thread.run_sync(self.sequencer.plan, args, owner)
        if args.dry_run:
            return self.sequencer.dry_run(spec, quotes)
        sequence_id = self.sequencer.create(spec, quotes, owner)
        return await self.wait(sequence_id, args.wait_seconds, patience, owner)

    async def stitch(self, task_ids: list[str], patience: Patience, owner: str = "") -> TaskView:
        sequence_id = self.sequencer.stitch(task_ids, owner)
        return await self.wait(sequence_id, patience.cap, patience, owner)

    async def redo_shot(self, sequence_id: str, shot: int, prompt: str | None, seed: int | None, wait_seconds: float,
                        patience: Patience, owner: str = "") -> TaskView:
        warnings = await anyio.to_thread.run_sync(self.sequencer.redo, sequence_id, shot, prompt, seed, owner)
        self.sequencer.drive(sequence_id)
        view = await self.wait(sequence_id, wait_seconds, patience, owner)
        return view.model_copy(update={"warnings": warnings + view.warnings})

    def view(self, task_id: str, owner: str = "") -> TaskView:
        if is_sequence_id(task_id):
            return self.sequencer.view(task_id, owner)
        record = self.record(task_id, owner)
        return task_view(record, self.providers.capabilities(record.provider))

    def saved(self, task_id: str) -> Any:
        """The row that says where a task's or sequence's files are, and whose they are."""
        return self.sequencer.book.get(task_id) if is_sequence_id(task_id) else self.ledger.get(task_id)

    def _state(self, task_id: str, owner: str) -> tuple[TaskView, bool, bool, float]:
        """The view, whether it has ended, whether the host has it yet, and when it was created (epoch)."""
        if is_sequence_id(task_id):
            seq = self.sequencer.record(task_id, owner)
            return self.sequencer.view(task_id, owner), SeqPhase(seq.phase).terminal, True, seq.created_at
        record = self.record(task_id, owner)
        phase = Phase(record.phase)
        view = task_view(record, self.providers.capabilities(record.provider))
        return view, phase.terminal, phase not in _BEFORE_HOST, record.created_at

    def _changed(self, task_id: str) -> anyio.Event:
        return self.worker.signals.changed(task_id)

    async def wait(self, task_id: str, seconds: float, patience: Patience, owner: str = "", *,
                   until_at_host: bool = False) -> TaskView:
        """Wait up to `seconds` (and never past `patience.cap`) for the task to end, reporting at each change and
        every few seconds. With `until_at_host`, also wait (within the cap) until the host has the job, so a new
        task's id comes back."""
        report = patience.report
        view, ended, _, _ = self._state(task_id, owner)
        if ended:  # the usual call on a finished task: one read
            return view
        if not is_sequence_id(task_id):
            self.follower.watch(task_id)
        cap = patience.cap
        start = patience.began
        deadline = start + max(0.0, min(seconds, cap))
        hard = start + cap
        last_progress = -1.0
        while True:
            changed = self._changed(task_id)  # taken before the read: a change between the two still wakes this wait
            view, ended, at_host, created_at = self._state(task_id, owner)
            now = time.monotonic()
            if ended or now >= hard or (now >= deadline and not (until_at_host and not at_host)):
                return view
            if report is not None:
                since = time.time() - created_at
                fraction = view.progress if view.progress is not None else min(0.95, since / TYPICAL_RUN_SECONDS)
                value = max(round(fraction * 100, 1), last_progress + 0.1)
                last_progress = value
                estimate = "" if view.progress is not None else " (estimated)"
                await report(value, 100.0, f"{view.status}: {view.stage}; {math.floor(fraction * 100)}%{estimate}, "
                                           f"waited {now - start:.0f}s of {max(deadline, start) - start:.0f}s")
            end = deadline if now < deadline else hard
            with anyio.move_on_after(min(end - now, self.settings.progress_interval_seconds)):
                await changed.wait()

    async def cancel(self, task_id: str, patience: Patience, owner: str = "") -> TaskView:
        if is_sequence_id(task_id):
            with anyio.move_on_after(patience.cap):
                await self.sequencer.cancel(task_id, owner)
            return self.view(task_id, owner)
        record = self.record(task_id, owner)
        with anyio.move_on_after(patience.cap):
            if not Phase(record.phase).terminal:
                await self.follower.cancel(record)
            # Asked before the host had the job's id, the cancel is sent by the task's driver once the id comes
            # back: the answer waits for that (within the call's patience), so it says what the host did.
            while True:
                changed = self._changed(task_id)
                record = self.record(task_id, owner)
                if not cancel_unsent(Phase(record.phase), record.stage):
                    break
                with anyio.move_on_after(self.settings.progress_interval_seconds):  # another server on this
                    await changed.wait()                                           # file tells no one: read again
        return self.view(task_id, owner)

    def list(self, limit: int, status: str | None, owner: str = "") -> tuple[list[TaskView], int]:
        """The caller's newest tasks, sequences among them (their shots are tasks too), newest first."""
        records, total = self.ledger.list(limit=limit, status=status, owner=owner)
        sequences, more = self.sequencer.book.newest(owner, limit, status)
        views = [(r.created_at, task_view(r, self.providers.capabilities(r.provider))) for r in records]
        views += [(r.created_at, self.sequencer.view(r.sequence_id, owner)) for r in sequences]
        views.sort(key=lambda pair: pair[0], reverse=True)
        return [view for _, view in views[:limit]], total + more
