"""The model's inputs and the task view, defined once.

`R2VRequest` is the single source of the `generate_r2v` input schema, of validation and of every
provider mapping; `TaskView` is what every task tool returns. Limits are Wan 2.7 R2V's own
(https://docs.platform.qianwenai.com/docs/api-reference/video-generation/wan27-reference-to-video/create-task); a host's narrower limits live in its provider's capabilities.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator


class _Wire(BaseModel):
    """Every model here: its validator is built when first used, not at import (start-up is felt at every launch;
    the result views, say, are first needed at the first call)."""

    model_config = ConfigDict(defer_build=True)

MODEL_ID = "wan2.7-r2v"
T2V_MODEL_ID = "wan2.7-t2v"
I2V_MODEL_ID = "wan2.7-i2v"
EDIT_MODEL_ID = "wan2.7-videoedit"
WAN3_MODEL_ID = "wan3.0-video"  # Wan 3.0's reference mode, in preview (see models/wan3.py)
R2VModel = Literal["wan2.7-r2v", "wan3.0-video"]

Resolution = Literal["720p", "1080p"]
AspectRatio = Literal["16:9", "9:16", "1:1", "4:3", "3:4"]
ShotType = Literal["single", "multi"]
Status = Literal["queued", "running", "succeeded", "failed", "canceled"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "canceled"})

# Output pixel size for each resolution x ratio (the model's API reference, above).
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
    """Wan 2.7 R2V's limits, in one place (the model's API reference, above)."""

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
    # wan2.7-t2v's `input.audio_url` (its API reference, platform.qianwenai.com/docs/api-reference/video-generation/
    # wan27-text-to-video/create-task): wav or mp3, 2-30 s, 15 MB; some hosts take 3-30 s (their routes say so).
    AUDIO_SECONDS = (2.0, 30.0)
    # wan2.7-i2v (platform.qianwenai.com/docs/api-reference/video-generation/wan27-image-to-video/create-task): the clip
    # it continues lasts 2-10 s; its inputs come in six combinations only, each at most once.
    CLIP_SECONDS = (2.0, 10.0)
    # wan2.7-videoedit (Alibaba's video-editing guide, platform.qianwenai.com/docs/developer-guides/video-generation/
    # video-editing): one source clip of 2-10 s, 0-4 reference images, duration 0 (keep it whole) or 2-10.
    EDIT_SOURCE_SECONDS = (2.0, 10.0)
    EDIT_REFERENCES_MAX = 4
    EDIT_DURATION_MAX = 10
    # Wan 3.0's reference mode (Alibaba's wan3.0-video API reference, platform.qianwenai.com/docs/api-reference/
    # video-generation/wan30-video/create-task): 10 images, 5 clips and 5 audio (1-15 s each, 15 s of each kind in
    # all); 2-30 s, a clip's seconds counted in the 30.
    WAN3_IMAGES_MAX = 10
    WAN3_VIDEOS_MAX = 5
    WAN3_AUDIO_MAX = 5
    WAN3_MEDIA_SECONDS = (1.0, 15.0)
    WAN3_KIND_TOTAL_SECONDS = 15.0
    WAN3_DURATION_MAX = 30
    I2V_MODES = (frozenset({"first_frame"}), frozenset({"first_frame", "driving_audio"}),
                 frozenset({"first_frame", "last_frame"}), frozenset({"first_frame", "last_frame", "driving_audio"}),
                 frozenset({"first_clip"}), frozenset({"first_clip", "last_frame"}))


_SOURCE = "absolute (or ~/) paths, file:// or https URLs, small data: URIs"


class Voice(_Wire):
    """A voice sample for the character of one reference."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(description='"Image 1", "Video 1"...')
    audio: str = Field(description="wav or mp3, given as the images.")


