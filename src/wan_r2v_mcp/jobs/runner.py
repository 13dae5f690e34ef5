"""The runner: the only place that decides when to submit, poll, wait, cancel and download.

Order of a generation: the task row is written (intent) before anything leaves the machine; local
references are uploaded; the create is sent once, inside a cancel shield, and the host's id is stored
at once. One watcher per unfinished task polls the host with backoff and wakes every waiter, so ten
callers waiting on one task cause one poll loop. On start, unfinished tasks are taken up again.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..config import Settings
from ..errors import (
    BudgetError,
    InputError,
    InputErrors,
    NotFoundError,
    ProviderError,
    R2VError,
    clean_remote_text,
)
from ..providers import available, provider_class
from ..providers.base import HostJob, Provider
from ..references.folders import Folders
from ..references.intake import Intake, admit
from ..schema import TERMINAL, GenerateArgs, R2VRequest, TaskError, TaskView
from . import cost, prices, results
from .fingerprint import fingerprint
from .ledger import Ledger, TaskRecord
from .views import task_view

log = logging.getLogger(__name__)

ProgressReport = Callable[[float, float | None, str], Awaitable[None]]
TYPICAL_RUN_SECONDS = 180.0  # hosts report no progress; Wan 2.7 typically takes 1-5 min

# Stages that say how far a submission got: recovery after a crash depends on them.
STAGE_CREATING = "creating the job"  # the create may have reached the host
STAGE_UNKNOWN = "submission outcome unknown; looking for the job at the host"
LEASE_SECONDS = 60.0  # a follower renews its claim at every poll (at most 15 s apart)
SUBMIT_LEASE_SECONDS = 900.0  # uploads of large references can take minutes


def _holder_is_dead(holder: str) -> bool:
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


class Pacer:
    """Spaces out the calls to one host so that many watchers stay within its rate limit."""

    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second
        self._next = 0.0
        self._lock = anyio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            await anyio.sleep(delay)


@dataclass
class Prepared:
    request: R2VRequest
    provider: Provider
    intake: Intake
    billable_seconds: float
    cost_estimate: float | None
    fingerprint: str


class Runner:
    def __init__(self, settings: Settings, ledger: Ledger, task_group: TaskGroup):
        self.settings = settings
        self.ledger = ledger
        self._tg = task_group
        self._providers: dict[str, Provider] = {}
        self._watching: set[str] = set()
        self._submitting: set[str] = set()
        self._changed: dict[str, anyio.Event] = {}
        self._pacers: dict[str, Pacer] = {}
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    # ------------------------------------------------------------------ lifecycle

    def resume_unfinished(self) -> int:
        """Take up every unfinished task again, and clear downloads a previous process left half done."""
        folder = self.settings.videos_dir
        for part in folder.glob(".r2v_*.part"):
            part.unlink(missing_ok=True)
        pending = self.ledger.unfinished()
        for record in pending:
            self._watch(record.task_id)
        return len(pending)

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()

    def provider(self, name: str) -> Provider:
        if name not in self._providers:
            if name not in available():
                raise InputError(f"\"{name}\" is not a provider of this server", field="provider",
                                 limit=f"one of {', '.join(available())}",
                                 fix="leave provider out for the configured default, or pick one of those")
            cls = provider_class(name)
            key_env = cls.capabilities.key_env
            if key_env and not self.settings.api_key(name):
                raise InputError(f"{cls.capabilities.title} needs an API key and {key_env} is not set",
                                 field="provider", fix=f"set {key_env} in the server's environment, or try "
                                 "provider=\"preview\" for a free offline draft")
            self._providers[name] = cls(self.settings)
        return self._providers[name]

    # ------------------------------------------------------------------ generate

    def prepare(self, args: GenerateArgs, folders: Folders) -> Prepared:
        """Every check that needs no network; raises InputErrors naming all problems at once."""
        request = args.request()
        try:
            provider = self.provider(args.provider or self.settings.default_provider)
        except InputError as exc:
            raise InputErrors([exc]) from None
        intake = admit(request, request.prompt, self.settings.ledger_path.parent, folders,
                       extra=provider.refusals(request))
        videos = [r.media.duration_seconds if r.media else None for r in intake.references if r.role == "reference_video"]
        seconds = cost.billable_seconds(videos, request.duration)
        rate = prices.price_per_second(provider.capabilities.name, request.resolution, self.settings.prices)
        estimate = cost.estimate_usd(rate, seconds)
        self._check_budget(estimate)
        return Prepared(request, provider, intake, seconds, estimate,
                        fingerprint(provider.capabilities.name, request, intake))

    def _check_budget(self, estimate: float | None) -> None:
        per_task, per_day = self.settings.max_cost_per_task_usd, self.settings.max_cost_per_day_usd
        if estimate is None or (per_task is None and per_day is None):
            return
        if per_task is not None and estimate > per_task:
            raise InputErrors([BudgetError(
                f"the estimated cost ${estimate:.2f} is over the per-task cap", limit=f"${per_task:.2f} per task "
                "(WAN_R2V_MAX_COST_PER_TASK)", fix="ask for fewer seconds or 720p, or raise the cap")])
        if per_day is not None:
            spent = self.ledger.spent_since(time.time() - 86400)
            if spent + estimate > per_day:
                raise InputErrors([BudgetError(
                    f"the estimated cost ${estimate:.2f} would bring the last 24 hours to ${spent + estimate:.2f}",
                    limit=f"${per_day:.2f} per day (WAN_R2V_MAX_COST_PER_DAY)",
                    fix="wait until earlier tasks fall out of the 24-hour window, or raise the cap")])

    def find_duplicate(self, prep: Prepared, owner: str = "") -> TaskView | None:
        """The task an identical request made, while it runs or shortly after it succeeded."""
        record = self.ledger.find_duplicate(prep.fingerprint, owner, time.time() - self.settings.duplicate_window_seconds)
        if record is None:
            return None
        view = self.view(record.task_id, owner)
        return view.model_copy(update={"duplicate": True})

    def dry_run(self, prep: Prepared) -> TaskView:
        urls = _remote_addresses(prep.intake)
        urls.update({r.label: prep.provider.describe(r) for r in prep.intake.all_references if r.path is not None})
        payload = prep.provider.build_payload(prep.request, prep.intake, urls)
        now = time.time()
        record = TaskRecord(
            task_id="dry-run", created_at=now, updated_at=now, finished_at=None,
            provider=prep.provider.capabilities.name, provider_task_id=None, status="queued",
            stage="dry run: nothing submitted", progress=None, request=prep.request.model_dump(mode="json"),
            refs=[v.model_dump(mode="json") for v in prep.intake.views], payload=payload, fingerprint=None,
            video_url=None, video_url_expires_at=None, local_path=None, poster_path=None, sidecar_path=None,
            cost_estimate=prep.cost_estimate, billable_seconds=prep.billable_seconds, error=None, owner="",
        )
        view = task_view(record, prep.provider.capabilities)
        return view.model_copy(update={"dry_run": True, "payload": payload, "next_check_seconds": None})

    async def submit(self, prep: Prepared, owner: str = "") -> str:
        caps = prep.provider.capabilities
        task_id = f"r2v_{secrets.token_urlsafe(12)}"
        self.ledger.insert(
            task_id=task_id, provider=caps.name, status="queued", stage="submitting",
            request=prep.request.model_dump(mode="json"), refs=[v.model_dump(mode="json") for v in prep.intake.views],
            cost_estimate=prep.cost_estimate, billable_seconds=prep.billable_seconds, owner=owner,
            fingerprint=prep.fingerprint,
        )
        self.ledger.take_lease(task_id, self._holder, SUBMIT_LEASE_SECONDS, _holder_is_dead)
        self._submitting.add(task_id)
        try:
            return await self._submit(prep, task_id)
        finally:
            self._submitting.discard(task_id)
            if task_id not in self._watching:  # refused or failed: nobody follows it
                self.ledger.release_lease(task_id, self._holder)

    async def _submit(self, prep: Prepared, task_id: str) -> str:
        try:
            urls = _remote_addresses(prep.intake)
            for ref in prep.intake.all_references:
                if ref.path is not None:
                    self.ledger.update(task_id, stage=f"uploading {ref.label}")
                    urls[ref.label] = await prep.provider.upload(ref)
            payload = prep.provider.build_payload(prep.request, prep.intake, urls)
            self.ledger.update(task_id, payload=payload, stage=STAGE_CREATING)
        except R2VError as exc:
            self._fail(task_id, exc, "upload_failed")
            return task_id
        except BaseException:
            with anyio.CancelScope(shield=True):
                self.ledger.update(task_id, status="canceled", stage="canceled before submission",
                                   finished_at=time.time())
            raise
        # The create is sent once; cancelling this call must not orphan a paid job whose id we never stored.
        with anyio.CancelScope(shield=True):
            try:
                job = await prep.provider.submit(payload)
            except R2VError as exc:
                if exc.code == "submit_unknown":  # sent, but no answer: look for it rather than send it again
                    self.ledger.update(task_id, stage=STAGE_UNKNOWN)
                    self._submitting.discard(task_id)
                    self._watch(task_id)
                else:
                    self._fail(task_id, exc, "submit_failed")
                return task_id
            self._record(task_id, job)
        if job.status not in TERMINAL:
            self._watch(task_id)
        return task_id

    def _fail(self, task_id: str, exc: R2VError, default_code: str) -> None:
        code = exc.code if exc.code not in ("error", "provider_error") else default_code
        message = exc.message
        if isinstance(exc, ProviderError) and exc.host_message:
            message += f" (host said: {exc.host_message})"
        error = TaskError(code=code, message=clean_remote_text(message), hint=exc.fix or "see the message")
        self.ledger.update(task_id, status="failed", stage="failed", error=error.model_dump(), finished_at=time.time())
        self._notify(task_id)

    def _record(self, task_id: str, job: HostJob) -> None:
        values: dict[str, Any] = {"provider_task_id": job.provider_task_id, "status": job.status,
                                  "stage": job.stage, "progress": job.progress}
        if job.status == "succeeded":  # not final until the video is on disk
            values.update(status="running", stage="downloading the result")
        if job.video_url:
            values.update(video_url=job.video_url, video_url_expires_at=job.video_url_expires_at)
        if job.billable_seconds is not None:
            values["billable_seconds"] = job.billable_seconds
        if job.error is not None:
            values["error"] = job.error.model_dump()
        if job.status in ("failed", "canceled"):
            values["finished_at"] = time.time()
        self.ledger.update(task_id, only_if_status=("queued", "running"), **values)
        self._notify(task_id)

    # ------------------------------------------------------------------ watching

    def _notify(self, task_id: str) -> None:
        event = self._changed.pop(task_id, None)
        if event is not None:
            event.set()

    def _event(self, task_id: str) -> anyio.Event:
        return self._changed.setdefault(task_id, anyio.Event())

    def _watch(self, task_id: str) -> None:
        if task_id not in self._watching:
            self._watching.add(task_id)
            self._tg.start_soon(self._watch_loop, task_id)

    async def _watch_loop(self, task_id: str) -> None:
        try:
            await self._follow(task_id)
        except Exception:
            log.exception("watching %s failed", task_id)
        finally:
            self._watching.discard(task_id)
            if task_id not in self._submitting:
                self.ledger.release_lease(task_id, self._holder)
            self._notify(task_id)

    async def _follow(self, task_id: str) -> None:
        record = self.ledger.get(task_id)
        if record is None:
            return
        try:
            provider = self.provider(record.provider)
        except InputError as exc:  # e.g. the key was removed since this task was submitted
            self._fail(task_id, exc, "provider_unavailable")
            return
        caps = provider.capabilities
        delay = caps.poll_initial_seconds
        transient_failures = 0
        while True:
            record = self.ledger.get(task_id)
            if record is None or record.status in TERMINAL:
                return
            if task_id in self._submitting:
                return  # this process is still submitting it; submit() starts the watcher when done
            held_elsewhere = self.ledger.take_lease(task_id, self._holder, LEASE_SECONDS, _holder_is_dead)
            if held_elsewhere:  # another server on this ledger follows it; its updates reach our waiters
                await anyio.sleep(min(held_elsewhere, self.settings.progress_interval_seconds))
                self._notify(task_id)
                continue
            if record.provider_task_id is None:
                if not await self._reconcile(record, provider):
                    return
                continue
            try:
                await self._pace(provider)
                job = await provider.poll(record)
                transient_failures = 0
            except ProviderError as exc:
                if not exc.retryable:
                    self._fail(task_id, exc, "poll_failed")
                    return
                transient_failures += 1
                log.warning("polling %s: %s (attempt %d)", task_id, exc.message, transient_failures)
                await anyio.sleep(min(delay * (2 ** transient_failures), caps.poll_max_seconds * 4))
                continue
            if job.status == "succeeded":
                await self._finish(record, provider, job)
                return
            self._record(task_id, job)
            if job.status in TERMINAL:
                return
            await anyio.sleep(delay)
            delay = min(delay * 1.5, caps.poll_max_seconds)

    async def _pace(self, provider: Provider) -> None:
        caps = provider.capabilities
        if caps.name not in self._pacers:
            self._pacers[caps.name] = Pacer(caps.max_polls_per_second)
        await self._pacers[caps.name].wait()

    async def _reconcile(self, record: TaskRecord, provider: Provider) -> bool:
        """A task with no host id: find the job the host may have made, never create another. True if found."""
        task_id = record.task_id
        if record.stage not in (STAGE_CREATING, STAGE_UNKNOWN):
            self._fail(task_id, R2VError("the server stopped before this task was submitted; nothing was sent or "
                                         "paid", fix="generate again"), "interrupted")
            return False
        self.ledger.update(task_id, stage=STAGE_UNKNOWN)
        known = self.ledger.provider_ids(record.provider)
        candidates: list[str] | None = None
        for attempt in range(3):  # a host's task list can lag its create by a few seconds
            try:
                candidates = await provider.find_submitted(record, since=record.created_at - 60, exclude=known)
            except ProviderError as exc:
                log.warning("looking for %s at %s: %s", task_id, record.provider, exc.message)
                candidates = []
            if candidates is None or candidates:
                break
            await anyio.sleep(2.0 * (attempt + 1))
        if candidates and len(candidates) == 1:
            self.ledger.update(task_id, provider_task_id=candidates[0], stage="found at the host after an interruption")
            self._notify(task_id)
            return True
        hint = "it was not sent again; "
        if candidates is None:
            hint += f"{provider.capabilities.title} cannot list its jobs, so check its console before generating again"
        elif not candidates:
            hint += "no job appeared at the host, so most likely nothing was created; generate again"
        else:
            hint += f"the host shows several possible jobs ({', '.join(candidates[:5])}); check its console"
        self._fail(task_id, R2VError("the create request may or may not have reached the host", fix=hint),
                   "submit_unknown")
        return False

    async def _finish(self, record: TaskRecord, provider: Provider, job: HostJob) -> None:
        task_id = record.task_id
        self.ledger.take_lease(task_id, self._holder, SUBMIT_LEASE_SECONDS, _holder_is_dead)  # cover the download
        self._record(task_id, job)
        folder = self.settings.videos_dir
        try:
            video, poster = await results.save(task_id, folder, lambda part: provider.download(job, part))
        except R2VError as exc:
            self._fail(task_id, exc, "download_failed")
            return
        finished = time.time()
        record = self.ledger.get(task_id) or record
        sidecar = results.write_sidecar(folder, record, {
            "status": "succeeded",
            "finished_at": results.iso(finished),
            "video": video.name,
            "poster": poster.name if poster else None,
            "video_url": None if provider.capabilities.local else job.video_url,
            "billable_seconds": job.billable_seconds if job.billable_seconds is not None else record.billable_seconds,
            "cost_estimate_usd": record.cost_estimate,
            "payload": record.payload,
        })
        self.ledger.update(task_id, status="succeeded", stage="saved", progress=1.0, finished_at=finished,
                           local_path=str(video), poster_path=str(poster) if poster else None,
                           sidecar_path=str(sidecar))
        self._notify(task_id)

    # ------------------------------------------------------------------ the tools' verbs

    def record(self, task_id: str, owner: str = "") -> TaskRecord:
        record = self.ledger.get(task_id)
        if record is None or record.owner != owner:
            raise NotFoundError(f"no task \"{task_id}\"", field="task_id",
                                fix="use a task_id returned by generate_r2v; list_tasks shows recent ones")
        return record

    def view(self, task_id: str, owner: str = "") -> TaskView:
        record = self.record(task_id, owner)
        caps = provider_class(record.provider).capabilities if record.provider in available() else None
        return task_view(record, caps)

    async def wait(self, task_id: str, seconds: float, report: ProgressReport | None, owner: str = "") -> TaskView:
        """Wait up to `seconds` (capped) for the task to end, reporting at each change and every few seconds."""
        record = self.record(task_id, owner)
        if record.status not in TERMINAL:
            self._watch(task_id)
        seconds = max(0.0, min(seconds, self.settings.wait_cap_seconds))
        start = time.monotonic()
        deadline = start + seconds
        last_progress = -1.0
        while True:
            view = self.view(task_id, owner)
            now = time.monotonic()
            if view.status in TERMINAL or now >= deadline:
                return view
            if report is not None:
                elapsed = now - start
                since = time.time() - _parse_ts(view.created_at)
                fraction = view.progress if view.progress is not None else min(0.95, since / TYPICAL_RUN_SECONDS)
                value = max(round(fraction * 100, 1), last_progress + 0.1)
                last_progress = value
                estimate = "" if view.progress is not None else " (estimated)"
                await report(value, 100.0, f"{view.status}: {view.stage}; {math.floor(fraction * 100)}%{estimate}, "
                                           f"waited {elapsed:.0f}s of {seconds:.0f}s")
            with anyio.move_on_after(min(deadline - now, self.settings.progress_interval_seconds)):
                await self._event(task_id).wait()

    async def cancel(self, task_id: str, owner: str = "") -> TaskView:
        record = self.record(task_id, owner)
        if record.status in TERMINAL:
            return self.view(task_id, owner)
        provider = self.provider(record.provider)
        if record.provider_task_id is not None:
            job = await provider.cancel(record)
            if job is not None and job.status not in ("canceled",):
                self._record(task_id, job)
                return self.view(task_id, owner)
        self.ledger.update(task_id, only_if_status=("queued", "running"), status="canceled", stage="canceled",
                           finished_at=time.time())
        self._notify(task_id)
        return self.view(task_id, owner)

    def list(self, limit: int, status: str | None, owner: str = "") -> tuple[list[TaskView], int]:
        records, total = self.ledger.list(limit=limit, status=status, owner=owner)
        views = []
        for record in records:
            caps = provider_class(record.provider).capabilities if record.provider in available() else None
            views.append(task_view(record, caps))
        return views, total


def _remote_addresses(intake: Intake) -> dict[str, str]:
    """References given as https URLs go to the host as they are."""
    return {r.label: r.source.url for r in intake.all_references if r.source is not None and r.source.url}


def _parse_ts(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()

