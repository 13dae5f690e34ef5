"""Making a sequence: each shot a task (with continuity, opening on the last frame of the shot before), then one join.

One driver per unfinished sequence runs in the server's task group, under a lease like a task's, and is
woken whenever one of its shots changes. It makes shots (writing each task id into the sequence before the
task exists), fails the sequence when a shot fails, and joins the shots when all are done. Everything it
decides comes from the ledger, so after a restart `start` takes every sequence up where it was.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..cast.roster import Cast, name_key
from ..cast.use import mentions
from ..config import Settings
from ..errors import Canceled, FollowingFailed, InputError, InputErrors, JoinFailed, NotFoundError, R2VError
from ..providers.registry import ProviderRegistry
from ..references.folders import Folders
from ..schema import PIXEL_SIZES, TERMINAL, GenerateArgs, SequenceArgs, ShotView, TaskError, TaskView
from ..store import Conflict, SequenceRecord, Store, TaskRecord
from ..store.files import atomic_write
from . import results
from .follower import LEASE_SECONDS, RESTARTS, Follower, _holder_is_dead, until_done
from .join import join, last_frame
from .quote import STITCH_MAX_SECONDS, Quote, budget_check, check_free_work, dry_run, quote
from .sequences import SeqPhase, SequenceBook
from .views import TYPICAL_RUN_SECONDS, measured

NOTHING_MADE = frozenset({"interrupted", "upload_failed"})  # task errors that leave no job at the host
RETAKES = 3  # takes of one shot, at most, when each ended before any job was made


def is_sequence_id(task_id: str) -> bool:
    return task_id.startswith("seq_")


class Sequencer:
    def __init__(self, settings: Settings, ledger: Store, providers: ProviderRegistry, follower: Follower, cast: Cast,
                 task_group: TaskGroup):
        self.settings = settings
        self.ledger = ledger
        self.book = SequenceBook(ledger)
        self.providers = providers
        self.follower = follower
        self.cast = cast
        self._tg = task_group
        self._driving: set[str] = set()
        self._wake: dict[str, anyio.Event] = {}
        self._changed: dict[str, anyio.Event] = {}
        self._shot_of: dict[str, str] = {}  # task id -> the sequence it is a shot of
        follower.listeners.append(self._task_changed)

    @property
    def folder(self) -> Path:
        folder = self.settings.data.sequences
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def start(self) -> int:
        pending = self.book.unfinished()
        for record in pending:
            self.drive(record.sequence_id)
        return len(pending)

    # ------------------------------------------------------------------ waking

    def changed(self, sequence_id: str) -> anyio.Event:
        return self._changed.setdefault(sequence_id, anyio.Event())

    def _notify(self, sequence_id: str) -> None:
        for table in (self._changed, self._wake):
            event = table.pop(sequence_id, None)
            if event is not None:
                event.set()

    def _task_changed(self, task_id: str) -> None:
        sequence_id = self._shot_of.get(task_id)
        if sequence_id is not None:
            self._notify(sequence_id)

    # ------------------------------------------------------------------ checking a shot

    def _shot_args(self, spec: dict[str, Any], index: int, first_frame: Path | None) -> GenerateArgs:
        shot = spec["shots"][index]
        seed = shot.get("seed") if shot.get("seed") is not None else spec.get("seed")
        return GenerateArgs(
            prompt=shot["prompt"], duration=shot["duration"], negative_prompt=spec.get("negative_prompt"),
            resolution=spec["resolution"], aspect_ratio=spec["aspect_ratio"], seed=seed,
            characters=shot["characters"] if shot.get("characters") is not None else named(spec, index),
            first_frame=str(first_frame) if first_frame else None, provider=spec["provider"], allow_duplicate=True,
            wait_seconds=0)

    def _placeholder(self, spec: dict[str, Any]) -> Path:
        """A stand-in for a frame that does not exist yet (the last frame of the shot before), to check and show."""
        from PIL import Image

        width, height = PIXEL_SIZES[(spec["resolution"], spec["aspect_ratio"])]
        path = self.folder / f"placeholder-{width}x{height}.png"
        if not path.exists():
            atomic_write(path, lambda part: Image.new("RGB", (width, height), (90, 90, 90)).save(part, format="PNG"))
        return path

    def _quote_shot(self, spec: dict[str, Any], index: int, owner: str, first_frame: Path | None) -> Quote:
        """The shot's request, checked like any generate_r2v request (the carried-over frame included)."""
        kept = {}
        if first_frame is not None:
            kept[first_frame.resolve()] = f"last frame of shot {index}"
        folders = Folders(roots=(), local_files=False, kept=kept)  # a shot reads only the server's own files
        try:
            return quote(self._shot_args(spec, index, first_frame), folders, settings=self.settings,
                         providers=self.providers, ledger=self.ledger, owner=owner, cast=self.cast)
        except InputErrors as exc:
            for error in exc.errors:  # say which shot it is about
                if error.field == "first_frame" and first_frame is not None:  # the frame continuity carries over
                    error.field = "continuity"
                    error.message = f"shot {index + 1} opens on the last frame of shot {index}: {error.message}"
                    error.fix = "name fewer characters in this shot, or pass continuity=false"
                error.field = f"shots[{index}].{error.field}" if error.field else f"shots[{index}]"
            raise

    def plan(self, args: SequenceArgs, owner: str) -> tuple[dict[str, Any], list[Quote]]:
        """Check every shot before anything is paid: the same checks a generation gets, continuity on a host that
        takes a first frame, and the cost of the whole against the caps. The quotes' files are open: close them."""
        provider = self.providers.get(args.provider, caller=owner)
        caps = provider.capabilities
        spec = args.model_dump(mode="json", include={"shots", "characters", "continuity", "negative_prompt",
                                                     "resolution", "aspect_ratio", "seed"})
        spec["provider"] = caps.name
        if args.continuity and len(args.shots) > 1 and "first_frame" not in caps.supports:
            from ..providers import hosts_supporting

            raise InputErrors([InputError(
                f"{caps.title} cannot open a shot on the last frame of the one before (it takes no first_frame)",
                field="continuity", fix=f"use provider={' or '.join(hosts_supporting('first_frame'))}, or pass "
                "continuity=false (shots then cut without carrying over)")])
        quotes: list[Quote] = []
        errors: list[InputError] = []
        try:
            for index in range(len(args.shots)):
                first = self._placeholder(spec) if args.continuity and index > 0 else None
                try:
                    quotes.append(self._quote_shot(spec, index, owner, first))
                except InputErrors as exc:
                    errors.extend(exc.errors)
            if errors:
                raise InputErrors(errors)
            # An early word; `create` decides it again, atomically, as the whole of the sequence's work.
            budget_check(_total_cost(quotes), self.settings, f"the whole sequence of {len(quotes)} shots")(
                self.ledger.spent(owner))
        except BaseException:
            for q in quotes:
                q.close()
            raise
        return spec, quotes

    # ------------------------------------------------------------------ the tools' verbs

    def dry_run(self, spec: dict[str, Any], quotes: list[Quote]) -> TaskView:
        views = [dry_run(q) for q in quotes]
        for q in quotes:
            q.close()
        record = self._new_record("dry-run", "", "sequence", spec, [[] for _ in quotes], quotes)
        view = self._view(record, shot_views=[
            ShotView(shot=i + 1, status="dry run", stage="nothing submitted", prompt=v.request.prompt,
                     duration=v.request.duration) for i, v in enumerate(views)])
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
        total = _total_cost(quotes)
        self.ledger.admit(owner=owner, sequence_id=sequence_id, new_sequence=record,
                          check=budget_check(total, self.settings, f"the whole sequence of {len(quotes)} shots"),
                          reserve={i: q.cost_estimate for i, q in enumerate(quotes) if q.cost_estimate})
        self.drive(sequence_id)
        return sequence_id

    def _new_record(self, sequence_id: str, owner: str, kind: str, spec: dict[str, Any], takes: list[list[str]],
                    quotes: list[Quote] | None = None, phase: SeqPhase = SeqPhase.RUNNING) -> SequenceRecord:
        now = time.time()
        cost = _total_cost(quotes) if quotes else None
        billable = sum(q.billable_seconds for q in quotes) if quotes else None
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
                path, output, prompt, provider = self._finished_video(task_id, owner)
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

    def _finished_video(self, task_id: str, owner: str) -> tuple[Path, dict[str, Any], str, str]:
        """The saved video of a finished task or sequence of `owner`, with its measured facts, its prompt and the
        provider(s) that made it."""
        unknown = NotFoundError(f"no task \"{task_id}\"", fix="use a task_id that generate_r2v or generate_sequence "
                                "returned; list_tasks shows recent ones")
        if is_sequence_id(task_id):
            seq = self.book.get(task_id)
            if seq is None or seq.owner != owner:
                raise unknown
            status, path, output, prompt = SeqPhase(seq.phase).status, seq.local_path, seq.output, \
                f"sequence {task_id}"
            provider = seq.provider
        else:
            task = self.ledger.get(task_id)
            if task is None or task.owner != owner:
                raise unknown
            status, path, output, prompt = task.status, task.local_path, task.output, task.request.get("prompt", "")
            provider = task.provider
        if status != "succeeded":
            raise InputError(f"{task_id} has not finished ({status})", limit="only succeeded tasks can be joined",
                             fix="wait for it with get_task, or leave it out")
        if not path or not Path(path).is_file():
            raise InputError(f"{task_id}'s video is no longer on disk ({path})", fix="leave it out, or make it again")
        return Path(path), output or {}, prompt, provider

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
        if prompt is not None:
            spec["shots"][index]["prompt"] = prompt
        spec["shots"][index]["seed"] = seed  # None: a new random seed, else a redo would most likely look the same
        if spec.get("seed") is not None and seed is None:
            spec["shots"][index]["seed"] = secrets.randbelow(2**31 - 1)
        first = self._placeholder(spec) if spec.get("continuity") and index > 0 else None
        q = self._quote_shot(spec, index, owner, first)  # the new take is checked before anything is paid
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
        if spec.get("continuity") and index + 1 < len(shots):
            return [f"shot {shot + 1} opens on the last frame of the old shot {shot}; redo it too for a seamless cut"]
        return []

    async def cancel(self, sequence_id: str, owner: str) -> None:
        """Stop the shots not yet done; the ones done stay on disk (and paid)."""
        record = self.record(sequence_id, owner)
        if SeqPhase(record.phase).terminal:
            return
        moved = self.book.move(record, SeqPhase.CANCELED, stage="canceled; shots not yet done were stopped")
        if moved is None:
            return await self.cancel(sequence_id, owner)  # it changed meanwhile: read it again
        self._notify(sequence_id)
        for takes in moved.takes:
            task = self.ledger.get(takes[-1]) if takes else None
            if task is not None and task.status not in TERMINAL:
                await self.follower.cancel(task)

    # ------------------------------------------------------------------ reading

    def record(self, sequence_id: str, owner: str) -> SequenceRecord:
        record = self.book.get(sequence_id)
        if record is None or record.owner != owner:
            raise NotFoundError(f"no task \"{sequence_id}\"", field="task_id",
                                fix="use a task_id returned by generate_r2v or generate_sequence; list_tasks shows "
                                    "recent ones")
        return record

    def view(self, sequence_id: str, owner: str) -> TaskView:
        return self._view(self.record(sequence_id, owner))

    def _view(self, record: SequenceRecord, shot_views: list[ShotView] | None = None) -> TaskView:
        from ..schema import RequestSummary
        from .views import provider_notice

        spec = record.spec
        shots = spec["shots"]
        views = shot_views or []
        weights, done = 0.0, 0.0
        if shot_views is None:
            for i, shot in enumerate(shots):
                task_id = record.current(i)
                task = self.ledger.get(task_id) if task_id else None
                if task is None and task_id and is_sequence_id(task_id):  # a stitch's part may be a sequence
                    part = self.book.get(task_id)
                    views.append(ShotView(shot=i + 1, task_id=task_id, prompt=shot["prompt"], duration=shot["duration"],
                                          status=SeqPhase(part.phase).status if part else "gone",
                                          stage=part.stage if part else "no longer recorded",
                                          local_path=part.local_path if part else None))
                    done += shot["duration"]
                else:
                    views.append(self._shot_view(i, shot, task_id, task, record.takes[i][:-1]))
                    done += shot["duration"] * self._fraction(task)
                weights += shot["duration"]
        phase = SeqPhase(record.phase)
        progress = None
        if shot_views is None:
            progress = 1.0 if phase is SeqPhase.SUCCEEDED else round(0.97 * done / max(weights, 1), 4)
        if record.kind == "stitch":
            width, height = spec.get("size") or (0, 0)
        else:
            width, height = PIXEL_SIZES[(spec["resolution"], spec["aspect_ratio"])]
        summary = RequestSummary(
            prompt=" / ".join(f"Shot {i + 1}: {v.prompt}" for i, v in enumerate(views))[:2000],
            negative_prompt=spec.get("negative_prompt"), resolution=spec.get("resolution") or "as the parts",
            aspect_ratio=spec.get("aspect_ratio") or "as the parts", duration=int(sum(s["duration"] for s in shots)),
            seed=spec.get("seed"), width=width, height=height)
        unfinished = not phase.terminal
        cost, made, planned = record.cost_estimate, None, None
        if record.kind == "sequence" and shot_views is None:  # a recorded sequence: what it made and still plans
            made, planned = self.ledger.sequence_cost(record.sequence_id)
            planned = planned if unfinished else 0.0
            cost = round(made + planned, 4) if record.cost_estimate is not None else None
        providers = record.provider.split("+")  # a stitch of parts from several hosts names each
        notices = [n for n in dict.fromkeys(provider_notice(self.providers.capabilities(p)) for p in providers) if n]
        return TaskView(
            task_id=record.sequence_id, provider=record.provider, status=phase.status,  # type: ignore[arg-type]
            stage=record.stage, progress=progress, created_at=results.iso(record.created_at) or "",
            updated_at=results.iso(record.updated_at) or "", finished_at=results.iso(record.finished_at),
            request=summary, local_path=record.local_path, output=measured(record.output),
            poster_path=record.poster_path, sidecar_path=record.sidecar_path, cost_estimate_usd=cost,
            cost_made_usd=made, cost_planned_usd=planned, billable_seconds=record.billable_seconds,
            stitched=record.kind == "stitch",
            error=TaskError.model_validate(record.error) if record.error else None,
            next_check_seconds=0.0 if unfinished else None,
            estimated_seconds_left=max(5.0, round(TYPICAL_RUN_SECONDS * (1 - (progress or 0)))) if unfinished else None,
            notice=" ".join(notices) or None, shots=views)

    @staticmethod
    def _shot_view(index: int, shot: dict[str, Any], task_id: str | None, task: TaskRecord | None,
                   earlier: list[str]) -> ShotView:
        if task is None:
            return ShotView(shot=index + 1, task_id=None, status="waiting", stage="not started yet",
                            prompt=shot["prompt"], duration=shot["duration"], earlier_task_ids=earlier)
        error = f"{task.error.get('message')}" if task.error else None
        return ShotView(shot=index + 1, task_id=task_id, status=task.status, stage=task.stage,
                        prompt=task.request.get("prompt", shot["prompt"]), duration=shot["duration"],
                        local_path=task.local_path, error=error, earlier_task_ids=earlier)

    @staticmethod
    def _fraction(task: TaskRecord | None) -> float:
        if task is None:
            return 0.0
        if task.status == "succeeded":
            return 1.0
        if task.status in TERMINAL:
            return 0.0
        if task.progress is not None:
            return task.progress
        return min(0.95, (time.time() - task.created_at) / TYPICAL_RUN_SECONDS)

    # ------------------------------------------------------------------ driving

    def drive(self, sequence_id: str) -> None:
        """Make sure a driver follows this sequence (on the event loop's thread)."""
        if sequence_id not in self._driving:
            self._driving.add(sequence_id)
            self._tg.start_soon(self._drive_loop, sequence_id)

    async def _drive_loop(self, sequence_id: str) -> None:
        try:
            await until_done(lambda: self._drive(sequence_id), f"driving {sequence_id}", self.settings.time_scale,
                             lambda exc: self._give_up(sequence_id, exc))
        finally:
            self._driving.discard(sequence_id)
            self.ledger.release_lease(sequence_id, self.follower.holder)
            self._notify(sequence_id)

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
            held = self.ledger.take_lease(sequence_id, self.follower.holder, LEASE_SECONDS, _holder_is_dead)
            if held:  # another server on this ledger drives it
                await anyio.sleep(min(held, self.settings.progress_interval_seconds))
                self._notify(sequence_id)
                continue
            for takes in record.takes:
                for task_id in takes:
                    self._shot_of[task_id] = sequence_id
            wake = self._wake.setdefault(sequence_id, anyio.Event())
            if SeqPhase(record.phase) is SeqPhase.JOINING:
                await self._join(record)
            elif not await self._step(record):
                with anyio.move_on_after(max(1.0, self.settings.progress_interval_seconds * 5)):
                    await wake.wait()
            self._notify(sequence_id)

    async def _step(self, record: SequenceRecord) -> bool:
        """One decision; True when something was written (read the row again), False to wait for a shot."""
        shots = record.spec["shots"]
        ids = [record.current(index) for index in range(len(shots))]
        tasks: list[TaskRecord | None] = [self.ledger.get(task_id) if task_id else None for task_id in ids]
        for index, (task_id, task) in enumerate(zip(ids, tasks)):
            if task_id is None or task is not None:
                continue
            # Recorded, never created (a crash, or a redo): make it now, unless it opens on the last frame of a shot
            # that is still being made (a redo beside a redo): then it waits for that shot.
            before = tasks[index - 1] if index else None
            if record.spec.get("continuity") and index and (before is None or before.status != "succeeded"):
                continue
            await self._make(record, index, task_id)
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
        if ended_badly and not active:
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
            self.book.move(record, SeqPhase.JOINING, stage="joining the shots")
            return True
        if ended_badly:
            return False  # the other shots still running end first
        for index, task in enumerate(tasks):
            if task is not None or record.current(index) is not None:
                continue
            before = tasks[index - 1] if index else None
            if record.spec.get("continuity") and index and (before is None or before.status != "succeeded"):
                break  # opens on the shot before's last frame: wait for it
            takes = [list(t) for t in record.takes]
            takes[index].append(self.follower.new_task_id())
            if self.book.move(record, SeqPhase.RUNNING, takes=takes, stage=f"making shot {index + 1}") is None:
                return True  # changed meanwhile (a cancel): decide again
            return True  # the next round makes the recorded task
        return False

    async def _make(self, record: SequenceRecord, index: int, task_id: str) -> None:
        """Create the shot's task under the id already recorded in the sequence, admitted against the caps with its
        reservation used up."""
        first = None
        try:
            if record.spec.get("continuity") and index > 0:
                before = self.ledger.get(record.current(index - 1) or "")
                if before is None or not before.local_path:
                    raise JoinFailed(f"shot {index}'s video is not on disk", fix=f"redo_shot shot={index}")
                first = self.folder / f"{record.sequence_id}-{task_id}-first.png"
                await anyio.to_thread.run_sync(last_frame, Path(before.local_path), first)
            q = await anyio.to_thread.run_sync(self._quote_shot, record.spec, index, record.owner, first)
            fresh = self.book.get(record.sequence_id)
            if fresh is None or SeqPhase(fresh.phase).terminal or fresh.current(index) != task_id \
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
        try:
            facts = await anyio.to_thread.run_sync(join, parts, dest)
        except JoinFailed as exc:
            self.book.move(record, SeqPhase.FAILED, stage="the join failed",
                           error={"code": exc.code, "message": exc.message, "hint": exc.fix})
            return
        poster = await anyio.to_thread.run_sync(results.poster, dest, folder / f"{record.sequence_id}.jpg")
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
                       output=facts, billable_seconds=sum(b for b in billable if b is not None) if billable else None)
        for carried in self.folder.glob(f"{record.sequence_id}-*-first.png"):  # a redo extracts its frame anew
            carried.unlink(missing_ok=True)

    def _part(self, record: SequenceRecord, index: int) -> Path:
        task_id = record.current(index) or ""
        return self._finished_video(task_id, record.owner)[0]


def named(spec: dict[str, Any], index: int) -> list[str]:
    """The sequence's characters that shot `index` names (@name): a shot brings, and pays for, only its own cast."""
    listed = list(spec.get("characters") or [])
    said = {name_key(name) for name in mentions(spec["shots"][index]["prompt"], listed)}
    return [name for name in listed if name_key(name) in said]


def _total_cost(quotes: list[Quote]) -> float | None:
    """The whole sequence's estimate: unknown when any shot's is."""
    costs = [q.cost_estimate for q in quotes]
    return None if any(c is None for c in costs) else round(sum(c for c in costs if c is not None), 4)


def _facts(output: dict[str, Any] | None) -> dict[str, int | float] | None:
    from .views import measured

    return measured(output)
