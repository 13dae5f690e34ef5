"""The driver of one sequence: it makes shots (writing each task id into the sequence before the task exists),
fails the sequence when a shot fails, and joins the shots when all are done.

The worker runs one driver per unfinished sequence, under a lease like a task's; it is woken whenever one of its
shots changes. Everything it decides comes from the ledger, so after a restart it takes each sequence up where it
was.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio

from ..cast.roster import Cast
from ..config import Settings
from ..errors import Canceled, FollowingFailed, InputError, JoinFailed, R2VError
from ..schema import TERMINAL
from ..store import SequenceRecord, Store, TaskRecord
from . import results
from .contact_sheet import row_of, sheet_in
from .follower import Follower
from .join import join, last_frame, tail
from .quote import budget_check
from .sequence_plan import Planner, takes_of
from .sequences import CARRIED_CLIP_SECONDS, SeqPhase, SequenceBook, carried
from .takes import Takes
from .worker import RESTARTS, Kind, Worker

NOTHING_MADE = frozenset({"interrupted", "upload_failed"})  # task errors that leave no job at the host
RETAKES = 3  # takes of one shot, at most, when each ended before any job was made


class SequenceDriver:
    def __init__(self, settings: Settings, ledger: Store, book: SequenceBook, planner: Planner, follower: Follower,
                 cast: Cast, worker: Worker, takes: Takes):
        self.takes = takes  # drives the groups of takes kept in the same book
        self.settings = settings
        self.ledger = ledger
        self.book = book
        self.planner = planner
        self.follower = follower
        self.cast = cast
        self.worker = worker
        self.signals = worker.signals
        self._shot_of: dict[str, str] = {}  # task id -> the sequence it is a shot of
        self.signals.listeners.append(self._task_changed)
        self.kind = Kind("driving", book.unclaimed, self._drive, self._give_up)
        worker.add(self.kind)

    def drive(self, sequence_id: str) -> None:
        """Make sure a driver follows this sequence (on the event loop's thread)."""
        self.worker.run(self.kind, sequence_id)

    def _task_changed(self, task_id: str) -> None:
        sequence_id = self._shot_of.get(task_id)
        if sequence_id is not None:
            self.signals.notify(sequence_id)

    def _give_up(self, sequence_id: str, exc: Exception) -> None:
        """End a sequence whose driver keeps failing; the shots already made stay on disk, redo_shot takes it up."""
        record = self.book.get(sequence_id)
        if record is None or SeqPhase(record.phase).terminal:
            return
        error = FollowingFailed(f"making this sequence failed {RESTARTS + 1} times ({type(exc).__name__}: {exc})"[:300],
                                fix="the shots already made are kept; redo_shot makes a missing shot again")
        self.book.move(record, SeqPhase.FAILED, stage="stopped after repeated failures",
                       error={"code": error.code, "message": error.message, "hint": error.fix})

    async def _drive(self, sequence_id: str) -> None:
        while True:
            record = self.book.get(sequence_id)
            if record is None or SeqPhase(record.phase).terminal:
                return
            if await self.worker.held_elsewhere(sequence_id):  # another server on this ledger drives it
                if self.worker.leaves_what_others_hold:
                    return
                continue
            for takes in record.takes:
                for task_id in takes:
                    self._shot_of[task_id] = sequence_id
            wake = self.signals.changed(sequence_id)
            if SeqPhase(record.phase) is SeqPhase.JOINING:
                await self._join(record)
            elif not await (self.takes.drive(record) if record.kind == "takes" else self._step(record)):
                with anyio.move_on_after(max(1.0, self.settings.progress_interval_seconds * 5)):
                    await wake.wait()
            self.signals.notify(sequence_id)

    async def _step(self, record: SequenceRecord) -> bool:
        """One decision; True when something was written (read the row again), False to wait for a shot."""
        shots = record.spec["shots"]
        ids = [record.current(index) for index in range(len(shots))]
        tasks: list[TaskRecord | None] = [self.ledger.get(task_id) if task_id else None for task_id in ids]
        rounds = takes_of(record.spec)
        for index in range(len(shots)):
            # Recorded, never created (a crash, a redo, a shot's other takes): make it now, unless it opens on the
            # last frame of a shot that is still being made (a redo beside a redo): then it waits for that shot.
            before = tasks[index - 1] if index else None
            if carried(record.spec) and index and (before is None or before.status != "succeeded"):
                continue
            for task_id in record.takes[index][-rounds[index]:]:
                if self.ledger.get(task_id) is None:
                    await self._make(record, index, task_id)
                    return True
        for index, task in enumerate(tasks):
            # A shot made in several takes whose newest ended badly uses a take of its round that succeeded.
            if task is None or task.status not in ("failed", "canceled") or rounds[index] == 1 or \
                    (record.spec.get("picks") or {}).get(str(index)):
                continue
            siblings = [self.ledger.get(t) for t in record.takes[index][-rounds[index]:]]
            good = next((s for s in siblings if s is not None and s.status == "succeeded"), None)
            if good is not None:
                spec = {**record.spec, "picks": {**(record.spec.get("picks") or {}), str(index): good.task_id}}
                self.book.move(record, SeqPhase.RUNNING, spec=spec,
                               stage=f"shot {index + 1} uses take {record.takes[index].index(good.task_id) + 1}")
                return True
        for index, task in enumerate(tasks):
            # A shot that ended before any job was made (the server stopped, or its uploads failed: nothing paid) is
            # simply made again, a few times at most: the sequence is what was asked for.
            code = (task.error or {}).get("code") if task is not None and task.status == "failed" else None
            if code in NOTHING_MADE and len(record.takes[index]) < RETAKES:
                takes = [list(t) for t in record.takes]
                takes[index].append(self.follower.new_task_id())
                self.book.move(record, SeqPhase.RUNNING, takes=takes,
                               stage=f"making shot {index + 1} again: the last try ended before any job was made")
                return True
        ended_badly = [i for i, t in enumerate(tasks) if t is not None and t.status in ("failed", "canceled")]
        active = [t for t in tasks if t is not None and t.status not in TERMINAL]
        # A shot's other takes end first: one of them may stand in for a take that failed, and what the sequence
        # made is then all there to compare and pick from.
        siblings_pending = any((s := self.ledger.get(t)) is not None and s.status not in TERMINAL
                               for i in range(len(shots)) for t in record.takes[i][-rounds[i]:])
        if ended_badly and not active and not siblings_pending:
            index = ended_badly[0]
            task = tasks[index]
            assert task is not None
            error = task.error or {"code": Canceled.code, "message": f"shot {index + 1} was canceled", "hint": ""}
            self.book.move(record, SeqPhase.FAILED, stage=f"shot {index + 1} {task.status}; redo_shot makes it again",
                           error={"code": error.get("code", "generation_failed"),
                                  "message": f"shot {index + 1}: {error.get('message', '')}",
                                  "hint": f"redo_shot(task_id, shot={index + 1}) makes it again; the other shots "
                                          "are kept"})
            return True
        if all(t is not None and t.status == "succeeded" for t in tasks):
            if siblings_pending:
                return False
            self.book.move(record, SeqPhase.JOINING, stage="joining the shots")
            return True
        if ended_badly:
            return False  # the other shots still running end first
        for index, task in enumerate(tasks):
            if task is not None or record.current(index) is not None:
                continue
            before = tasks[index - 1] if index else None
            if carried(record.spec) and index and (before is None or before.status != "succeeded"):
                break  # opens on the shot before's last frame: wait for it
            takes = [list(t) for t in record.takes]
            takes[index].extend(self.follower.new_task_id() for _ in range(rounds[index]))  # its takes, recorded
            if self.book.move(record, SeqPhase.RUNNING, takes=takes, stage=f"making shot {index + 1}") is None:
                return True  # changed meanwhile (a cancel): decide again
            return True  # the next round makes the recorded task
        return False

    async def _make(self, record: SequenceRecord, index: int, task_id: str) -> None:
        """Create the shot's task under the id already recorded in the sequence, admitted against the caps with its
        reservation used up."""
        first = None
        way = carried(record.spec)
        try:
            if way and index > 0:
                before = self.ledger.get(record.current(index - 1) or "")
                if before is None or not before.local_path:
                    raise JoinFailed(f"shot {index}'s video is not on disk", fix=f"redo_shot shot={index}")
                if way == "clip":  # its last seconds, for the next shot to continue
                    first = self.planner.folder / f"{record.sequence_id}-{task_id}-clip.mp4"
                    await anyio.to_thread.run_sync(tail, Path(before.local_path), first,
                                                   CARRIED_CLIP_SECONDS + 1 / 24)  # never measured under 2 s
                else:
                    first = self.planner.folder / f"{record.sequence_id}-{task_id}-first.png"
                    await anyio.to_thread.run_sync(last_frame, Path(before.local_path), first)
            window = record.takes[index][-takes_of(record.spec)[index]:]
            take = window.index(task_id) if len(window) > 1 and task_id in window else 0
            q = await anyio.to_thread.run_sync(self.planner.quote_shot, record.spec, index, record.owner, first, take)
            fresh = self.book.get(record.sequence_id)
            if fresh is None or SeqPhase(fresh.phase).terminal or task_id not in fresh.takes[index] \
                    or self.ledger.get(task_id) is not None:
                q.close()  # canceled meanwhile, or made already: nothing to send
                return
            self._shot_of[task_id] = record.sequence_id
            cast = list(q.cast or ())
            self.follower.submit(q, record.owner, task_id=task_id, sequence_id=record.sequence_id, shot=index,
                                 check=budget_check(q.cost_estimate, self.settings, f"shot {index + 1}"))
            if cast:
                self.cast.used(record.owner, cast)
        except R2VError as exc:  # a character deleted since, a cap reached meanwhile: say which shot and why
            fresh = self.book.get(record.sequence_id)
            if fresh is not None and not SeqPhase(fresh.phase).terminal:
                takes = [list(t) for t in fresh.takes]
                if takes[index] and takes[index][-1] == task_id:
                    takes[index].pop()  # never created: nothing to follow
                self.book.move(fresh, SeqPhase.FAILED, takes=takes, stage=f"shot {index + 1} could not be made",
                               error={"code": exc.code, "message": exc.tool_message(),  # names shots[i]
                                      "hint": f"fix it, then redo_shot(task_id, shot={index + 1})"})

    async def _join(self, record: SequenceRecord) -> None:
        try:
            parts = [self._part(record, i) for i in range(len(record.takes))]
        except InputError as exc:
            self.book.move(record, SeqPhase.FAILED, stage="a part is missing",
                           error={"code": exc.code, "message": exc.message, "hint": exc.fix})
            return
        folder = self.settings.videos_dir
        for leftover in folder.glob(f".{record.sequence_id}.*.part"):  # a join (or its poster) a kill cut short
            leftover.unlink(missing_ok=True)
        dest = folder / f"{record.sequence_id}.mp4"
        # A shot that continued a clip may hold that clip first: the join keeps its own seconds, its last.
        keep = [float(shot["duration"]) if i and carried(record.spec) == "clip" else None
                for i, shot in enumerate(record.spec["shots"])]
        try:
            facts = await anyio.to_thread.run_sync(join, parts, dest, keep)
        except JoinFailed as exc:
            self.book.move(record, SeqPhase.FAILED, stage="the join failed",
                           error={"code": exc.code, "message": exc.message, "hint": exc.fix})
            return
        poster = await anyio.to_thread.run_sync(results.poster, dest, folder / f"{record.sequence_id}.jpg")
        sheet = await anyio.to_thread.run_sync(self._sheet, record)
        shots = []
        for i, (path, start) in enumerate(zip(parts, facts["starts"])):
            task_id = record.current(i)
            task = self.ledger.get(task_id or "")
            shots.append({"shot": i + 1, "task_id": task_id, "start_seconds": start, "video": str(path),
                          "prompt": task.request.get("prompt") if task else record.spec["shots"][i]["prompt"],
                          "provider_task_id": task.provider_task_id if task else None})
        sidecar = results.write_json(folder / f"{record.sequence_id}.json", {
            "task_id": record.sequence_id, "kind": record.kind, "provider": record.provider,
            "created_at": results.iso(record.created_at), "finished_at": results.iso(time.time()),
            "request": record.spec, "shots": shots, "video": dest.name, "poster": poster.name if poster else None,
            "output": facts, "cost_estimate_usd": record.cost_estimate})
        billable = [self.ledger.get(t[-1]).billable_seconds for t in record.takes if t and self.ledger.get(t[-1])]
        self.book.move(record, SeqPhase.SUCCEEDED, stage=f"joined {len(parts)} shots ({facts['joined_by']})",
                       local_path=str(dest), poster_path=str(poster) if poster else None, sidecar_path=str(sidecar),
                       output={**facts, "contact_sheet": sheet} if sheet else facts, billable_seconds=sum(b for b in billable if b is not None) if billable else None)
        for kept in self.planner.folder.glob(f"{record.sequence_id}-*-*"):  # a redo takes its frame or clip anew
            kept.unlink(missing_ok=True)

    def _sheet(self, record: SequenceRecord) -> dict[str, Any] | None:
        """One contact sheet of the takes of every shot made in several, to compare before picking (none when each
        shot has one take)."""
        rows, names = [], {}
        for index, ids in enumerate(record.takes if record.kind == "sequence" else []):
            if len(ids) < 2:
                continue
            for take, task_id in enumerate(ids):
                task = self.ledger.get(task_id)
                request = task.request if task is not None else {}
                rows.append(row_of(take + 1, request.get("seed"), task, shot=index + 1))
                names.update(dict.fromkeys(request.get("characters") or {}))
        if not rows:
            return None
        return sheet_in(self.settings.videos_dir, record.sequence_id, rows, self.cast.files(record.owner, names))

    def _part(self, record: SequenceRecord, index: int) -> Path:
        task_id = record.current(index) or ""
        return self.book.finished_video(task_id, record.owner)[0]
