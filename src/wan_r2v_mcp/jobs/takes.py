"""Takes: one request made several times over, each take a task of its own with its own seed, under one group id
(tk_...), compared on a contact sheet; the picked take is the group's video.

A group is a row of the sequence book (kind "takes") with one shot whose takes are the tasks. It is admitted as the
whole of its work in one transaction (the caps count every take, the duplicate guard sees the request once: the
first take carries the group's fingerprint), with each take's id and seed recorded before anything is sent; each
take then uses up its own reservation as it is created, like a sequence's shot. Its driver waits for every take,
draws the sheet and moves the group to its end.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import replace
from typing import Any

import anyio

from ..config import Settings
from ..errors import Canceled, InputError, InputErrors
from ..schema import TERMINAL
from ..store import SequenceRecord, Store
from .contact_sheet import row_of, sheet_in
from .follower import Follower
from .quote import Quote, budget_check
from .sequences import GROUP_PREFIX, SeqPhase, SequenceBook

NEVER_SENT_SECONDS = 60.0  # a recorded take with no task this long after its group began was never sent (a crash)


def seeds_for(seed: int | None, variants: int) -> list[int]:
    """Each take's seed: from the one given, counting up (so the group is reproducible), else distinct random ones."""
    if seed is not None:
        return [(seed + i) % 2_147_483_648 for i in range(variants)]
    chosen: list[int] = []
    while len(chosen) < variants:
        s = secrets.randbelow(2_147_483_647)
        if s not in chosen:
            chosen.append(s)
    return chosen


def group_fingerprint(request_fingerprint: str, variants: int) -> str:
    """The request seen once, whatever its takes' seeds: its fingerprint (with the seed the caller gave) and how many
    takes it asks for."""
    return hashlib.sha256(f"{request_fingerprint}|takes={variants}".encode()).hexdigest()


