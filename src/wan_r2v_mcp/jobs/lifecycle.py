"""A task's life as an explicit state machine: its phases, the moves between them, and the only code that makes them.

Every change of a task's phase (and of its public status, which the phase decides) is a guarded
transition: a compare-and-set on the current phase, so no late write can undo a terminal state or a
cancel. Recovery after a crash reads phases, never display text (`stage` is for people only).
"""

from __future__ import annotations

import time
from enum import Enum
from typing import Any

from ..errors import ProviderError, R2VError, clean_remote_text
from ..providers.base import HostJob
from ..schema import TaskError
from ..store import Store


class Phase(str, Enum):
    PENDING = "pending"  # the intent is recorded; references may be uploading; no create has been sent
    CREATING = "creating"  # the create is being sent: from here on the host may have made the job
    UNKNOWN = "unknown"  # the create's answer was lost: looking for the job at the host, never resending
    QUEUED = "queued"  # the host has the job (its id is stored) and has not started it
    RUNNING = "running"  # the host is generating
    CANCELING = "canceling"  # the caller asked to cancel; the host may still finish (then it is delivered)
    DOWNLOADING = "downloading"  # the host is done: the paid result is being saved to disk
    SUCCEEDED = "succeeded"  # the video is on disk
    FAILED = "failed"  # the host refused or failed, or nothing could be created
    CANCELED = "canceled"  # stopped, at the host or before anything was sent

    @property
    def status(self) -> str:
        """The public status (`TaskView.status`) of a task in this phase."""
        return _STATUS[self]

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_PHASES


_STATUS = {
    Phase.PENDING: "queued", Phase.CREATING: "queued", Phase.UNKNOWN: "queued", Phase.QUEUED: "queued",
    Phase.RUNNING: "running", Phase.CANCELING: "running", Phase.DOWNLOADING: "running",
    Phase.SUCCEEDED: "succeeded", Phase.FAILED: "failed", Phase.CANCELED: "canceled",
}
TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELED})
UNFINISHED_PHASES = frozenset(Phase) - TERMINAL_PHASES
# Phases in which a job may exist at the host: never end these without asking it.
AT_HOST = frozenset({Phase.CREATING, Phase.UNKNOWN, Phase.QUEUED, Phase.RUNNING, Phase.CANCELING, Phase.DOWNLOADING})
_HOST_STATES = frozenset({Phase.QUEUED, Phase.RUNNING, Phase.DOWNLOADING, Phase.FAILED, Phase.CANCELED})

# A cancel asked before the host had the job's id is sent by the task's driver once the id comes back; until
# then the task's stage is one of these (the cancel tool waits for it to change: the host's answer).
CANCEL_BEFORE_ID = "cancel requested; the job will be canceled at the host as soon as it is known"
CANCEL_NOT_YET_SENT = "cancel requested; the job is being canceled at the host"


def cancel_unsent(phase: Phase, stage: str) -> bool:
    """Whether a cancel was asked for and not yet sent to the host (its id was not known when it was asked)."""
    return phase is Phase.CANCELING and stage in (CANCEL_BEFORE_ID, CANCEL_NOT_YET_SENT)

# Where each phase may go. A phase may also stay where it is (progress, stage), unless it is terminal.
ALLOWED: dict[Phase, frozenset[Phase]] = {
    Phase.PENDING: frozenset({Phase.CREATING, Phase.FAILED, Phase.CANCELED}),
    Phase.CREATING: _HOST_STATES | {Phase.UNKNOWN, Phase.CANCELING},
    Phase.UNKNOWN: _HOST_STATES | {Phase.CANCELING, Phase.CREATING},  # creating again: only once proven unmade
    Phase.QUEUED: _HOST_STATES | {Phase.CANCELING},
    Phase.RUNNING: _HOST_STATES | {Phase.CANCELING},
    Phase.CANCELING: frozenset({Phase.DOWNLOADING, Phase.FAILED, Phase.CANCELED}),
    Phase.DOWNLOADING: frozenset({Phase.SUCCEEDED, Phase.FAILED}),
    Phase.SUCCEEDED: frozenset(),
    Phase.FAILED: frozenset(),
    Phase.CANCELED: frozenset(),
}