class ReferenceSet(_Wire):
    """The reference media of a request, and how the prompt names them."""

    model_config = ConfigDict(extra="forbid")

    reference_images: list[str] = Field(
        default_factory=list,
        description=(
            f"jpg, png, bmp, webp; 240-8000 px; 20 MB: {_SOURCE}. \"Image 1\"... in order; 1-5 with the videos "
            "(wan3.0: 10)."
        ),
    )
    reference_videos: list[str] = Field(
        default_factory=list,
        description=(
            "mp4, mov; 1-30 s; 240-4096 px; 100 MB; given like images; \"Video 1\"..."
        ),
    )
    first_frame: str | None = Field(
        default=None,
        description=(
            "An image it opens on, giving its shape (DashScope, inference.sh)."
        ),
    )
    voices: list[Voice] = Field(
        default_factory=list,
        description=(
            'A reference\'s voice (1-10 s): [{"label": "Video 1", "audio": "a.wav"}]. DashScope: one per reference; '
            "inference.sh: one."
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
            'What happens, naming references "Image 1", "Video 1" (per type, in list order) and characters '
            '@name: "Video 1 hands Image 1 a cup."'
        ),
    )
    negative_prompt: str | None = Field(
        default=None,
        max_length=Limits.NEGATIVE_PROMPT_MAX,
        description="What to avoid.",
    )
    resolution: Resolution = Field(default="1080p", description="Output resolution.")
    aspect_ratio: AspectRatio = Field(
        default="16:9", description="Ignored with a first_frame."
    )
    duration: int = Field(
        default=Limits.DURATION_DEFAULT,
        ge=Limits.DURATION_MIN,
        le=Limits.WAN3_DURATION_MAX,
        description=(
            f"Seconds: up to {Limits.DURATION_MAX}; {Limits.DURATION_MAX_WITH_VIDEO} with a reference video or on "
            "Replicate, fal; 30 on wan3.0."
        ),
    )
    shot_type: ShotType | None = Field(
        default=None,
        description="Replicate, fal; elsewhere write shots in the prompt (\"Shot 1 [0-3s]: ...\").",
    )
    prompt_extend: bool | None = Field(
        default=None, description="DashScope, inference.sh: false stops the host rewriting the prompt."
    )
    watermark: bool = Field(default=False, description="Add the host's 'AI generated' mark.")
    seed: int | None = Field(
        default=None, ge=0, le=Limits.SEED_MAX, description="Random when omitted."
    )
    model: R2VModel = Field(default=MODEL_ID, description=(
        "Wan 3.0 preview: dashscope, fal; voice k is \"Audio k\"."))

    @property
    def reference_count(self) -> int:
        return len(self.reference_images) + len(self.reference_videos)


class ReferenceQuery(ReferenceSet):
    """`list_references` arguments: references to label and check, and/or a folder to list."""

    prompt: str | None = Field(default=None, description="A prompt to check against the labels.")
    directory: str | None = Field(
        default=None, description="A folder whose media files to list.")
    limit: int = Field(default=50, ge=1, le=1000, description="Files listed at most.")
    probe_urls: bool = Field(default=False, description="Also read https references' first bytes.")



# An id or name a tool was given back: bounded against hostile input, its bounds kept out of tools/list (they are
# nothing an agent plans with; an id over them is refused as any argument is).
Handle = Annotated[str, Field(min_length=1, max_length=100), WithJsonSchema({"type": "string"})]

TAKES_MAX = 4  # candidates of one request, each a task of its own (Google's Veo server offers 1-4 variants)

# Every tool that can wait waits the same by default: a client that listens to progress gets the video in one
# call; one that does not is answered within WAN_R2V_QUIET_WAIT whatever this says (tools/shape.patience).
WAIT_DEFAULT = 50
WAIT_WORDS = "Seconds to wait, with progress (cap 50); 0 answers at once."


class RunOptions(_Wire):
    """How this call runs, as opposed to what the model makes."""

    model_config = ConfigDict(extra="forbid")

    provider: str | None = Field(
        default=None,
        description="preview (free offline draft), dashscope, replicate, inferencesh or fal.",
    )
    wait_seconds: float = Field(default=WAIT_DEFAULT, ge=0, description=WAIT_WORDS)
    dry_run: bool = Field(
        default=False,
        description="Show cost and payload; nothing sent or paid.",
    )


class GenerateOptions(RunOptions):
    """`generate_r2v`'s call options."""

    allow_duplicate: bool = Field(
        default=False,
        description="Pay again for an identical request just made.",
    )
    variants: int = Field(default=1, ge=1, le=TAKES_MAX, description="Takes, each its own seed and cost; "
                          "pick_take picks.")


class CastChoice(_Wire):
    """Saved characters to bring into a request."""

    characters: list[str] = Field(
        default_factory=list, max_length=Limits.REFERENCES_MAX,
        description="Saved characters (save_character), named @name in the prompt.")


class GenerateArgs(R2VRequest, CastChoice, GenerateOptions):
    """Every `generate_r2v` argument: the request plus the call options."""

    def request(self) -> R2VRequest:
        return R2VRequest.model_validate(self.model_dump(include=set(R2VRequest.model_fields)))


