"""A ledger row as the task view every task tool returns."""

from __future__ import annotations

import time

from ..providers.base import Capabilities
from ..schema import (
    PIXEL_SIZES,
    TERMINAL,
    ReferenceView,
    RequestSummary,
    TaskError,
    TaskView,
)
from ..store import TaskRecord
from .results import iso

TYPICAL_RUN_SECONDS = 180.0  # hosts report no progress; Wan 2.7 jobs typically take 1-5 minutes


def task_view(record: TaskRecord, caps: Capabilities | None) -> TaskView:
    req = record.request
    width, height = PIXEL_SIZES[(req["resolution"], req["aspect_ratio"])]
    summary = RequestSummary(
        prompt=req["prompt"], negative_prompt=req.get("negative_prompt"), resolution=req["resolution"],
        aspect_ratio=req["aspect_ratio"], duration=req["duration"], shot_type=req.get("shot_type"),
        prompt_extend=req.get("prompt_extend"), watermark=req.get("watermark", False), seed=req.get("seed"),
        width=width, height=height, characters=req.get("characters"),
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