# What a power cut may undo without harm, so it is committed without waiting for the disk: words and progress while
# a task waits to be sent, waits or runs at the host, or downloads (the next round says them again). Never a move
# that decides what is sent or paid, nor a canceling task's stage: it says whether the cancel went.
SHOWN_ONLY = frozenset({"stage", "progress"})
RESTATED = frozenset({Phase.PENDING, Phase.QUEUED, Phase.RUNNING, Phase.DOWNLOADING})


def durable(to: Phase, allowed: frozenset[Phase], values: dict[str, Any]) -> bool:
    """Whether a move must be on disk before the call that made it returns."""
    return not (values.keys() <= SHOWN_ONLY and to in RESTATED and allowed <= RESTATED)


class IllegalTransition(AssertionError):
    """A move the state machine does not have: a bug in the caller, never a host's doing."""


def sources(to: Phase) -> frozenset[Phase]:
    """The phases from which `to` may be reached (itself included, when it is not terminal)."""
    found = {p for p, targets in ALLOWED.items() if to in targets}
    if not to.terminal:
        found.add(to)
    return frozenset(found)


class Lifecycle:
    """The one writer of task phases. Each method is a guarded move and returns whether it happened."""

    def __init__(self, ledger: Store):
        self.ledger = ledger

    def move(self, task_id: str, to: Phase, *, only_from: frozenset[Phase] | None = None, **values: Any) -> bool:
        allowed = sources(to)
        if only_from is not None:
            if not only_from <= allowed:
                raise IllegalTransition(f"{sorted(p.value for p in only_from - allowed)} -> {to.value}")
            allowed = only_from
        if to.terminal:
            values.setdefault("finished_at", time.time())
        return self.ledger.transition(task_id, [p.value for p in allowed], to.value, to.status, values,
                                      durable=durable(to, allowed, values))

    def note(self, task_id: str, phase: Phase, **values: Any) -> bool:
        """Change what is shown (stage, progress) while the task stays in `phase`."""
        return self.move(task_id, phase, only_from=frozenset({phase}), **values)

    # -- the named moves

    def begin_create(self, task_id: str, payload: dict[str, Any], sent_at: float) -> bool:
        return self.move(task_id, Phase.CREATING, only_from=frozenset({Phase.PENDING}), payload=payload,
                         submitted_at=sent_at, creates=1, stage="creating the job")

    def create_again(self, task_id: str, sent_at: float, creates: int) -> bool:
        """Send the create once more: only after the host's own job list proved the last one made no job."""
        return self.move(task_id, Phase.CREATING, only_from=frozenset({Phase.UNKNOWN}), submitted_at=sent_at,
                         creates=creates, candidates=None,
                         stage="the host's job list shows the create made no job: creating it again")

    def answer_lost(self, task_id: str, why: str) -> bool:
        return self.move(task_id, Phase.UNKNOWN, only_from=frozenset({Phase.CREATING}),
                         stage=f"the create's answer was lost ({why}); looking for the job at the host")

    def adopt(self, task_id: str, provider: str, provider_task_id: str, to: Phase, *, stage: str,
              **values: Any) -> bool:
        """Store the host's id: from the create's answer, or a job found at the host on evidence. Fails when another
        task already follows that job (checked in the same transaction)."""
        allowed = sources(to) & frozenset({Phase.CREATING, Phase.UNKNOWN, Phase.CANCELING})
        return self.ledger.adopt(task_id, provider, provider_task_id, [p.value for p in allowed], to.value,
                                 to.status, {"stage": stage, **values})

    def fail(self, task_id: str, error: R2VError | TaskError, *, default_code: str = "failed",
             only_from: frozenset[Phase] | None = None, **values: Any) -> bool:
        return self.move(task_id, Phase.FAILED, only_from=only_from, error=task_error(error, default_code).model_dump(),
                         stage="failed", **values)


def host_says(job: HostJob) -> tuple[Phase, dict[str, Any]]:
    """The phase a host's answer about a job moves its task to, and the values it records."""
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


def task_error(error: R2VError | TaskError, default_code: str) -> TaskError:
    if isinstance(error, TaskError):
        return error
    code = error.code if error.code not in ("error", "provider_error") else default_code
    message = error.message
    if isinstance(error, ProviderError) and error.host_message:
        message += f" (host said: {error.host_message})"
    hint = error.fix or "see the message"
    if isinstance(error, ProviderError) and error.retryable:
        # Its fix speaks of the server trying again; the task has ended, so the hint says what really comes next.
        hint = "this is final: the server tried again for as long as it could and stopped; generate again"
    return TaskError(code=code, message=clean_remote_text(message), hint=hint)
