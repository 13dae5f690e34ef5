"""Finding a lost create's job: adopt the job it made, on evidence only, or prove none was made and (once) send it
again. The host is asked here; what its answers mean is decided in `jobs.reconcile`, table-tested on its own."""

from __future__ import annotations

import time
from typing import Any

from ..config import Settings
from ..errors import NotCreated, ProviderError, SubmitUnknown
from ..providers.base import HostCandidate, HostJob, JobRef, Provider
from ..store import Store, TaskRecord
from . import reconcile, results
from .lifecycle import Lifecycle, Phase
from .pacing import Pacers, Turn
from .submit import Submitter

RECONCILE_GIVE_UP = 6 * 3600.0  # a create's fate still undecided after this long is reported, with the candidates
MAX_CREATES = 2  # a create proven (by the host's job list) to have made nothing is sent once more


class Finder:
    def __init__(self, settings: Settings, ledger: Store, lifecycle: Lifecycle, pacers: Pacers, submitter: Submitter):
        self.settings = settings
        self.ledger = ledger
        self.lifecycle = lifecycle
        self.pacers = pacers
        self.submitter = submitter
        self._shown_prompts: dict[str, dict[str, str]] = {}  # by provider, the prompts hosts showed for their jobs

    def _scaled(self, seconds: float) -> float:
        return seconds * self.settings.time_scale

    async def look(self, record: TaskRecord, provider: Provider, state: dict[str, Any]) -> float | None:
        """One round of looking (`state` is its memory between rounds). Returns how long to wait before the next
        round, or None when the task was decided."""
        task_id = record.task_id
        caps = provider.capabilities
        route = provider.route(record.model)
        sent = record.submitted_at or record.created_at
        if time.time() - sent > self._scaled(RECONCILE_GIVE_UP):
            ids = ", ".join(record.candidates or []) or "none"
            self.lifecycle.fail(task_id, SubmitUnknown(
                "the create request may or may not have reached the host, and the host did not show which job is "
                "this task's", fix=f"it was not sent again; candidate jobs at {caps.title}: {ids}; check its console "
                "before generating again"))
            return None
        try:
            listed = await self._list_jobs(provider, sent, route.host_model)
        except ProviderError as exc:
            if exc.retryable:  # it may come back: the follower asks again after a pause
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
        prompt = _sent_prompt(record.payload) or str((record.request or {}).get("prompt") or "")
        followed = self.ledger.followed(caps.name, [c.provider_task_id for c in listed])
        found = reconcile.candidates(listed, followed=followed, model=route.host_model, sent=sent,
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
                await self.pacers.wait(provider, Turn.RESULT)
                try:
                    job = await provider.poll(JobRef(jid, model=record.model))
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
                await self.pacers.wait(provider, Turn.RESULT)
                job = await provider.poll(JobRef(jid, model=record.model))
            if self.submitter.adopt(task_id, provider, job, how="found"):
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
                self.submitter.signals.notify(task_id)
                await self.submitter.create(task_id, provider, route, record.payload)
            else:
                self.lifecycle.fail(task_id, NotCreated(
                    f"the create request did not make a job: the host's job list {why}",
                    fix="nothing was created or paid; generate again"))
            return None
        self.lifecycle.note(task_id, Phase(record.phase), stage="looking for the job at the host")
        return self._scaled(10.0)

    async def _list_jobs(self, provider: Provider, sent: float, model: str) -> list[HostCandidate] | None:
        since, until = reconcile.window(sent, self.settings.request_deadline_seconds)
        return await provider.find_submitted(since=since, until=until, model=model,
                                             before_page=lambda: self.pacers.wait(provider, Turn.RESULT))


def _sent_prompt(payload: dict[str, Any] | None) -> str | None:
    """The prompt as the host got it, which a host shows for its job: a model may be sent more than the request's own
    (Wan 3.0 names its voices in it)."""
    if not isinstance(payload, dict):
        return None
    body = payload.get("input") if isinstance(payload.get("input"), dict) else payload
    sent = body.get("prompt")
    return sent if isinstance(sent, str) and sent else None
