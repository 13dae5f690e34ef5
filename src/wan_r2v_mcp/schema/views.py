"""The task tools: what they take, and the views every tool returns (`TaskView` is what each task tool returns)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from .base import WAIT_DEFAULT, WAIT_WORDS, Handle, Status, _Wire
from .sequences import ShotView, TakeView


class TaskRef(_Wire):
    """`cancel_task` arguments."""

    model_config = ConfigDict(extra="forbid")

    task_id: Handle = Field(description="A generate tool's task_id.")


class GetTaskArgs(TaskRef):
    """`get_task` arguments."""

    wait_seconds: float = Field(default=WAIT_DEFAULT, ge=0, description=WAIT_WORDS)


class ListTasksArgs(_Wire):
    """`list_tasks` arguments."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=20, ge=1, le=100, description="How many.")
    status: Literal["all", "queued", "running", "succeeded", "failed", "canceled"] = Field(
        default="all")


# ---------------------------------------------------------------- what the tools return


class ReferenceView(_Wire):
    label: str = Field(description='How the prompt names it: "Image 1", "Video 1", "First frame", "Voice of Video 1".')
    kind: Literal["image", "video", "audio", "unknown"]
    role: Literal["reference_image", "reference_video", "first_frame", "voice", "audio", "last_frame", "first_clip",
                  "driving_audio", "video"]
    source: str = Field(description="As given (data URIs shortened).")
    location: Literal["local", "url", "data"]
    format: str | None = None
    size_bytes: int | None = None
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    ok: bool = True
    problems: list[str] = Field(default_factory=list)


class PromptFinding(_Wire):
    severity: Literal["error", "warning"]
    message: str
    fix: str


class TaskError(_Wire):
    code: str
    message: str
    hint: str


class RequestSummary(_Wire):
    prompt: str
    negative_prompt: str | None = None
    resolution: str
    aspect_ratio: str
    duration: int
    shot_type: str | None = None
    prompt_extend: bool | None = None
    watermark: bool = False
    seed: int | None = None
    width: int
    height: int
    characters: dict[str, str] | None = Field(default=None, description="Each character's label in the prompt.")
    model: str | None = None  # the model that makes it, as the task row records it


class TaskView(_Wire):
    # The fields its tools' outputSchema names (each tool's text and this model's docs cover the rest): three tools
    # return it, and every byte of tools/list is read by every client at every connection.
    published: ClassVar[tuple[str, ...]] = ("task_id", "status", "stage")

    task_id: str
    provider: str
    provider_task_id: str | None = None
    status: Status
    stage: str = Field(description="What is happening now, in a few words.")
    progress: float | None = Field(default=None, description="0 to 1, where the host reports it.")
    created_at: str
    updated_at: str
    finished_at: str | None = None
    references: list[ReferenceView] = Field(default_factory=list)
    request: RequestSummary
    video_url: str | None = None
    video_url_expires_at: str | None = None
    local_path: str | None = Field(default=None, description="The video on the server's disk.")
    output: dict[str, int | float] | None = Field(default=None, description="The saved video as measured: width, height, "
                                            "seconds (with a first_frame, its shape follows the frame).")
    download_url: str | None = Field(default=None, description="Over HTTP: the video, served by this server to "
                                     "this caller only; expires (get_task gives a fresh one).")
    poster_url: str | None = None
    poster_path: str | None = None
    sidecar_path: str | None = None
    cost_estimate_usd: float | None = None
    cost_made_usd: float | None = Field(default=None, description="A sequence: what its takes cost, redos included "
                                        "(made or being made).")
    cost_planned_usd: float | None = Field(default=None, description="A sequence: what the shots still to make "
                                           "will cost.")
    billable_seconds: float | None = None
    error: TaskError | None = None
    stitched: bool = Field(default=False, description="A join of finished videos (stitch): no shots to redo.")
    next_check_seconds: float | None = Field(
        default=None, description="When unfinished: 0, call get_task(task_id, wait_seconds=50) now (it waits).")
    estimated_seconds_left: float | None = None
    notice: str | None = None
    warnings: list[str] = Field(default_factory=list, description="What may not come out as meant (the prompt's "
                                "naming, say); nothing blocked the request.")
    duplicate: bool = Field(default=False, description="An identical earlier request's task, returned instead of "
                            "paying again (allow_duplicate=true submits anyway).")
    dry_run: bool = False
    payload: dict[str, Any] | None = Field(default=None, description="dry_run only: the exact host payload.")
    shots: list[ShotView] | None = Field(default=None, description="A sequence's shots (task_id seq_...).")
    shot_payloads: list[dict[str, Any]] | None = Field(default=None, description="dry_run of a sequence: each "
                                                       "shot's host payload (of a group: each take's).")
    takes: list[TakeView] | None = Field(default=None, description="A group's takes (task_id tk_...); a sequence's "
                                         "shot lists its other takes in earlier_task_ids.")
    contact_sheet_path: str | None = Field(default=None, description="The takes of a group or sequence side by side "
                                           "at the same moments, labelled with take and seed (JPEG, at most 1 MB).")


class TaskList(_Wire):
    tasks: list[TaskView]
    total: int = Field(description="Tasks matching the filter, of which `tasks` are the newest.")


class ReferenceReport(_Wire):
    ok: bool = Field(description="Every reference is acceptable and the prompt names only ones that exist.")
    references: list[ReferenceView] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list, description="Request-level problems: counts, voices, prompt.")
    prompt_findings: list[PromptFinding] = Field(default_factory=list)
    billable_input_seconds: float = Field(
        default=0.0, description="Reference-video seconds a host bills: at most 5 s shared among the videos; "
        "add the output duration for the total.")
    directory: str | None = None
    candidates: list[ReferenceView] = Field(default_factory=list, description="Media files found in `directory`.")
    more: int = Field(default=0, description="Media files in `directory` not listed because of `limit`.")
