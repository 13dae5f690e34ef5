"""The sequence verbs: plan and start a sequence, stitch finished videos, redo a shot, cancel, read.

A sequence's shots are tasks of their own, made by its driver (`jobs.sequence_driver`) in the background;
its shots' requests are checked by its plan (`jobs.sequence_plan`) before anything is paid.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from ..cast.roster import Cast
from ..config import Settings
from ..errors import InputError, InputErrors, NotFoundError, R2VError
from ..providers.registry import ProviderRegistry
from ..schema import TERMINAL, SequenceArgs, ShotView, TaskView
from ..store import Conflict, SequenceRecord, Store
from .follower import Follower
from .quote import STITCH_MAX_SECONDS, Quote, budget_check, check_free_work, dry_run
from .sequence_driver import SequenceDriver
from .sequence_plan import Planner, takes_of, total_cost
from .sequences import SeqPhase, SequenceBook, carried, is_sequence_id, made_by
from .takes import Takes
from .views import sequence_view
from .worker import Worker

__all__ = ["Sequencer", "is_sequence_id"]


class Sequencer:
    def __init__(self, settings: Settings, ledger: Store, providers: ProviderRegistry, follower: Follower, cast: Cast,
                 worker: Worker):
        self.settings = settings
        self.ledger = ledger
        self.book = SequenceBook(ledger)
        self.providers = providers
        self.follower = follower
        self.signals = worker.signals
        self.planner = Planner(settings, ledger, providers, cast)
        self.takes = Takes(settings, ledger, self.book, follower)
        self.driver = SequenceDriver(settings, ledger, self.book, self.planner, follower, cast, worker, self.takes)

    def plan(self, args: SequenceArgs, owner: str) -> tuple[dict[str, Any], list[Quote]]:
        return self.planner.plan(args, owner)

    def drive(self, sequence_id: str) -> None:
        self.driver.drive(sequence_id)

    def dry_run(self, spec: dict[str, Any], quotes: list[Quote]) -> TaskView:
        views = [dry_run(q) for q in quotes]
        for q in quotes:
            q.close()
        record = self._new_record("dry-run", "", "sequence", spec, [[] for _ in quotes], quotes)
        view = sequence_view(record, self.ledger, self.providers.capabilities, shot_views=[
            ShotView(shot=i + 1, status="dry run", stage="nothing submitted", prompt=v.request.prompt,
                     duration=spec["shots"][i]["duration"], made_by=made_by(spec, i),
                     cost_estimate_usd=None if v.cost_estimate_usd is None else round(
                         v.cost_estimate_usd * takes_of(spec)[i], 4)) for i, v in enumerate(views)])
        return view.model_copy(update={"dry_run": True, "shot_payloads": [v.payload or {} for v in views],
                                       "references": [r for v in views for r in v.references],
                                       "next_check_seconds": None, "estimated_seconds_left": None})

    def create(self, spec: dict[str, Any], quotes: list[Quote], owner: str) -> str:
        """Record the sequence with every shot's cost reserved, in the one transaction that checks the caps: the
        sequence is admitted as the whole of its work, and each shot's take later uses up its reservation."""
        for q in quotes:
            q.close()  # each shot is checked again when it is made, with the frame it then opens on
        sequence_id = f"seq_{secrets.token_urlsafe(12)}"
        record = self._new_record(sequence_id, owner, "sequence", spec, [[] for _ in quotes], quotes)
        total = total_cost(quotes, takes_of(spec))
        self.ledger.admit(owner=owner, sequence_id=sequence_id, new_sequence=record,
                          check=budget_check(total, self.settings, f"the whole sequence of {len(quotes)} shots"),
                          reserve={i: q.cost_estimate * n for (i, q), n in zip(enumerate(quotes), takes_of(spec))
                                   if q.cost_estimate})
        self.drive(sequence_id)
        return sequence_id

    def _new_record(self, sequence_id: str, owner: str, kind: str, spec: dict[str, Any], takes: list[list[str]],
                    quotes: list[Quote] | None = None, phase: SeqPhase = SeqPhase.RUNNING) -> SequenceRecord:
        now = time.time()
        cost = total_cost(quotes, takes_of(spec) if kind == "sequence" else None) if quotes else None
        billable = sum(q.billable_seconds * n for q, n in zip(quotes, takes_of(spec) if kind == "sequence" else
                                                               [1] * len(quotes))) if quotes else None
        return SequenceRecord(
            sequence_id=sequence_id, owner=owner, kind=kind, created_at=now, updated_at=now, finished_at=None,
            phase=phase.value, stage="making the shots" if phase is SeqPhase.RUNNING else "joining",
            provider=spec.get("provider", "preview"), spec=spec, takes=takes, cost_estimate=cost,
            billable_seconds=billable, local_path=None, poster_path=None, sidecar_path=None, output=None, error=None,
            version=0)

    def stitch(self, task_ids: list[str], owner: str) -> str:
        """Record a join of finished videos (tasks or sequences of this caller) and start it."""
        errors: list[InputError] = []
        shapes: list[tuple[int, int]] = []
        shots = []
        providers: list[str] = []
        for i, task_id in enumerate(task_ids):
            field = f"task_ids[{i}]"
            try:
                path, output, prompt, provider = self.book.finished_video(task_id, owner)
            except R2VError as exc:  # unknown (or another caller's), unfinished, gone: each named by its place
                exc.field = field
                errors.append(exc)  # type: ignore[arg-type]
                continue
            shots.append({"prompt": prompt, "duration": round(float(output.get("seconds") or 0), 3)})
            providers.append(provider)
            width, height = int(output.get("width") or 0), int(output.get("height") or 0)
            if shapes and width and height and abs(width * shapes[0][1] - height * shapes[0][0]) > 0.01 * width * \
                    shapes[0][1]:
                errors.append(InputError(
                    f"is {width}x{height}, another aspect ratio than task_ids[0] ({shapes[0][0]}x{shapes[0][1]})",
                    field=field, limit="one aspect ratio for every part",
                    fix="stitch videos of one aspect ratio (generate again with the same aspect_ratio)"))
            shapes.append((width, height))
        total = sum(s["duration"] for s in shots)
        if not errors and total > STITCH_MAX_SECONDS:
            errors.append(InputError(f"together last {total:.0f} s", field="task_ids",
                                     limit=f"at most {STITCH_MAX_SECONDS} s in one stitch",
                                     fix="stitch fewer or shorter videos"))
        if errors:
            raise InputErrors(errors)
        from ..providers import available

        local = [n for n in available() if (caps := self.providers.capabilities(n)) is not None and caps.local]
        check_free_work(self.ledger, owner, local, "a stitch")
        spec = {"shots": shots, "continuity": False, "resolution": "", "aspect_ratio": "",
                "size": list(shapes[0]), "provider": "+".join(dict.fromkeys(p for part in providers
                                                                             for p in part.split("+")))}
        sequence_id = f"seq_{secrets.token_urlsafe(12)}"
        self.book.insert(self._new_record(sequence_id, owner, "stitch", spec, [[t] for t in task_ids],
                                          phase=SeqPhase.JOINING))
        self.drive(sequence_id)
        return sequence_id

    def redo(self, sequence_id: str, shot: int, prompt: str | None, seed: int | None, owner: str) -> list[str]:
        """Record one shot's new take, checked (the caller then calls `drive`); the sequence is joined again when it is
        done. Returns warnings."""
        if not is_sequence_id(sequence_id) and self.ledger.get(sequence_id) is not None and \
                self.ledger.get(sequence_id).owner == owner:  # type: ignore[union-attr]
            raise InputErrors([InputError(
                f"{sequence_id} is a single generation, not a sequence: it has no shots", field="task_id",
                fix="generate_r2v again (with another seed) remakes it; redo_shot takes a seq_... id")])
        record = self.record(sequence_id, owner)
        if record.kind != "sequence":
            raise InputErrors([InputError("is a stitch of finished tasks: it has no shots to make again",
                                          field="task_id", fix="generate the part again, then stitch anew")])
        shots = record.spec["shots"]
        if shot > len(shots):
            raise InputErrors([InputError(f"is {shot}, but the sequence has {len(shots)} shots", field="shot",
                                          limit=f"1-{len(shots)}", fix="count shots from 1")])
        index = shot - 1
        phase = SeqPhase(record.phase)
        if phase is SeqPhase.CANCELED:
            raise InputErrors([InputError("the sequence was canceled", field="task_id",
                                          fix="generate_sequence again")])
        current = record.current(index)
        task = self.ledger.get(current) if current else None
        never_made = task is None and phase is SeqPhase.FAILED  # it could not be made (a deleted character...)
        if not never_made and (task is None or task.status not in TERMINAL):
            state = "has not been started yet" if task is None else f"is still being made ({task.status})"
            raise InputErrors([InputError(f"shot {shot} {state}", field="shot",
                                          fix="wait until it ends (get_task on the sequence), then redo it")])
        if phase is SeqPhase.JOINING:
            raise InputErrors([InputError("the shots are being joined right now", field="task_id",
                                          fix="redo the shot once the join is done (a few seconds)")])
        spec = {**record.spec, "shots": [dict(s) for s in shots]}
        spec["picks"] = {k: v for k, v in (spec.get("picks") or {}).items() if k != str(index)}  # the new take is used
        if prompt is not None:
            spec["shots"][index]["prompt"] = prompt
        spec["shots"][index]["seed"] = seed  # None: a new random seed, else a redo would most likely look the same
        spec["shots"][index].pop("seeds", None)  # a redo is one take, of its own seed
        spec["shots"][index]["variants"] = 1
        if spec.get("seed") is not None and seed is None:
            spec["shots"][index]["seed"] = secrets.randbelow(2**31 - 1)
        first = self.planner.placeholder(spec) if carried(spec) and index > 0 else None
        q = self.planner.quote_shot(spec, index, owner, first)  # the new take is checked before anything is paid
        q.close()
        takes = [list(t) for t in record.takes]
        takes[index].append(self.follower.new_task_id())
        changed = InputErrors([InputError("the sequence changed while this was being checked", field="task_id",
                                          fix="call redo_shot again")])
        move = self.book.moving(record, SeqPhase.RUNNING, spec=spec, takes=takes, error=None, finished_at=None,
                                stage=f"making shot {shot} again")
        if move is None:
            raise changed
        try:  # the new take is reserved, against the caps with everything the sequence made and plans, as it moves
            self.ledger.admit(owner=owner, sequence_id=sequence_id, move=move,
                              check=budget_check(q.cost_estimate, self.settings, f"shot {shot}'s new take"),
                              reserve={index: q.cost_estimate or 0.0})
        except Conflict:
            raise changed from None
        if carried(spec) and index + 1 < len(shots):
            carries = "opens on the last frame" if carried(spec) == "frame" else "continues the last seconds"
            return [f"shot {shot + 1} {carries} of the old shot {shot}; redo it too for a seamless cut"]
        return []

    def pick(self, record: SequenceRecord, shot: int | None, take: int) -> None:
        """Make take `take` (from 1, oldest first) of a sequence's shot the one it uses, and join the sequence again
        (copying packets as any join does); the pick is written into the sequence, so it survives restarts."""
        if record.kind != "sequence":
            raise InputErrors([InputError(f"{record.sequence_id} is a stitch of finished videos: it has no takes",
                                          field="task_id", fix="pick a take of a sequence or of a group of takes")])
        if shot is None or not 1 <= shot <= len(record.takes):
            raise InputErrors([InputError("is missing" if shot is None else f"is {shot}", field="shot",
                                          limit=f"1-{len(record.takes)} for this sequence",
                                          fix="name the shot whose take to use (get_task lists each shot's takes)")])
        takes = record.takes[shot - 1]
        if not 1 <= take <= len(takes):
            raise InputErrors([InputError(f"is {take}", field="take", limit=f"1-{len(takes)}: shot {shot} has "
                                          f"{len(takes)} take{'s' * (len(takes) != 1)}",
                                          fix="pick one of its takes, oldest first (redo_shot makes more)")])
        task = self.ledger.get(takes[take - 1])
        if task is None or task.status != "succeeded" or not task.local_path:
            raise InputErrors([InputError(f"shot {shot}'s take {take} {'was never made' if task is None else task.status}",
                                          field="take", fix="pick a take that succeeded")])
        phase = SeqPhase(record.phase)
        if phase not in (SeqPhase.SUCCEEDED, SeqPhase.FAILED):
            raise InputErrors([InputError(f"the sequence is {phase.status}", field="task_id",
                                          fix="wait until it has ended (get_task waits), then pick")])
        spec = {**record.spec, "picks": {**(record.spec.get("picks") or {}), str(shot - 1): task.task_id}}
        moved = self.book.move(record, SeqPhase.RUNNING if phase is SeqPhase.FAILED else SeqPhase.JOINING,
                               spec=spec, error=None, finished_at=None, stage=f"shot {shot} uses take {take}; "
                               "joining again")
        if moved is None:
            raise InputErrors([InputError("the sequence changed while this was being picked", field="task_id",
                                          fix="call pick_take again")])
        self.drive(record.sequence_id)

    async def cancel(self, sequence_id: str, owner: str) -> None:
        """Stop the shots not yet done; the ones done stay on disk (and paid)."""
        record = self.record(sequence_id, owner)
        if SeqPhase(record.phase).terminal:
            return
        moved = self.book.move(record, SeqPhase.CANCELED, stage="canceled; shots not yet done were stopped")
        if moved is None:
            return await self.cancel(sequence_id, owner)  # it changed meanwhile: read it again
        self.signals.notify(sequence_id)
        for takes in moved.takes:  # a shot's current take; every take of a group
            for task_id in takes if moved.kind == "takes" else takes[-1:]:
                task = self.ledger.get(task_id)
                if task is not None and task.status not in TERMINAL:
                    await self.follower.cancel(task)

    def record(self, sequence_id: str, owner: str) -> SequenceRecord:
        record = self.book.get(sequence_id)
        if record is None or record.owner != owner:
            raise NotFoundError(f"no task \"{sequence_id}\"", field="task_id",
                                fix="use a task_id returned by a generate tool or generate_sequence; list_tasks shows "
                                    "recent ones")
        return record

    def view(self, sequence_id: str, owner: str) -> TaskView:
        return sequence_view(self.record(sequence_id, owner), self.ledger, self.providers.capabilities)
