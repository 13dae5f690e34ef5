"""The runner: one verb per tool (generate, view, wait, cancel, list), each a few lines over quote and follower.

Tools call these and nothing else; the follower does the host work in the background, so a call waits
on the ledger, never on a host, and returns within its wait cap whatever the host does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskGroup

from ..config import Settings
from ..errors import NotFoundError
from ..providers.registry import ProviderRegistry
from ..references.folders import Folders
from ..schema import GenerateArgs, TaskView
from .follower import Follower
from .ledger import Ledger, TaskRecord
from .lifecycle import Phase
from .quote import dry_run, quote
from .views import TYPICAL_RUN_SECONDS, task_view

ProgressReport = Callable[[float, float | None, str], Awaitable[None]]
_BEFORE_HOST = frozenset({Phase.PENDING, Phase.CREATING, Phase.UNKNOWN})


class Runner:
    def __init__(self, settings: Settings, ledger: Ledger, task_group: TaskGroup):
        self.settings = settings
        self.ledger = ledger
        self.providers = ProviderRegistry(settings)
        self.follower = Follower(settings, ledger, self.providers, task_group)

    def start(self) -> int:
        return self.follower.start()

    async def aclose(self) -> None:
        await self.providers.aclose()

    # ------------------------------------------------------------------ the tools' verbs

    async def generate(self, args: GenerateArgs, folders: Folders, report: ProgressReport | None,
                       owner: str = "") -> TaskView:
        """Quote, then return a dry run, an identical request's task, or a new task followed in the background."""
        q = await anyio.to_thread.run_sync(lambda: quote(args, folders, settings=self.settings, providers=self.providers,
                                                         ledger=self.ledger, owner=owner))  # probes and hashes files
        warnings = [f"{f.message}. Fix: {f.fix}." for f in q.intake.findings if f.severity == "warning"]
        if args.dry_run:
            q.close()
            return dry_run(q).model_copy(update={"warnings": warnings})
        # No await between the duplicate check and the insert: ten identical calls at once make one task.
        earlier = None if args.allow_duplicate else self.ledger.find_duplicate(
            q.fingerprint, owner, time.time() - self.settings.duplicate_window_seconds)
        if earlier is not None:
            q.close()
            task_id = earlier.task_id
        else:
            task_id = self.follower.submit(q, owner)
        view = await self.wait(task_id, args.wait_seconds, report, owner, until_at_host=True)
        return view.model_copy(update={"duplicate": earlier is not None, "warnings": warnings})

    def record(self, task_id: str, owner: str = "") -> TaskRecord:
        record = self.ledger.get(task_id)
        if record is None or record.owner != owner:  # another caller's task reads exactly like an unknown one
            raise NotFoundError(f"no task \"{task_id}\"", field="task_id",
                                fix="use a task_id returned by generate_r2v; list_tasks shows recent ones")
        return record

    def view(self, task_id: str, owner: str = "") -> TaskView:
        record = self.record(task_id, owner)
        return task_view(record, self.providers.capabilities(record.provider))

    async def wait(self, task_id: str, seconds: float, report: ProgressReport | None, owner: str = "", *,
                   until_at_host: bool = False) -> TaskView:
        """Wait up to `seconds` (capped) for the task to end, reporting at each change and every few seconds. With
        `until_at_host`, also wait (within the cap) until the host has the job, so a new task's id comes back."""
        record = self.record(task_id, owner)
        if not Phase(record.phase).terminal:
            self.follower.watch(task_id)
        cap = self.settings.wait_cap_seconds
        start = time.monotonic()
        deadline = start + max(0.0, min(seconds, cap))
        hard = start + cap
        last_progress = -1.0
        while True:
            record = self.record(task_id, owner)
            view = task_view(record, self.providers.capabilities(record.provider))
            now = time.monotonic()
            phase = Phase(record.phase)
            if phase.terminal or now >= hard or (now >= deadline and not (until_at_host and phase in _BEFORE_HOST)):
                return view
            if report is not None:
                since = time.time() - record.created_at
                fraction = view.progress if view.progress is not None else min(0.95, since / TYPICAL_RUN_SECONDS)
                value = max(round(fraction * 100, 1), last_progress + 0.1)
                last_progress = value
                estimate = "" if view.progress is not None else " (estimated)"
                await report(value, 100.0, f"{view.status}: {view.stage}; {math.floor(fraction * 100)}%{estimate}, "
                                           f"waited {now - start:.0f}s of {max(deadline, start) - start:.0f}s")
            end = deadline if now < deadline else hard
            with anyio.move_on_after(min(end - now, self.settings.progress_interval_seconds)):
                await self.follower.changed(task_id).wait()

    async def cancel(self, task_id: str, owner: str = "") -> TaskView:
        record = self.record(task_id, owner)
        if not Phase(record.phase).terminal:
            with anyio.move_on_after(self.settings.wait_cap_seconds):
                await self.follower.cancel(record)
        return self.view(task_id, owner)

    def list(self, limit: int, status: str | None, owner: str = "") -> tuple[list[TaskView], int]:
        records, total = self.ledger.list(limit=limit, status=status, owner=owner)
        return [task_view(r, self.providers.capabilities(r.provider)) for r in records], total
