"""The model's inputs and the task view, defined once.

`R2VRequest` is the single source of the `generate_r2v` input schema, of validation and of every
provider mapping; `TaskView` is what every task tool returns. Limits are Wan 2.7 R2V's own
(../shared/reference/providers.md §1); a host's narrower limits live in its provider's capabilities.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MODEL_ID = "wan2.7-r2v"

Resolution = Literal["720p", "1080p"]
AspectRatio = Literal["16:9", "9:16", "1:1", "4:3", "3:4"]
ShotType = Literal["single", "multi"]
Status = Literal["queued", "running", "succeeded", "failed", "canceled"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "canceled"})

# Output pixel size for each resolution x ratio (providers.md §1).
PIXEL_SIZES: dict[tuple[str, str], tuple[int, int]] = {
    ("720p", "16:9"): (1280, 720),
    ("720p", "9:16"): (720, 1280),
    ("720p", "1:1"): (960, 960),
    ("720p", "4:3"): (1104, 832),
    ("720p", "3:4"): (832, 1104),
    ("1080p", "16:9"): (1920, 1080),
    ("1080p", "9:16"): (1080, 1920),
    ("1080p", "1:1"): (1440, 1440),
    ("1080p", "4:3"): (1648, 1248),
    ("1080p", "3:4"): (1248, 1648),
}
OUTPUT_FPS = 30


class Limits:
    """Wan 2.7 R2V's limits, in one place (providers.md §1)."""

    PROMPT_MAX = 5000
    NEGATIVE_PROMPT_MAX = 500
    REFERENCES_MIN = 1
    REFERENCES_MAX = 5
    DURATION_MIN = 2
    DURATION_MAX = 15
    DURATION_MAX_WITH_VIDEO = 10
    DURATION_DEFAULT = 5
    SEED_MAX = 2_147_483_647
    DATA_URI_MAX_BYTES = 1_000_000

    IMAGE_FORMATS = ("jpeg", "png", "bmp", "webp")
    IMAGE_SIDE = (240, 8000)
    IMAGE_MAX_BYTES = 20 * 1024 * 1024
    VIDEO_FORMATS = ("mp4", "mov")
    VIDEO_SECONDS = (1.0, 30.0)
    VIDEO_SIDE = (240, 4096)
    VIDEO_MAX_BYTES = 100 * 1024 * 1024
    VOICE_FORMATS = ("wav", "mp3")
    VOICE_SECONDS = (1.0, 10.0)
    VOICE_MAX_BYTES = 15 * 1024 * 1024
    ASPECT_EXTREME = 8.0


_SOURCE = "absolute paths (or ~/...), file:// or https URLs, or small data: URIs"


