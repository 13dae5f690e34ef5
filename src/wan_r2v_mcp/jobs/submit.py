"""Submitting a task: its intent recorded and admitted before anything leaves the machine, then its references
uploaded, then the one create sent and its answer stored under a shield."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import anyio

from ..errors import ProviderError, R2VError, SubmitFailed, SubmitUnknown, UploadFailed
from ..providers.base import HostJob, Provider, Route
from ..store import Spend, Store
from .lifecycle import CANCEL_NOT_YET_SENT, Lifecycle, Phase, host_says
from .quote import Quote, remote_addresses
from .worker import Signals, Worker

log = logging.getLogger(__name__)

UPLOAD_ATTEMPTS = 3
# How long a stopping server lets submits in flight reach the host: a request answered before its create went out
# (wait_seconds=0) then still makes its job when the client leaves at once, and the next server follows it.
SEND_GRACE_SECONDS = 10.0


def new_task_id() -> str:
    return f"r2v_{secrets.token_urlsafe(12)}"


class Submitter:
    def __init__(self, ledger: Store, lifecycle: Lifecycle, worker: Worker):
        self.ledger = ledger
        self.lifecycle = lifecycle
        self.worker = worker
        self.signals: Signals = worker.signals
        self._sending = 0
        self._all_sent = anyio.Event()
        self._all_sent.set()
        self._turns: dict[str, anyio.Semaphore] = {}  # by host: its sends in flight (Capabilities.max_sends)

    def admit(self, q: Quote, owner: str, task_id: str, *, check: Callable[[Spend], None],
              duplicate_of: tuple[str, float] | None, sequence_id: str | None, shot: int | None) -> str | None:
        """Record the intent with the duplicate guard and the caps (`check`) in one transaction, and claim it; a take
        of a sequence's shot uses up that shot's reservation. Returns an identical earlier request's task id, if any
        (then the quote's files are closed)."""
        # Claimed before its row exists: on a shared store another replica's sweep would otherwise find it unclaimed
        # in between, take it up as a task whose submitter stopped before sending, and end it unsent.
        self.worker.claim(task_id)
        try:
            earlier = self.ledger.admit(owner=owner, check=check, duplicate_of=duplicate_of, sequence_id=sequence_id,
                                        shot=shot, task=dict(
                task_id=task_id, provider=q.provider.capabilities.name, phase=Phase.PENDING.value,
                status=Phase.PENDING.status, stage="recorded; uploading references" if any(
                    r.path is not None for r in q.intake.all_references) else "recorded; starting it",
                request=q.recorded_request(), refs=[v.model_dump(mode="json") for v in q.intake.views],
                cost_estimate=q.cost_estimate, billable_seconds=q.billable_seconds, owner=owner,
                fingerprint=q.fingerprint, key_from=q.key_from, sequence_id=sequence_id, model=q.model))
            if earlier is not None:
                self.worker.release(task_id)
                q.close()
                return earlier.task_id
        except BaseException:
            self.worker.release(task_id)
            q.close()
            raise
        return None

    async def send(self, q: Quote, task_id: str, owner: str) -> None:
        """Upload the references, then send the create (once). Closes the quote's files."""
        if self._sending == 0:
            self._all_sent = anyio.Event()
        self._sending += 1
        caps = q.provider.capabilities
        turn = self._turns.setdefault(caps.name, anyio.Semaphore(caps.max_sends))
        try:
            if turn.value == 0:
                self.lifecycle.note(task_id, Phase.PENDING, stage=f"recorded; waiting its turn to be sent ({caps.title} "
                                                                  f"is being sent {caps.max_sends} tasks at once)")
                self.signals.notify(task_id)
            async with turn:
                await self._send(q, task_id, owner)
        except Exception:  # the task's driver follows it next, from whatever phase this left it in
            log.exception("submitting %s failed", task_id)
        finally:
            q.close()
            self.signals.notify(task_id)
            self._sending -= 1
            if self._sending == 0:
                self._all_sent.set()

    async def all_sent(self) -> None:
        """Return once no submit of this server is in flight (each has sent its create, or ended before)."""
        await self._all_sent.wait()

    async def _send(self, q: Quote, task_id: str, owner: str) -> None:
        provider = q.provider
        urls = remote_addresses(q.intake)
        try:
            for ref in q.intake.all_references:
                if ref.path is None:
                    continue
                if not self.lifecycle.note(task_id, Phase.PENDING, stage=f"uploading {ref.label}"):
                    return  # canceled while uploading: nothing was created
                self.signals.notify(task_id)
                urls[ref.label] = await self._upload(provider, q.route, ref, owner)
            payload = provider.build_payload(q.request, q.intake, urls, q.route)
        except R2VError as exc:
            self.lifecycle.fail(task_id, exc, default_code=UploadFailed.code, only_from=frozenset({Phase.PENDING}))
            return
        # From here the host may make the job: the phase says so before the request leaves, and the answer is
        # stored under a shield, so neither a crash nor a cancelled call can lose a paid job's id.
        if not self.lifecycle.begin_create(task_id, payload, time.time()):
            return  # canceled before the create: nothing was sent
        self.signals.notify(task_id)
        await self.create(task_id, provider, q.route, payload)

    async def create(self, task_id: str, provider: Provider, route: Route, payload: dict[str, Any]) -> None:
        """Send the create (the phase already says it may reach the host) and store its answer, under a shield."""
        with anyio.CancelScope(shield=True):
            try:
                job = await provider.submit(payload, route)
            except SubmitUnknown as exc:
                self.lifecycle.answer_lost(task_id, exc.message)
                return
            except R2VError as exc:  # the host refused: no job was made
                self.lifecycle.fail(task_id, exc, default_code=SubmitFailed.code,
                                    only_from=frozenset({Phase.CREATING, Phase.CANCELING}))
                return
            self.adopt(task_id, provider, job, how="created")

    async def _upload(self, provider: Provider, route: Route, ref: Any, owner: str) -> str:
        for attempt in range(UPLOAD_ATTEMPTS):
            try:
                return await provider.upload(ref, route, scope=owner)  # a caller never reuses another's uploads
            except ProviderError as exc:
                if not exc.retryable or attempt == UPLOAD_ATTEMPTS - 1:
                    raise
                await anyio.sleep(self.worker.settings.time_scale * 2.0 * (attempt + 1))
        raise AssertionError("unreachable")

    def adopt(self, task_id: str, provider: Provider, job: HostJob, *, how: str) -> bool:
        """Store the host's id with the job's state; a task being canceled stays so (its follower cancels it)."""
        to, values = host_says(job)
        name = provider.capabilities.name
        stage = job.stage if how == "created" else f"found at the host after a lost answer; {job.stage}"
        ok = self.lifecycle.adopt(task_id, name, job.provider_task_id, to, stage=stage, candidates=None, **values)
        if not ok:
            ok = self.lifecycle.adopt(task_id, name, job.provider_task_id, Phase.CANCELING,
                                      stage=CANCEL_NOT_YET_SENT,
                                      candidates=None, **{k: v for k, v in values.items() if k != "error"})
        self.signals.notify(task_id)
        return ok
