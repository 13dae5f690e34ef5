"""Following a task from its intent to its video on disk: submit, watch, lease, pace, reconcile, download.

This is the only code that changes a task's phase (through `Lifecycle`). One watcher per unfinished task
runs in the server's task group, so a tool call never waits on a host: it waits on the ledger, bounded
by the wait cap. A watcher that dies is started again; a sweep takes up any unfinished task that nobody
follows (a crash, a server that shared this ledger and stopped).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..config import Settings
from ..errors import (
    FollowingFailed,
    HostAnswerMalformed,
    InputError,
    Interrupted,
    NotCreated,
    PollFailed,
    ProviderError,
    ProviderUnavailable,
    R2VError,
    ResultExpired,
    SubmitFailed,
    SubmitUnknown,
    UploadFailed,
)
from ..providers.base import HostCandidate, HostJob, JobRef, Provider
from ..providers.registry import ProviderRegistry
from ..schema import PIXEL_SIZES
from ..store import Spend, Store, TaskRecord
from . import reconcile, results
from .lifecycle import AT_HOST, Lifecycle, Phase
from .quote import Quote, remote_addresses

log = logging.getLogger(__name__)

LEASE_SECONDS = 60.0  # a claim lasts this long; the keeper renews every claim of this process 4 times as often
SWEEP_SECONDS = 20.0  # how often unfinished tasks that nobody follows are looked for
RECONCILE_GIVE_UP = 6 * 3600.0  # a create's fate still undecided after this long is reported, with the candidates
UPLOAD_ATTEMPTS = 3
MAX_CREATES = 2  # a create proven (by the host's job list) to have made nothing is sent once more
RESTARTS = 5  # a watcher or driver that failed unexpectedly this many times in a row ends its work with the error


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


async def until_done(work: Callable[[], Awaitable[None]], what: str, time_scale: float,
                     give_up: Callable[[Exception], None]) -> None:
    """Run `work` to its end; a bug or an unexpected answer is logged and it starts again after a growing pause. After
    `RESTARTS` such failures `give_up` ends the work with a true error, so no watcher or driver runs forever."""
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


class Pacer:
    """Spaces out the calls to one host so that all watchers together stay within its rate limit."""

    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second
        self._next = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval  # reserved before sleeping: no lock needed on one event loop
        if slot > now:
            await anyio.sleep(slot - now)


class Follower:
    def __init__(self, settings: Settings, ledger: Store, providers: ProviderRegistry, task_group: TaskGroup):
        self.settings = settings
        self.ledger = ledger
        self.lifecycle = Lifecycle(ledger)
        self.providers = providers
        self._tg = task_group
        self._watching: set[str] = set()
        self._submitting: set[str] = set()
        self._changed: dict[str, anyio.Event] = {}
        self._pacers: dict[str, Pacer] = {}
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._wake: dict[str, anyio.Event] = {}  # a watcher's nap, cut short when a sweep sees its job end
        self._swept: dict[str, dict[str, tuple[str, float]]] = {}  # provider -> host job id -> (task id, sent at)
        self._shown_prompts: dict[str, dict[str, str]] = {}  # by provider, the prompts hosts showed for their jobs
        # By provider: when its job list was last read whole, and the followed jobs it showed unfinished then.
        self._listed: dict[str, tuple[float, frozenset[str]]] = {}
        self.late_renewals = 0  # renewals that found a claim already past its end (bench/ reports it)
        self.listeners: list[Any] = []  # called with a task id whenever that task changes (the sequencer's shots)

    def _scaled(self, seconds: float) -> float:
        return seconds * self.settings.time_scale

    # ------------------------------------------------------------------ start and stop

    def start(self) -> int:
        """Take up every unfinished task, and keep leases and the sweep going in the background."""
        pending = self.ledger.unfinished()
        for record in pending:
            self.watch(record.task_id)
        self._tg.start_soon(self._keep_leases)
        return len(pending)

    async def _keep_leases(self) -> None:
        """Renew this process's claims on a clock of their own, never held up by polling; sweep for orphans."""
        next_sweep = time.monotonic() + self._scaled(SWEEP_SECONDS)
        renewed_at = time.time()
        while True:
            await anyio.sleep(LEASE_SECONDS / 4)
            now = time.time()
            if now - renewed_at > LEASE_SECONDS:
                self.late_renewals += 1
            renewed_at = now
            try:
                await anyio.to_thread.run_sync(self.ledger.renew_leases, self.holder, LEASE_SECONDS)
            except Exception:  # a locked or busy ledger: try again at the next beat
                log.exception("renewing leases failed")
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + self._scaled(SWEEP_SECONDS)
                for record in self.ledger.unfinished():
                    if record.task_id not in self._watching:
                        self.watch(record.task_id)

    # ------------------------------------------------------------------ waking waiters

    def changed(self, task_id: str) -> anyio.Event:
        return self._changed.setdefault(task_id, anyio.Event())

    def _notify(self, task_id: str) -> None:
        event = self._changed.pop(task_id, None)
        if event is not None:
            event.set()
        for listener in self.listeners:
            listener(task_id)

    # ------------------------------------------------------------------ submitting

    @staticmethod
    def new_task_id() -> str:
        return f"r2v_{secrets.token_urlsafe(12)}"

    def submit(self, q: Quote, owner: str, task_id: str | None = None, *, check: Callable[[Spend], None],
               duplicate_of: tuple[str, float] | None = None, sequence_id: str | None = None,
               shot: int | None = None) -> tuple[str, bool]:
        """Admit and record the intent (before anything leaves the machine), then submit in the background. The
        duplicate guard and the caps (`check`) are decided with the insert in one transaction; a take of a sequence's
        shot uses up that shot's reservation. Returns the task id (`task_id` when the caller chose it beforehand, as
        a sequence does) and whether it is an identical earlier request's task instead. Takes ownership of the
        quote's files."""
        task_id = task_id or self.new_task_id()
        try:
            earlier = self.ledger.admit(owner=owner, check=check, duplicate_of=duplicate_of, sequence_id=sequence_id,
                                        shot=shot, task=dict(
                task_id=task_id, provider=q.provider.capabilities.name, phase=Phase.PENDING.value,
                status=Phase.PENDING.status, stage="recorded; uploading references",
                request=q.recorded_request(), refs=[v.model_dump(mode="json") for v in q.intake.views],
                cost_estimate=q.cost_estimate, billable_seconds=q.billable_seconds, owner=owner,
                fingerprint=q.fingerprint, key_from=q.key_from, sequence_id=sequence_id, model=q.model))
            if earlier is not None:
                q.close()
                return earlier.task_id, True
            self.ledger.take_lease(task_id, self.holder, LEASE_SECONDS, _holder_is_dead)
        except BaseException:
            q.close()
            raise
        self._submitting.add(task_id)
        self._watching.add(task_id)
        self._tg.start_soon(self._submit_then_follow, q, task_id, owner)
        return task_id, False

    async def _submit_then_follow(self, q: Quote, task_id: str, owner: str) -> None:
        try:
            try:
                await self._submit(q, task_id, owner)
            finally:
                q.close()
                self._submitting.discard(task_id)
        except Exception:
            log.exception("submitting %s failed", task_id)
        finally:
            self._watching.discard(task_id)
            self._notify(task_id)
        self.watch(task_id)

    async def _submit(self, q: Quote, task_id: str, owner: str) -> None:
        provider = q.provider
        urls = remote_addresses(q.intake)
        try:
            for ref in q.intake.all_references:
                if ref.path is None:
                    continue
                if not self.lifecycle.note(task_id, Phase.PENDING, stage=f"uploading {ref.label}"):
                    return  # canceled while uploading: nothing was created
                self._notify(task_id)
                urls[ref.label] = await self._upload(provider, ref, owner)
            payload = provider.build_payload(q.request, q.intake, urls)
        except R2VError as exc:
            self.lifecycle.fail(task_id, exc, default_code=UploadFailed.code, only_from=frozenset({Phase.PENDING}))
            return
        # From here the host may make the job: the phase says so before the request leaves, and the answer is
        # stored under a shield, so neither a crash nor a cancelled call can lose a paid job's id.
        if not self.lifecycle.begin_create(task_id, payload, time.time()):
            return  # canceled before the create: nothing was sent
        self._notify(task_id)
        await self._create(task_id, provider, payload)

    async def _create(self, task_id: str, provider: Provider, payload: dict[str, Any]) -> None:
        """Send the create (the phase already says it may reach the host) and store its answer, under a shield."""
        with anyio.CancelScope(shield=True):
            try:
                job = await provider.submit(payload)
            except SubmitUnknown as exc:
                self.lifecycle.answer_lost(task_id, exc.message)
                return
            except R2VError as exc:  # the host refused: no job was made
                self.lifecycle.fail(task_id, exc, default_code=SubmitFailed.code,
                                    only_from=frozenset({Phase.CREATING, Phase.CANCELING}))
                return
            self._adopt(task_id, provider, job, how="created")

    async def _upload(self, provider: Provider, ref: Any, owner: str) -> str:
        for attempt in range(UPLOAD_ATTEMPTS):
            try:
                return await provider.upload(ref, scope=owner)  # a caller never reuses another's uploads
            except ProviderError as exc:
                if not exc.retryable or attempt == UPLOAD_ATTEMPTS - 1:
                    raise
                await anyio.sleep(self._scaled(2.0 * (attempt + 1)))
        raise AssertionError("unreachable")

    def _adopt(self, task_id: str, provider: Provider, job: HostJob, *, how: str) -> bool:
        """Store the host's id with the job's state; a task being canceled stays so (its follower cancels it)."""
        to, values = self._phase_of(job)
        name = provider.capabilities.name
        stage = job.stage if how == "created" else f"found at the host after a lost answer; {job.stage}"
        ok = self.lifecycle.adopt(task_id, name, job.provider_task_id, to, stage=stage, candidates=None, **values)
        if not ok:
            ok = self.lifecycle.adopt(task_id, name, job.provider_task_id, Phase.CANCELING,
                                      stage="cancel requested; the job is being canceled at the host",
                                      candidates=None, **{k: v for k, v in values.items() if k != "error"})
        self._notify(task_id)
        return ok

    # ------------------------------------------------------------------ watching

    def watch(self, task_id: str) -> None:
        if task_id not in self._watching:
            self._watching.add(task_id)
            self._tg.start_soon(self._watch_loop, task_id)

    async def _watch_loop(self, task_id: str) -> None:
        try:
            await until_done(lambda: self._follow(task_id), f"following {task_id}", self.settings.time_scale,
                             lambda exc: self._give_up(task_id, exc))
        finally:
            self._watching.discard(task_id)
            self._wake.pop(task_id, None)
            for swept in self._swept.values():
                for job_id, (followed, _) in list(swept.items()):
                    if followed == task_id:
                        del swept[job_id]
            if task_id not in self._submitting:
                self.ledger.release_lease(task_id, self.holder)
            self._notify(task_id)

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
        last_poll = time.monotonic()  # the create's answer (or the last poll) said how the job stands
        state: dict[str, Any] = {}  # reconciliation's memory between rounds
        transient = 0
        while True:
            record = self.ledger.get(task_id)
            if record is None or Phase(record.phase).terminal or task_id in self._submitting:
                return
            held = self.ledger.take_lease(task_id, self.holder, LEASE_SECONDS, _holder_is_dead)
            if held:  # another server on this ledger follows it; its writes reach our waiters through the ledger
                await anyio.sleep(min(held, self.settings.progress_interval_seconds))
                self._notify(task_id)
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
                    wait = await self._reconcile(record, provider, state)
                    if wait is not None:
                        await anyio.sleep(wait)
                elif phase is Phase.DOWNLOADING:
                    await self._download(record, provider)
                elif caps.sweep_seconds and not poll_now and phase is not Phase.CANCELING:
                    # The sweep reads the host's job list and wakes this watcher when the list shows the job ended.
                    # The list only speeds this up: each nap lasts one of the host's documented poll intervals, and
                    # the job is polled after it unless the list's last good reading showed the job unfinished
                    # (then it waits for the list, or for the safety interval). A list that is forbidden, failing,
                    # garbled or silent about the job so leaves it polled at the host's own pace.
                    self._sweep(provider, task_id, record.provider_task_id, record.submitted_at or record.created_at)
                    woken = await self._nap(task_id, self._scaled(caps.poll_max_seconds))
                    poll_now = woken or not self._vouched(caps, record.provider_task_id) or \
                        time.monotonic() - last_poll >= self._scaled(caps.sweep_safety_seconds)
                else:
                    poll_now = False
                    last_poll = time.monotonic()
                    await self._pace(provider)
                    job = await provider.poll(JobRef(record.provider_task_id, record.payload))
                    if phase is Phase.CANCELING and job.status in ("queued", "running") and not caps.cancel_is_request:
                        job = await provider.cancel(JobRef(record.provider_task_id, record.payload)) or job
                    self.apply(task_id, job)
                    if job.status in ("queued", "running") and not (caps.sweep_seconds and phase is not Phase.CANCELING):
                        await self._nap(task_id, self._scaled(delay))
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

    async def _nap(self, task_id: str, seconds: float) -> bool:
        """Sleep up to `seconds`; True when a sweep woke this watcher because the host's list shows its job ended."""
        event = self._wake.setdefault(task_id, anyio.Event())
        with anyio.move_on_after(seconds):
            await event.wait()
        if event.is_set():
            self._wake.pop(task_id, None)
            return True
        return False

    def _vouched(self, caps: Any, job_id: str) -> bool:
        """Whether the host's job list, read whole and recently, showed this job still unfinished."""
        read_at, unfinished = self._listed.get(caps.name, (0.0, frozenset()))
        fresh = time.monotonic() - read_at <= self._scaled(2 * caps.sweep_seconds + caps.poll_max_seconds)
        return fresh and job_id in unfinished

    # ------------------------------------------------------------------ sweeping a host's job list

    def _sweep(self, provider: Provider, task_id: str, job_id: str, sent_at: float) -> None:
        name = provider.capabilities.name
        if name not in self._swept:
            self._swept[name] = {}
            self._tg.start_soon(self._sweep_loop, provider)
        self._swept[name][job_id] = (task_id, sent_at)

    async def _sweep_loop(self, provider: Provider) -> None:
        """One read of the host's job list (a page per 100 jobs) stands for a poll of every job this process follows
        there: a job the list shows ended wakes its watcher, which polls it once for the result."""
        caps = provider.capabilities
        swept = self._swept[caps.name]
        assert caps.sweep_seconds
        while True:
            await anyio.sleep(self._scaled(caps.sweep_seconds))
            if not swept:
                continue
            try:
                await self._sweep_once(provider, swept)
            except Exception as exc:  # forbidden, failing, garbled: the watchers poll at the host's pace meanwhile
                self._listed.pop(caps.name, None)
                message = exc.message if isinstance(exc, R2VError) else f"{type(exc).__name__}: {exc}"
                log.warning("sweeping %s's job list: %s", caps.title, message)

    async def _sweep_once(self, provider: Provider, swept: dict[str, tuple[str, float]]) -> None:
        caps = provider.capabilities
        now = time.time()
        since = max(min(sent for _, sent in swept.values()) - reconcile.CLOCK_SKEW, now - 23 * 3600)
        for _ in range(len(swept) // 100 + 1):
            await self._pace(provider)
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

    async def _pace(self, provider: Provider) -> None:
        caps = provider.capabilities
        if caps.name not in self._pacers:
            self._pacers[caps.name] = Pacer(caps.max_polls_per_second / self.settings.time_scale)
        await self._pacers[caps.name].wait()

    # ------------------------------------------------------------------ what the host says

    @staticmethod
    def _phase_of(job: HostJob) -> tuple[Phase, dict[str, Any]]:
        values: dict[str, Any] = {"progress": job.progress}
        if job.video_url:
            values.update(video_url=job.video_url, video_url_expires_at=job.video_url_expires_at)
        if job.billable_seconds is not None:
            values["billable_seconds"] = job.billable_seconds
        if job.error is not None:
            values["error"] = job.error.model_dump()
        to = {"queued": Phase.QUEUED, "running": Phase.RUNNING, "succeeded": Phase.DOWNLOADING,
              "failed": Phase.FAILED, "canceled": Phase.CANCELED}[job.status]
        return to, values

    def apply(self, task_id: str, job: HostJob) -> None:
        """Record what the host says of a followed job, as a guarded move."""
        to, values = self._phase_of(job)
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

    # ------------------------------------------------------------------ reconciliation

    async def _reconcile(self, record: TaskRecord, provider: Provider, state: dict[str, Any]) -> float | None:
        """A create whose answer was lost: adopt the job it made, on evidence only, or prove none was made. The
        host is asked here; what its answers mean is decided in `jobs.reconcile`. Returns how long to wait before
        the next round, or None when the task was decided."""
        task_id = record.task_id
        caps = provider.capabilities
        sent = record.submitted_at or record.created_at
        if time.time() - sent > self._scaled(RECONCILE_GIVE_UP):
            ids = ", ".join(record.candidates or []) or "none"
            self.lifecycle.fail(task_id, SubmitUnknown(
                "the create request may or may not have reached the host, and the host did not show which job is "
                "this task's", fix=f"it was not sent again; candidate jobs at {caps.title}: {ids}; check its console "
                "before generating again"))
            return None
        try:
            listed = await self._list_jobs(provider, sent)
        except ProviderError as exc:
            if exc.retryable:  # it may come back: the watcher asks again after a pause
                raise
            # Forbidden (a RAM or sub-workspace key) or refused for good: the job cannot be found, and may exist.
            self.lifecycle.fail(task_id, SubmitUnknown(
                f"the create request may or may not have reached the host, and its job list cannot be read "
                f"({exc.message})", fix=f"it was not sent again; look in {caps.title}'s console for a job made at "
                f"{results.iso(sent)} before generating again"))
            return None
        if listed is None:
            self.lifecycle.fail(task_id, SubmitUnknown(
                "the create request may or may not have reached the host",
                fix=f"it was not sent again; {caps.title} cannot list its jobs, so check its dashboard for a job "
                    "made at this task's created_at before generating again"))
            return None
        prompt = str((record.request or {}).get("prompt") or "")
        followed = self.ledger.followed(caps.name, [c.provider_task_id for c in listed])
        found = reconcile.candidates(listed, followed=followed, model=caps.model, sent=sent,
                                     deadline=self.settings.request_deadline_seconds)
        seen = self._shown_prompts.setdefault(caps.name, {})  # a job's prompt never changes: ask once per process
        if len(seen) > 10_000:  # bounded: forgetting only means asking the host again
            seen.clear()
        ended_unknown: set[str] = state.setdefault("ended_unknown", set())  # ended without showing a prompt
        undecided: list[str] = []
        for c in found:
            jid = c.provider_task_id
            shown = c.prompt if c.prompt is not None else seen.get(jid)
            job: HostJob | None = None
            if reconcile.ended_unseen(c, shown):
                ended_unknown.add(jid)
            elif reconcile.needs_a_look(c, shown, jid in ended_unknown):
                await self._pace(provider)
                try:
                    job = await provider.poll(JobRef(jid))
                except ProviderError as exc:  # a candidate the host will not show is no evidence either way
                    if exc.retryable:
                        raise
                    ended_unknown.add(jid)
                    continue
                shown = job.prompt
                if shown is None and job.status in ("failed", "canceled"):
                    ended_unknown.add(jid)
            if shown is not None:
                seen[jid] = shown
            verdict = reconcile.judge(shown, jid in ended_unknown, prompt)
            if verdict == "undecided":
                undecided.append(jid)
            if verdict != "ours":
                continue  # watched, ended unseen, or someone else's job on the same key
            if job is None:
                await self._pace(provider)
                job = await provider.poll(JobRef(jid))
            if self._adopt(task_id, provider, job, how="found"):
                return None
        state["empty"] = state.get("empty", 0) + (0 if undecided or ended_unknown else 1)
        decided = reconcile.conclude(undecided, ended_unknown, bool(found), state["empty"])
        if decided.action == "watch":  # jobs still running whose prompt the host does not show yet
            self.lifecycle.note(task_id, Phase(record.phase), candidates=list(decided.jobs),
                                stage=f"looking for the job at the host: watching {len(decided.jobs)} candidate "
                                      "job(s) until the host shows their prompts")
            return self._scaled(caps.poll_max_seconds)
        if decided.action == "ended":
            self.lifecycle.fail(task_id, SubmitUnknown(
                "the create request may or may not have reached the host; the jobs that could be this task's ended "
                f"without a result ({', '.join(decided.jobs)})", fix="nothing was delivered; check the host's "
                "console before generating again"))
            return None
        if decided.action == "none_made":
            why = decided.why
            if Phase(record.phase) is Phase.CANCELING:
                self.lifecycle.move(task_id, Phase.CANCELED, only_from=frozenset({Phase.CANCELING}),
                                    stage=f"canceled; the host's job list {why}, so nothing was created or paid")
            elif record.creates < MAX_CREATES and record.payload is not None and self.lifecycle.create_again(
                    task_id, time.time(), record.creates + 1):
                state.clear()  # the new create gets its own window and its own evidence
                self._notify(task_id)
                await self._create(task_id, provider, record.payload)
            else:
                self.lifecycle.fail(task_id, NotCreated(
                    f"the create request did not make a job: the host's job list {why}",
                    fix="nothing was created or paid; generate again"))
            return None
        self.lifecycle.note(task_id, Phase(record.phase), stage="looking for the job at the host")
        return self._scaled(10.0)

    async def _list_jobs(self, provider: Provider, sent: float) -> list[HostCandidate] | None:
        await self._pace(provider)
        since, until = reconcile.window(sent, self.settings.request_deadline_seconds)
        return await provider.find_submitted(since=since, until=until)

    # ------------------------------------------------------------------ downloading

    async def _download(self, record: TaskRecord, provider: Provider) -> None:
        """Save a paid result. What may pass (5xx, resets, truncation, timeouts, HTML) is tried again with backoff for
        as long as the host serves the result; a readable video is kept whatever its length or size (fetching it
        again cannot change those bytes), and only a result the host no longer serves ends the task without it."""
        task_id = record.task_id
        folder = self.settings.videos_dir
        for leftover in folder.glob(f".{task_id}.*.part"):  # a previous process's interrupted download
            leftover.unlink(missing_ok=True)
        job = HostJob(record.provider_task_id or "", "succeeded", record.stage, video_url=record.video_url,
                      video_url_expires_at=record.video_url_expires_at, billable_seconds=record.billable_seconds,
                      extra={"payload": record.payload})
        expires = record.video_url_expires_at or (record.updated_at + 3600)
        request = record.request or {}
        size = None if request.get("first_frame") else PIXEL_SIZES.get((request.get("resolution"),
                                                                         request.get("aspect_ratio")))
        attempt = 0
        while True:
            try:
                video, poster, facts = await results.save(task_id, folder, lambda part: provider.download(job, part),
                                                          float(request.get("duration") or 5), size)
                break
            except ProviderError as exc:
                attempt += 1
                wait = self._scaled(min(2.0 * 2 ** attempt, 60.0))
                if not exc.retryable:  # expired, refused: it cannot pass
                    self.lifecycle.fail(task_id, exc, only_from=frozenset({Phase.DOWNLOADING}))
                    return
                if time.time() + wait >= expires:
                    self.lifecycle.fail(task_id, ResultExpired(
                        f"the paid result could not be saved before the host's URL for it expired (the last try: "
                        f"{exc.message})", fix=f"generate again; the job was {record.provider_task_id} at "
                        f"{provider.capabilities.title}, whose console may still show it"),
                        only_from=frozenset({Phase.DOWNLOADING}))
                    return
                self.lifecycle.note(task_id, Phase.DOWNLOADING,
                                    stage=f"downloading the result: attempt {attempt} failed ({exc.message}); "
                                          f"trying again in {wait:.0f} s")
                self._notify(task_id)
                await anyio.sleep(wait)
        finished = time.time()
        record = self.ledger.get(task_id) or record
        sidecar = results.write_sidecar(folder, record, {
            "status": "succeeded",
            "finished_at": results.iso(finished),
            "video": video.name,
            "poster": poster.name if poster else None,
            "video_url": None if provider.capabilities.local else record.video_url,
            "output": facts,
            "billable_seconds": record.billable_seconds,
            "cost_estimate_usd": record.cost_estimate,
            "payload": record.payload,
        })
        self.lifecycle.move(task_id, Phase.SUCCEEDED, only_from=frozenset({Phase.DOWNLOADING}), stage="saved",
                            progress=1.0, finished_at=finished, local_path=str(video), output=facts,
                            poster_path=str(poster) if poster else None, sidecar_path=str(sidecar))

    # ------------------------------------------------------------------ cancelling

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
            self.lifecycle.move(task_id, Phase.CANCELING, only_from=frozenset({Phase.CREATING, Phase.UNKNOWN}),
                                stage="cancel requested; the job will be canceled at the host as soon as it is known")
            self._notify(task_id)
            self.watch(task_id)
            return
        provider = self._provider_of(record)
        job = await provider.cancel(JobRef(record.provider_task_id, record.payload))
        if job is not None:
            if job.status in ("queued", "running") and provider.capabilities.cancel_is_request:
                # Only a signal to a running job (fal): follow it until the host says it ended.
                self.lifecycle.move(task_id, Phase.CANCELING, only_from=frozenset({Phase.QUEUED, Phase.RUNNING}),
                                    stage=job.stage, progress=job.progress)
            else:  # canceled, finished, or a host that will not stop it (DashScope: queued jobs only)
                self.apply(task_id, job)
        self._notify(task_id)
        self.watch(task_id)

