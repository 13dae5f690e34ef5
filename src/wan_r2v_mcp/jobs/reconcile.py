"""Which host job, if any, a create whose answer was lost made: the decisions, apart from the calls that gather
their evidence (the follower asks the host; these only judge what it said), so each can be tested as a table.

Evidence for a job being a task's: the same model, made inside the window around the create, followed by no
other task, and, once the host shows it, the same prompt. A job whose prompt is not shown yet is watched; a job
that ended without showing one can be nobody's proof. Only several empty readings of the list prove that nothing
was made, since a host's list can lag its create by a few seconds.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Literal

from ..providers.base import HostCandidate

CLOCK_SKEW = 120.0  # a host's clock may differ from ours by this much when its job list is read
EMPTY_LISTS_PROVE = 3  # the host's list, read this many times over half a minute, shows no job: none was made

Verdict = Literal["ours", "other", "undecided", "ended"]


def window(sent: float, deadline: float) -> tuple[float, float]:
    """When a job made by a create sent at `sent` (answered within `deadline` seconds) can have been made."""
    return sent - CLOCK_SKEW, sent + deadline + CLOCK_SKEW


def candidates(listed: Iterable[HostCandidate], *, followed: Collection[str], model: str, sent: float,
               deadline: float) -> list[HostCandidate]:
    """The listed jobs that could be the create's, oldest first: no other task follows them, their model is ours
    (where both are known) and they were made in the window (where the host says when)."""
    start, end = window(sent, deadline)
    kept = [c for c in listed if c.provider_task_id not in followed
            and (c.model is None or not model or c.model == model)
            and (c.created_at is None or start <= c.created_at <= end)]
    return sorted(kept, key=lambda c: c.created_at or 0)


def needs_a_look(candidate: HostCandidate, shown: str | None, ended: bool) -> bool:
    """Whether to ask the host for this job itself to see its prompt: it does not show one yet, has not ended
    without one, and is done or of a status the list does not say (a running job shows its prompt only later)."""
    return shown is None and not ended and candidate.status in (None, "succeeded")


def ended_unseen(candidate: HostCandidate, shown: str | None) -> bool:
    """A job the list says ended (failed, canceled) without showing its prompt: it will never show one."""
    return shown is None and candidate.status in ("failed", "canceled")


def judge(shown: str | None, ended: bool, prompt: str) -> Verdict:
    """One candidate, on what the host showed of it."""
    if shown is None:
        return "ended" if ended else "undecided"
    return "ours" if same_prompt(shown, prompt) else "other"


def same_prompt(a: str, b: str) -> bool:
    """Hosts may fold whitespace: compare the words."""
    return a.split() == b.split()


@dataclass(frozen=True)
class Conclusion:
    """What to do once no candidate was adopted this round."""

    action: Literal["watch", "ended", "none_made", "look_again"]
    jobs: tuple[str, ...] = ()  # watched, or ended without a prompt
    why: str = ""  # for none_made: what the list showed


def conclude(undecided: Collection[str], ended: Collection[str], had_candidates: bool,
             empty_readings: int) -> Conclusion:
    """After a round where nothing was ours: watch what may still be, report what ended unseen, or count the
    reading toward the proof that nothing was made (`empty_readings` includes this one)."""
    if undecided:
        return Conclusion("watch", tuple(undecided))
    if ended:
        return Conclusion("ended", tuple(sorted(ended)))
    if empty_readings >= EMPTY_LISTS_PROVE:
        why = "shows only other requests' jobs at that time" if had_candidates else "shows none made at that time"
        return Conclusion("none_made", why=why)
    return Conclusion("look_again")