class Voice(BaseModel):
    """A voice sample for the character of one reference."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(description='The reference it voices: "Image 1" or "Video 1".')
    audio: str = Field(description="The audio: " + _SOURCE + ".")


class ReferenceSet(BaseModel):
    """The reference media of a request, and how the prompt names them."""

    model_config = ConfigDict(extra="forbid")

    reference_images: list[str] = Field(
        default_factory=list,
        description=(
            f"Images (jpg, png, bmp, webp; 240-8000 px a side; up to 20 MB): {_SOURCE}. Named \"Image 1\", "
            "\"Image 2\"... in this order; with the videos, 1 to 5 in all."
        ),
    )
    reference_videos: list[str] = Field(
        default_factory=list,
        description=(
            "Videos (mp4, mov; 1-30 s; 240-4096 px a side; up to 100 MB), given as images are. Named \"Video 1\", "
            "\"Video 2\"... numbered apart from the images."
        ),
    )
    first_frame: str | None = Field(
        default=None,
        description=(
            "An image the video opens on (DashScope, inference.sh); the output then takes its aspect ratio. Not "
            "one of the 1-5 references, and not named in the prompt."
        ),
    )
    voices: list[Voice] = Field(
        default_factory=list,
        description=(
            'Voice timbre for characters, e.g. [{"label": "Video 1", "audio": "/Users/me/alice.wav"}]: wav or mp3, '
            "1-10 s, up to 15 MB; the label must be a reference of this request. Only the timbre is used: write "
            "the lines in the prompt (Image 1 says: \"...\"). DashScope takes one per reference, inference.sh one "
            "in all; the others none. A map {label: audio} is accepted too."
        ),
    )

    @field_validator("voices", mode="before")
    @classmethod
    def _voices_as_list(cls, value: Any) -> Any:
        """The older map form, {"Video 1": "alice.wav"}, is the same list."""
        if isinstance(value, dict):
            return [{"label": k, "audio": v} for k, v in value.items()]
        return value


class R2VRequest(ReferenceSet):
    """One Wan 2.7 reference-to-video generation, as the agent asks for it."""

    prompt: str = Field(
        min_length=1,
        max_length=Limits.PROMPT_MAX,
        description=(
            'What happens in the video, naming references as "Image 1", "Video 2" (numbered per '
            "type, in list order), e.g. \"Video 1 hands Image 1 a coffee cup in a sunlit cafe.\" "
            f"1-{Limits.PROMPT_MAX} characters."
        ),
    )
    negative_prompt: str | None = Field(
        default=None,
        max_length=Limits.NEGATIVE_PROMPT_MAX,
        description=f"What to avoid, up to {Limits.NEGATIVE_PROMPT_MAX} characters.",
    )
    resolution: Resolution = Field(default="1080p", description="Output resolution.")
    aspect_ratio: AspectRatio = Field(
        default="16:9", description="Output aspect ratio (ignored by the model when first_frame is given)."
    )
    duration: int = Field(
        default=Limits.DURATION_DEFAULT,
        ge=Limits.DURATION_MIN,
        le=Limits.DURATION_MAX,
        description=(
            f"Length in seconds, {Limits.DURATION_MIN}-{Limits.DURATION_MAX}; at most "
            f"{Limits.DURATION_MAX_WITH_VIDEO} with any reference video; Replicate and fal: at most 10."
        ),
    )
    shot_type: ShotType | None = Field(
        default=None,
        description="single or multi: Replicate and fal only; elsewhere write the shots in the prompt "
        "(\"Shot 1 [0-3s]: ...\").",
    )
    prompt_extend: bool | None = Field(
        default=None, description="DashScope, inference.sh: the host rewrites the prompt for detail (on there by "
        "default); false keeps your words."
    )
    watermark: bool = Field(default=False, description="Add the host's 'AI generated' mark.")
    seed: int | None = Field(
        default=None, ge=0, le=Limits.SEED_MAX, description=f"Random seed, 0-{Limits.SEED_MAX}; random when omitted."
    )

    @property
    def reference_count(self) -> int:
        return len(self.reference_images) + len(self.reference_videos)


class ReferenceQuery(ReferenceSet):
    """`list_references` arguments: references to label and check, and/or a folder to list."""

    prompt: str | None = Field(default=None, description="Optional prompt to check against the references' labels.")
    directory: str | None = Field(
        default=None, description="A folder to list the media files of (not recursive), to find references.")
    limit: int = Field(default=50, ge=1, le=1000, description="At most this many files from `directory`.")
    probe_urls: bool = Field(
        default=False, description="Also read the first bytes of https references to check what they are "
        "(public addresses only). Off by default: hosts fetch URLs themselves.")



class GenerateOptions(BaseModel):
    """How this call runs, as opposed to what the model makes."""

    model_config = ConfigDict(extra="forbid")

    provider: str | None = Field(
        default=None,
        description="preview (free offline draft), dashscope, replicate, inferencesh or fal; default: the "
        "configured one.",
    )
    wait_seconds: float = Field(
        default=50,
        ge=0,
        description="Seconds this call waits for the result, with progress (default and cap: 50 s); 0 returns "
        "the task_id at once.",
    )
    dry_run: bool = Field(
        default=False,
        description="Check, label, estimate the cost and show the host payload; nothing is sent or paid.",
    )
    allow_duplicate: bool = Field(
        default=False,
        description="Submit even when an identical request is running or just finished (else that task "
        "comes back).",
    )


class GenerateArgs(R2VRequest, GenerateOptions):
    """Every `generate_r2v` argument: the request plus the call options."""

    def request(self) -> R2VRequest:
        return R2VRequest.model_validate(self.model_dump(include=set(R2VRequest.model_fields)))


class TaskRef(BaseModel):
    """`cancel_task` arguments."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(min_length=1, max_length=100, description="The task_id that generate_r2v returned.")


class GetTaskArgs(TaskRef):
    """`get_task` arguments."""

    wait_seconds: float = Field(default=0, ge=0, description="Wait server-side up to this long (capped, 50 s by "
                                "default) for the task to end, sending progress; 0 answers at once.")


class ListTasksArgs(BaseModel):
    """`list_tasks` arguments."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=20, ge=1, le=100, description="How many of the newest tasks to return.")
    status: Status | None = Field(default=None, description="Only tasks in this status.")


# ---------------------------------------------------------------- what the tools return


class ReferenceView(BaseModel):
    label: str = Field(description='How the prompt names it: "Image 1", "Video 1", "First frame", "Voice of Video 1".')
    kind: Literal["image", "video", "audio", "unknown"]
    role: Literal["reference_image", "reference_video", "first_frame", "voice"]
    source: str = Field(description="As given (data URIs shortened).")
    location: Literal["local", "url", "data"]
    format: str | None = None
    size_bytes: int | None = None
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    ok: bool = True
    problems: list[str] = Field(default_factory=list)


class PromptFinding(BaseModel):
    severity: Literal["error", "warning"]
    message: str
    fix: str


class TaskError(BaseModel):
    code: str
    message: str
    hint: str


class RequestSummary(BaseModel):
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


class TaskView(BaseModel):
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
    output: dict[str, float] | None = Field(default=None, description="The saved video as measured: width, height, "
                                            "seconds (with a first_frame, its shape follows the frame).")
    download_url: str | None = Field(default=None, description="Over HTTP: the video, served by this server to "
                                     "this caller only; expires (get_task gives a fresh one).")
    poster_url: str | None = None
    poster_path: str | None = None
    sidecar_path: str | None = None
    cost_estimate_usd: float | None = None
    billable_seconds: float | None = None
    error: TaskError | None = None
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


class TaskList(BaseModel):
    tasks: list[TaskView]
    total: int = Field(description="Tasks matching the filter, of which `tasks` are the newest.")


class ReferenceReport(BaseModel):
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
