"""Short runs of the fault-injection soak and the kill -9 loop (the full ones: tests/harness/, one command each), and
the replay of the mistakes agents make, each answer scored."""

from __future__ import annotations

from dataclasses import asdict

import pytest
from harness import faults, fuzz, kills, toctou, words

pytestmark = pytest.mark.anyio


@pytest.mark.long
async def test_a_short_fault_soak_loses_nothing_pays_nothing_twice_and_adopts_nothing_wrong(tmp_path):
    figures = await faults.run(40, concurrency=10, seed=3, folder=tmp_path)
    assert figures.ok, asdict(figures)
    assert figures.host_jobs >= 30 and figures.faults_injected >= 20, asdict(figures)


@pytest.mark.long
async def test_short_rounds_with_the_job_list_failing_for_good_deliver_every_job(tmp_path):
    lists = await faults.run_list_failing(4, seed=3, folder=tmp_path)
    assert [f.mode for f in lists] == ["forbidden", "failing", "garbled"]
    assert all(f.ok for f in lists), [asdict(f) for f in lists]


async def test_requests_sequences_and_redos_straddling_the_caps_never_pass_them(tmp_path):
    figures = await faults.run_caps(seed=3, folder=tmp_path)
    assert figures.ok, asdict(figures)
    assert figures.jobs_made == 5 and figures.refused_over_budget == 15 and figures.spent == 1.0, asdict(figures)


@pytest.mark.long
def test_a_short_kill_loop_leaves_no_orphan_no_duplicate_and_no_wrong_video(tmp_path):
    figures = kills.run(6, seed=5, folder=tmp_path)
    assert figures.ok, asdict(figures)


async def test_references_swapped_for_symlinks_while_checked_never_let_a_file_from_outside_through(tmp_path):
    figures = await toctou.run(150, folder=tmp_path)
    assert figures.ok, asdict(figures)


@pytest.mark.long
async def test_no_input_to_any_tool_ends_in_an_unhandled_error(tmp_path):
    figures = await fuzz.run(15, folder=tmp_path)
    assert figures.ok, asdict(figures)


async def test_every_mistake_an_agent_makes_is_answered_with_its_argument_and_a_fix_in_the_tools_own_words(
        tmp_path):
    figures = await words.replay(tmp_path)
    assert figures.mistakes >= 75 and (figures.mean, figures.zeros) == (2.0, 0), figures.below_two