class T2VRequest(_Wire):
    """One Wan 2.7 text-to-video generation: a prompt, and optionally the audio the video follows."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=Limits.PROMPT_MAX,
                        description='What happens ("Shot 1 [0-3s]: ..." for shots).')
    negative_prompt: str | None = Field(default=None, max_length=Limits.NEGATIVE_PROMPT_MAX, description="What to avoid.")
    audio: str | None = Field(
        default=None, description="wav or mp3, 2-30 s (3-30 on Replicate, fal; not inference.sh) the video follows.")
    resolution: Resolution = Field(default="1080p", description="Output resolution.")
    aspect_ratio: AspectRatio = Field(default="16:9", description="inference.sh: 16:9 only.")
    duration: int = Field(default=Limits.DURATION_DEFAULT, ge=Limits.DURATION_MIN, le=Limits.DURATION_MAX,
                          description="Seconds.")
    prompt_extend: bool | None = Field(default=None, description="false stops the host rewriting the prompt.")
    watermark: bool = Field(default=False, description="DashScope, inference.sh: the 'AI generated' mark.")
    seed: int | None = Field(default=None, ge=0, le=Limits.SEED_MAX, description="Random when omitted.")


class T2VArgs(T2VRequest, GenerateOptions):
    """Every `generate_t2v` argument: the request plus the call options."""

    def request(self) -> T2VRequest:
        return T2VRequest.model_validate(self.model_dump(include=set(T2VRequest.model_fields)))


class I2VRequest(_Wire):
    """One Wan 2.7 image-to-video generation: a first frame (to a last frame, or to driving audio) or a clip to
    continue, and what happens."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=Limits.PROMPT_MAX, description="What happens.")
    negative_prompt: str | None = Field(default=None, max_length=Limits.NEGATIVE_PROMPT_MAX, description="What to avoid.")
    first_frame: str | None = Field(default=None, description="An image it opens on; the video takes its shape.")
    last_frame: str | None = Field(default=None, description="An image it ends on.")
    first_clip: str | None = Field(
        default=None, description="A clip (mp4, mov; 2-10 s) to continue.")
    driving_audio: str | None = Field(
        default=None, description="wav or mp3, 2-30 s (3-30 on Replicate) that speech and motion follow.")
    resolution: Resolution = Field(default="1080p", description="Output resolution.")
    duration: int = Field(default=Limits.DURATION_DEFAULT, ge=Limits.DURATION_MIN, le=Limits.DURATION_MAX,
                          description="In all, a first_clip's included.")
    prompt_extend: bool | None = Field(default=None, description="false stops the host rewriting the prompt.")
    watermark: bool = Field(default=False, description="DashScope, inference.sh: the 'AI generated' mark.")
    seed: int | None = Field(default=None, ge=0, le=Limits.SEED_MAX, description="Random when omitted.")

    @property
    def media(self) -> frozenset[str]:
        """Which of the four media inputs are given."""
        return frozenset(n for n in ("first_frame", "last_frame", "first_clip", "driving_audio") if getattr(self, n))


class EditRequest(_Wire):
    """One Wan 2.7 video edit: a source clip restyled or changed as the prompt says, optionally after reference
    images."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=Limits.PROMPT_MAX,
                        description='What to change ("a watercolour", "the coat of Image 1").')
    negative_prompt: str | None = Field(default=None, max_length=Limits.NEGATIVE_PROMPT_MAX, description="What to avoid.")
    video: str = Field(description="The clip to edit (mp4, mov; 2-10 s).")
    reference_images: list[str] = Field(
        default_factory=list, max_length=Limits.EDIT_REFERENCES_MAX,
        description='"Image 1"...: up to 4 (1 on Replicate, fal).')
    duration: int = Field(default=0, ge=0, le=Limits.EDIT_DURATION_MAX,
                          description="0 keeps the whole clip; 2-10 cut it.")
    audio_setting: Literal["auto", "origin"] = Field(
        default="auto", description="origin keeps the clip's sound.")
    aspect_ratio: AspectRatio | None = Field(default=None, description="Default: the clip's.")
    resolution: Resolution = Field(default="1080p", description="Output resolution.")
    prompt_extend: bool | None = Field(default=None, description="false stops the host rewriting the prompt.")
    watermark: bool = Field(default=False, description="DashScope, inference.sh: the 'AI generated' mark.")
    seed: int | None = Field(default=None, ge=0, le=Limits.SEED_MAX, description="Random when omitted.")


class EditArgs(EditRequest, GenerateOptions):
    """Every `edit_video` argument: the request plus the call options."""

    def request(self) -> EditRequest:
        return EditRequest.model_validate(self.model_dump(include=set(EditRequest.model_fields)))


class I2VArgs(I2VRequest, GenerateOptions):
    """Every `generate_i2v` argument: the request plus the call options."""

    character: str | None = Field(default=None, description="A saved character: its image opens it, its voice drives it.")

    def request(self) -> I2VRequest:
        return I2VRequest.model_validate(self.model_dump(include=set(I2VRequest.model_fields)))


# ---------------------------------------------------------------- the cast and sequences

CHARACTER_NAME = "1-40 letters, digits, _ or -"


class SaveCharacterArgs(_Wire):
    """`save_character` arguments."""

    model_config = ConfigDict(extra="forbid")

    name: Handle = Field(description=f"@name in prompts: {CHARACTER_NAME}.")
    reference: str = Field(min_length=1, description="An image or clip of it.")
    voice: str | None = Field(default=None, description="A voice sample, wav or mp3, 1-10 s.")
    description: str = Field(default="", max_length=500, description="A note; not sent to the model.")
    replace: bool = Field(default=False, description="Overwrite a character of that name.")


class ListCharactersArgs(_Wire):
    """`list_characters` arguments (one, so that strict converters see a closed object: an empty one is open)."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=200, ge=1, le=200, description="How many, A to Z.")


