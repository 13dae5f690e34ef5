"""Ledger rows as the task views the task tools return: a task's, and a sequence's or stitch's with its shots."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..providers.base import Capabilities
from ..schema import (
    PIXEL_SIZES,
    TERMINAL,
    ReferenceView,
    RequestSummary,
    ShotView,
    TakeView,
    TaskError,
    TaskView,
)
from ..store import SequenceRecord, Store, TaskRecord
from .results import iso
from .sequences import SeqPhase, is_sequence_id, made_by

TYPICAL_RUN_SECONDS = 180.0  # hosts report no progress; Wan 2.7 jobs typically take 1-5 minutes


def task_view(record: TaskRecord, caps: Capabilities | None) -> TaskView:
    req = record.request
    made = record.output or {}  # image-to-video takes its shape from the frame or clip: known once it is made
    width, height = PIXEL_SIZES.get((req["resolution"], req.get("aspect_ratio"))) or (
        int(made.get("width") or 0), int(made.get("height") or 0))
    summary = RequestSummary(
        prompt=req["prompt"], negative_prompt=req.get("negative_prompt"), resolution=req["resolution"],
        aspect_ratio=req.get("aspect_ratio") or "as the first frame or clip", duration=req["duration"], shot_type=req.get("shot_type"),
        prompt_extend=req.get("prompt_extend"), watermark=req.get("watermark", False), seed=req.get("seed"),
        width=width, height=height, characters=req.get("characters"), model=record.model,
    )
    finished = record.status in TERMINAL
    next_check = None
    left = None
    if not finished:
        next_check = 0.0  # get_task waits server-side (wait_seconds=50): call it now, not after a pause
        typical = 15.0 if caps is not None and caps.local else TYPICAL_RUN_SECONDS
        left = max(5.0, round(typical - (time.time() - record.created_at)))
    notice = provider_notice(caps)
    return TaskView(
        task_id=record.task_id,
        provider=record.provider,
        provider_task_id=record.provider_task_id,
        status=record.status,  # type: ignore[arg-type]
        stage=record.stage,
        progress=round(record.progress, 4) if record.progress is not None else None,
        created_at=iso(record.created_at) or "",
        updated_at=iso(record.updated_at) or "",
        finished_at=iso(record.finished_at),
        references=[ReferenceView.model_validate(r) for r in record.refs],
        request=summary,
        video_url=record.video_url if caps is None or not caps.local else None,
        video_url_expires_at=iso(record.video_url_expires_at),
        local_path=record.local_path,
        output=measured(record.output),
        poster_path=record.poster_path,
        sidecar_path=record.sidecar_path,
        cost_estimate_usd=record.cost_estimate,
        billable_seconds=record.billable_seconds,
        error=TaskError.model_validate(record.error) if record.error else None,
        next_check_seconds=next_check,
        estimated_seconds_left=left,
        notice=notice,
        warnings=[f"the video the host made differs from the request: {differs}; it is kept as delivered (and paid)"]
        if (differs := (record.output or {}).get("differs")) else [],
    )


def measured(output: dict | None) -> dict[str, int | float] | None:
    """The saved video's measured facts (width and height in whole pixels, seconds), without the note of how it
    differs."""
    if not output:
        return None
    return {k: (int(v) if k in ("width", "height") else float(v)) for k, v in output.items()
            if k in ("width", "height", "seconds")}


def provider_notice(caps: Capabilities | None) -> str | None:
    """What every result of this provider must say (the preview: that it is not the model's output)."""
    if caps is not None and caps.local:
        from ..providers.preview import NOTICE

        return NOTICE
    return None


def sequence_view(record: SequenceRecord, ledger: Store, capabilities: Callable[[str], Capabilities | None],
                  shot_views: list[ShotView] | None = None) -> TaskView:
    """A sequence or stitch row as the task view, its shots' views (or those given, for a dry run) and costs."""
    if record.kind == "takes":
        return takes_view(record, ledger, capabilities)
    spec = record.spec
    shots = spec["shots"]
    views = shot_views or []
    weights, done = 0.0, 0.0
    if shot_views is None:
        for i, shot in enumerate(shots):
            task_id = record.current(i)
            task = ledger.get(task_id) if task_id else None
            if task is None and task_id and is_sequence_id(task_id):  # a stitch's part may be a sequence
                part = ledger.get_sequence(task_id)
                views.append(ShotView(shot=i + 1, task_id=task_id, prompt=shot["prompt"], duration=shot["duration"],
                                      status=SeqPhase(part.phase).status if part else "gone",
                                      stage=part.stage if part else "no longer recorded",
                                      local_path=part.local_path if part else None))
                done += shot["duration"]
            else:
                views.append(_shot_view(i, shot, task_id, task, [t for t in record.takes[i] if t != task_id]
                                        ).model_copy(update={
                    "made_by": made_by(spec, i) if record.kind == "sequence" else None,
                    "cost_estimate_usd": task.cost_estimate if task else None}))
                done += shot["duration"] * _fraction(task)
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
        made, planned = ledger.sequence_cost(record.sequence_id)
        planned = planned if unfinished else 0.0
        cost = round(made + planned, 4) if record.cost_estimate is not None else None
    providers = record.provider.split("+")  # a stitch of parts from several hosts names each
    notices = [n for n in dict.fromkeys(provider_notice(capabilities(p)) for p in providers) if n]
    return TaskView(
        task_id=record.sequence_id, provider=record.provider, status=phase.status,  # type: ignore[arg-type]
        stage=record.stage, progress=progress, created_at=iso(record.created_at) or "",
        updated_at=iso(record.updated_at) or "", finished_at=iso(record.finished_at),
        request=summary, local_path=record.local_path, output=measured(record.output),
        poster_path=record.poster_path, sidecar_path=record.sidecar_path, cost_estimate_usd=cost,
        cost_made_usd=made, cost_planned_usd=planned, billable_seconds=record.billable_seconds,
        stitched=record.kind == "stitch",
        error=TaskError.model_validate(record.error) if record.error else None,
        next_check_seconds=0.0 if unfinished else None,
        estimated_seconds_left=max(5.0, round(TYPICAL_RUN_SECONDS * (1 - (progress or 0)))) if unfinished else None,
        notice=" ".join(notices) or None, shots=views,
        contact_sheet_path=((record.output or {}).get("contact_sheet") or {}).get("path"))

def _shot_view(index: int, shot: dict[str, Any], task_id: str | None, task: TaskRecord | None,
               earlier: list[str]) -> ShotView:
    if task is None:
        return ShotView(shot=index + 1, task_id=None, status="waiting", stage="not started yet",
                        prompt=shot["prompt"], duration=shot["duration"], earlier_task_ids=earlier)
    error = f"{task.error.get('message')}" if task.error else None
    return ShotView(shot=index + 1, task_id=task_id, status=task.status, stage=task.stage,
                    prompt=task.request.get("prompt", shot["prompt"]), duration=shot["duration"],
                    local_path=task.local_path, error=error, earlier_task_ids=earlier)

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


def takes_view(record: SequenceRecord, ledger: Store, capabilities: Callable[[str], Capabilities | None]) -> TaskView:
    """A group's view: its picked take's (or the first's) task view, under the group's id and state, with every
    take's state, seed and cost, and the contact sheet."""
    pick = record.spec.get("pick")
    tasks = [ledger.get(task_id) for task_id in record.takes[0]]
    shown = tasks[pick or 0] or next((t for t in tasks if t is not None), None)  # else none is created yet
    base = task_view(shown, capabilities(shown.provider)) if shown is not None else _unsent_view(record)
    views = []
    seeds = record.spec.get("seeds") or []
    made, _ = ledger.sequence_cost(record.sequence_id)  # as the caps count it
    for i, (task_id, task) in enumerate(zip(record.takes[0], tasks)):
        views.append(TakeView(
            take=i + 1, task_id=task_id, status=task.status if task else "waiting",
            stage=task.stage if task else "recorded; not sent yet", seed=seeds[i] if i < len(seeds) else None,
            cost_estimate_usd=task.cost_estimate if task else None, local_path=task.local_path if task else None,
            error=(task.error or {}).get("message") if task and task.error else None,
            picked=pick == i and SeqPhase(record.phase) is SeqPhase.SUCCEEDED))
    phase = SeqPhase(record.phase)
    done = sum(1 for v in views if v.status in TERMINAL)
    sheet = (record.output or {}).get("contact_sheet") or {}
    output = {k: v for k, v in (record.output or {}).items() if k != "contact_sheet"} or None
    return base.model_copy(update={
        "task_id": record.sequence_id, "status": phase.status, "stage": record.stage,
        "progress": 1.0 if phase.terminal else round(0.97 * done / max(len(views), 1), 4),
        "created_at": iso(record.created_at) or "", "updated_at": iso(record.updated_at) or "",
        "finished_at": iso(record.finished_at), "provider_task_id": None,
        "local_path": record.local_path, "poster_path": record.poster_path, "sidecar_path": record.sidecar_path,
        "output": base.output if output else None, "cost_estimate_usd": record.cost_estimate,
        "request": base.request.model_copy(update={"seed": (record.spec.get("request") or {}).get("seed")}),
        "cost_made_usd": round(made, 4), "billable_seconds": record.billable_seconds,
        "error": TaskError.model_validate(record.error) if record.error else None,
        "next_check_seconds": None if phase.terminal else 0.0, "takes": views,
        "contact_sheet_path": sheet.get("path"), "video_url": None, "video_url_expires_at": None})


def _unsent_view(record: SequenceRecord) -> TaskView:
    """A group none of whose takes exists yet (the moment between its admission and its first take's)."""
    shot = record.spec["shots"][0]
    req = record.spec.get("request") or {}
    width, height = PIXEL_SIZES.get((req.get("resolution"), req.get("aspect_ratio"))) or (0, 0)
    return TaskView(task_id=record.sequence_id, provider=record.provider, status="queued", stage=record.stage,
                    created_at=iso(record.created_at) or "", updated_at=iso(record.updated_at) or "",
                    request=RequestSummary(prompt=shot["prompt"], resolution=req.get("resolution") or "",
                                           aspect_ratio=req.get("aspect_ratio") or "", duration=shot["duration"],
                                           width=width, height=height))


def takes_dry_run(views: list[TaskView], seeds: list[int]) -> TaskView:
    """The dry run of a request with takes: the first take's, with every take's seed, cost and payload, and the
    cost of all of them."""
    costs = [v.cost_estimate_usd for v in views]
    total = None if any(c is None for c in costs) else round(sum(c for c in costs if c is not None), 4)
    takes = [TakeView(take=i + 1, task_id="", status="dry run", stage="nothing submitted", seed=seed,
                      cost_estimate_usd=v.cost_estimate_usd) for i, (v, seed) in enumerate(zip(views, seeds))]
    return views[0].model_copy(update={
        "takes": takes, "cost_estimate_usd": total, "shot_payloads": [v.payload or {} for v in views],
        "billable_seconds": sum(v.billable_seconds or 0 for v in views)})
