"""Reconciliation's decisions as tables: which listed jobs can be a lost create's, what one shows, what follows."""

from __future__ import annotations

import pytest

from wan_r2v_mcp.jobs import reconcile
from wan_r2v_mcp.providers.base import HostCandidate

SENT, DEADLINE = 10_000.0, 60.0


def job(jid: str, created: float | None = SENT + 1, model: str | None = "wan2.7-r2v", prompt: str | None = None,
        status: str | None = None) -> HostCandidate:
    return HostCandidate(provider_task_id=jid, created_at=created, model=model, prompt=prompt, status=status)


def test_candidates_are_unfollowed_same_model_jobs_made_in_the_window_oldest_first():
    listed = [job("late", SENT + DEADLINE + 121), job("edge_late", SENT + DEADLINE + 120), job("early", SENT - 121),
              job("edge_early", SENT - 120), job("followed"), job("other_model", model="wan2.6-r2v"),
              job("no_time", None), job("no_model", model=None), job("mid", SENT + 5)]
    kept = reconcile.candidates(listed, followed={"followed"}, model="wan2.7-r2v", sent=SENT, deadline=DEADLINE)
    assert [c.provider_task_id for c in kept] == ["no_time", "edge_early", "no_model", "mid", "edge_late"]
    # a host that does not name its model keeps every model
    assert len(reconcile.candidates(listed, followed=(), model="", sent=SENT, deadline=DEADLINE)) == 7


@pytest.mark.parametrize("status, shown, ended, look, unseen", [
    (None, None, False, True, False),  # the list does not say: ask the job
    ("succeeded", None, False, True, False),  # done: its prompt shows when asked
    ("running", None, False, False, False),  # running: the prompt shows only later, watch
    ("queued", None, False, False, False),
    ("failed", None, False, False, True),  # ended without a prompt: never evidence
    ("canceled", None, False, False, True),
    ("succeeded", "a prompt", False, False, False),  # already shown
    (None, None, True, False, False),  # already known to have ended unseen
])
def test_what_to_ask_of_one_candidate(status, shown, ended, look, unseen):
    c = job("j", status=status)
    assert (reconcile.needs_a_look(c, shown, ended), reconcile.ended_unseen(c, shown)) == (look, unseen)


@pytest.mark.parametrize("shown, ended, verdict", [
    ("Image 1 waves at Video 1", False, "ours"),
    ("  Image 1 waves\nat   Video 1 ", False, "ours"),  # hosts fold whitespace
    ("Image 1 waves at Video 2", False, "other"),
    ("image 1 waves at video 1", False, "other"),  # case is the prompt's own
    (None, False, "undecided"),
    (None, True, "ended"),
])
def test_a_candidate_is_judged_on_its_prompt(shown, ended, verdict):
    assert reconcile.judge(shown, ended, "Image 1 waves at Video 1") == verdict


@pytest.mark.parametrize("undecided, ended, had, empty, action, jobs, why", [
    (["j2", "j1"], {"j3"}, True, 1, "watch", ("j2", "j1"), ""),  # watching wins over what ended
    ([], {"j3", "j1"}, True, 5, "ended", ("j1", "j3"), ""),
    ([], set(), False, 1, "look_again", (), ""),  # one empty reading proves nothing: the list may lag
    ([], set(), False, 2, "look_again", (), ""),
    ([], set(), False, 3, "none_made", (), "shows none made at that time"),
    ([], set(), True, 3, "none_made", (), "shows only other requests' jobs at that time"),
])
def test_a_round_with_nothing_adopted_concludes(undecided, ended, had, empty, action, jobs, why):
    assert reconcile.conclude(undecided, ended, had, empty) == reconcile.Conclusion(action, jobs, why)