class CharacterRef(_Wire):
    """`delete_character` arguments."""

    model_config = ConfigDict(extra="forbid")

    name: Handle = Field(description="The character's name.")


class CharacterView(_Wire):
    published: ClassVar[tuple[str, ...]] = ("name", "kind")  # save_character's outputSchema (tools/list bytes)

    name: str
    kind: Literal["image", "video"]
    format: str
    size_bytes: int
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    voice: bool = False
    voice_seconds: float | None = None
    description: str = ""
    thumbnail_path: str | None = None
    created_at: str
    last_used_at: str | None = None
    uses: int = 0


class CharacterList(_Wire):
    characters: list[CharacterView]


class Shot(_Wire):
    """One shot of a sequence."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=Limits.PROMPT_MAX, description="What happens, with @names.")
    duration: int = Field(default=Limits.DURATION_DEFAULT, ge=Limits.DURATION_MIN, le=Limits.DURATION_MAX,
                          description="Seconds.")
    characters: list[str] | None = Field(default=None, description="Default: the sequence's it names.")
    seed: int | None = Field(default=None, ge=0, le=Limits.SEED_MAX)
    variants: int = Field(default=1, ge=1, le=TAKES_MAX)


SHOTS_MAX = 12


class SequenceArgs(CastChoice, RunOptions):
    """`generate_sequence` arguments."""

    shots: list[Shot] = Field(min_length=1, max_length=SHOTS_MAX,
                              description=f"1-{SHOTS_MAX} shots, in story order.")
    continuity: Literal["auto", "frame", "clip", "none"] = Field(
        default="auto", description="frame: open on the last frame before (DashScope, inference.sh); clip: "
        "continue the last 2 s (i2v, billed); auto: frame if it can; none: cuts.")
    negative_prompt: str | None = Field(default=None, max_length=Limits.NEGATIVE_PROMPT_MAX)
    resolution: Resolution = "1080p"
    aspect_ratio: AspectRatio = "16:9"
    seed: int | None = Field(default=None, ge=0, le=Limits.SEED_MAX, description="For every shot without its own.")

    @field_validator("continuity", mode="before")
    @classmethod
    def _continuity_as_before(cls, value: Any) -> Any:
        """true and false, as continuity was first written, still mean what they meant."""
        return {True: "auto", False: "none"}.get(value, value) if isinstance(value, bool) else value


class RedoShotArgs(_Wire):
    """`redo_shot` arguments."""

    model_config = ConfigDict(extra="forbid")

    task_id: Handle = Field(description="The sequence's (seq_...).")
    shot: int = Field(ge=1, le=SHOTS_MAX, description="From 1.")
    prompt: str | None = Field(default=None, min_length=1, max_length=Limits.PROMPT_MAX, description="Default: the same.")
    seed: int | None = Field(default=None, ge=0, le=Limits.SEED_MAX, description="Default: random.")
    wait_seconds: float = Field(default=WAIT_DEFAULT, ge=0, description="As get_task.")


class StitchArgs(_Wire):
    """`stitch` arguments."""

    model_config = ConfigDict(extra="forbid")

    task_ids: list[str] = Field(min_length=2, max_length=50, description="Finished tasks, in order.")


class ShotView(_Wire):
    shot: int
    task_id: str | None = None
    status: str
    stage: str
    prompt: str
    duration: int
    local_path: str | None = None
    error: str | None = None
    earlier_task_ids: list[str] = Field(default_factory=list, description="Its other takes, oldest first (redo_shot, variants): pick_take picks.")
    made_by: str | None = Field(default=None, description="The model, and what it carries on from the shot before.")
    cost_estimate_usd: float | None = None


class TakeView(_Wire):
    """One take of a group (a request made several times over, each with its own seed)."""

    take: int
    task_id: str
    status: str
    stage: str
    seed: int | None = None
    cost_estimate_usd: float | None = None
    local_path: str | None = None
    error: str | None = None
    picked: bool = Field(default=False, description="The take that is the group's video (pick_take changes it).")


class PickTakeArgs(_Wire):
    """`pick_take` arguments."""

    model_config = ConfigDict(extra="forbid")

    task_id: Handle = Field(description="A group (tk_...) or sequence.")
    take: int = Field(ge=1, description="From 1.")  # bounded by the group's or shot's takes, said when over
    shot: int | None = Field(default=None, ge=1, le=SHOTS_MAX, description="A sequence's.")


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