class Takes:
    def __init__(self, settings: Settings, ledger: Store, book: SequenceBook, follower: Follower):
        self.settings = settings
        self.ledger = ledger
        self.book = book
        self.follower = follower

    def start(self, quotes: list[Quote], seeds: list[int], owner: str, request: dict[str, Any],
              character_files: dict[str, str], group_fp: str,
              duplicate_of: tuple[str, float] | None) -> tuple[str, bool]:
        """Admit the group with every take's cost reserved and its ids recorded, then create each take (each uses up
        its reservation). Returns the group id, and whether it is an identical earlier request's group instead."""
        group_id = f"{GROUP_PREFIX}{secrets.token_urlsafe(12)}"
        take_ids = [self.follower.new_task_id() for _ in quotes]
        total = None if any(q.cost_estimate is None for q in quotes) else round(sum(q.cost_estimate or 0 for q in
                                                                                    quotes), 4)
        now = time.time()
        first = quotes[0]
        record = SequenceRecord(
            sequence_id=group_id, owner=owner, kind="takes", created_at=now, updated_at=now, finished_at=None,
            phase=SeqPhase.RUNNING.value, stage=f"making {len(quotes)} takes", provider=first.provider.capabilities.name,
            spec={"shots": [{"prompt": first.request.prompt, "duration": first.request.duration}],
                  "request": request, "model": first.model, "seeds": seeds, "pick": None,
                  "characters": first.cast or {}, "character_files": character_files},
            takes=[take_ids], cost_estimate=total, billable_seconds=sum(q.billable_seconds for q in quotes),
            local_path=None, poster_path=None, sidecar_path=None, output=None, error=None, version=0)
        try:
            earlier = self.ledger.admit(owner=owner, sequence_id=group_id, new_sequence=record,
                                        duplicate_of=duplicate_of,
                                        check=budget_check(total, self.settings, f"the {len(quotes)} takes"),
                                        reserve={i: q.cost_estimate or 0.0 for i, q in enumerate(quotes)})
        except BaseException:
            for q in quotes:
                q.close()
            raise
        if earlier is not None:  # an identical request's group (its first take carries the group's fingerprint)
            for q in quotes:
                q.close()
                q.intake.discard_inline()
            return earlier.sequence_id or earlier.task_id, True
        for i, (q, task_id) in enumerate(zip(quotes, take_ids)):
            q = replace(q, fingerprint=group_fp if i == 0 else f"{group_fp}#{i + 1}")
            self.follower.submit(q, owner, task_id=task_id, sequence_id=group_id, shot=i,
                                 check=budget_check(q.cost_estimate, self.settings, f"take {i + 1}"))
        return group_id, False

    # ------------------------------------------------------------------ the group's driver

    async def drive(self, record: SequenceRecord) -> bool:
        """One decision for a group; True when something was written, False to wait for a take."""
        tasks = [self.ledger.get(t) for t in record.takes[0]]
        for task in tasks:
            if task is not None and task.status not in TERMINAL:
                self.follower.watch(task.task_id)
        young = time.time() - record.created_at < NEVER_SENT_SECONDS * max(self.settings.time_scale, 0.01)
        if any(t is None for t in tasks) and young:
            return False  # still being created
        if any(t is not None and t.status not in TERMINAL for t in tasks):
            return False
        made = [t for t in tasks if t is not None and t.status == "succeeded" and t.local_path]
        if not made:
            first = next((t for t in tasks if t is not None and t.error), None)
            error = (first.error if first is not None else None) or {
                "code": Canceled.code if any(t is not None and t.status == "canceled" for t in tasks) else
                "generation_failed", "message": "no take was made", "hint": "generate again"}
            to = SeqPhase.CANCELED if all(t is None or t.status == "canceled" for t in tasks) else SeqPhase.FAILED
            self.book.move(record, to, stage="no take was made" if to is SeqPhase.FAILED else "canceled",
                                   error=error if to is SeqPhase.FAILED else None)
            return True  # written, or changed meanwhile: read it again either way
        sheet = await anyio.to_thread.run_sync(self._sheet, record, tasks)
        pick = record.spec.get("pick")
        chosen = tasks[pick] if pick is not None and tasks[pick] in made else made[0]
        self.book.move(record, SeqPhase.SUCCEEDED, **self._picked(record, chosen),
                       stage=f"{len(made)} of {len(tasks)} takes made; take {record.takes[0].index(chosen.task_id) + 1}"
                             " picked", output={**(chosen.output or {}), "contact_sheet": sheet})
        return True

    def _picked(self, record: SequenceRecord, chosen: Any) -> dict[str, Any]:
        return {"local_path": chosen.local_path, "poster_path": chosen.poster_path, "sidecar_path": chosen.sidecar_path,
                "spec": {**record.spec, "pick": record.takes[0].index(chosen.task_id)}}

    def _sheet(self, record: SequenceRecord, tasks: list[Any]) -> dict[str, Any]:
        seeds = record.spec.get("seeds") or []
        rows = [row_of(i + 1, seeds[i] if i < len(seeds) else None, task) for i, task in enumerate(tasks)]
        return sheet_in(self.settings.videos_dir, record.sequence_id, rows, record.spec.get("character_files") or {})

    # ------------------------------------------------------------------ picking

    def pick(self, record: SequenceRecord, take: int) -> SequenceRecord:
        """Make take `take` (from 1) the group's video."""
        ids = record.takes[0]
        if not 1 <= take <= len(ids):
            raise InputErrors([InputError(f"is {take}", field="take", limit=f"1-{len(ids)}: this group has "
                                          f"{len(ids)} takes", fix="pick one that get_task lists")])
        task = self.ledger.get(ids[take - 1])
        if task is None or task.status != "succeeded" or not task.local_path:
            state = "was never sent" if task is None else task.status
            raise InputErrors([InputError(f"take {take} {state}", field="take",
                                          fix="pick a take that succeeded (get_task shows each one's state)")])
        if SeqPhase(record.phase) is not SeqPhase.SUCCEEDED:
            raise InputErrors([InputError(f"the group is {SeqPhase(record.phase).status}", field="task_id",
                                          fix="wait until every take has ended (get_task waits), then pick")])
        moved = self.book.move(record, SeqPhase.SUCCEEDED, **self._picked(record, task),
                               stage=f"take {take} picked", finished_at=record.finished_at)
        if moved is None:
            raise InputErrors([InputError("the group changed while this was being picked", field="task_id",
                                          fix="call pick_take again")])
        return moved
