"""What the generate tools take: each model's request (the single source of its input schema, of validation and
of every host's mapping) and the call options beside it; `list_references`' query."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator

from .base import (
    EDIT_MODEL_ID,
    I2V_MODEL_ID,
    MODEL_ID,
    T2V_MODEL_ID,
    TAKES_MAX,
    WAIT_DEFAULT,
    WAIT_WORDS,
    AspectRatio,
    Limits,
    R2VModel,
    Resolution,
    ShotType,
    _Wire,
)

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
    model: ClassVar[str] = T2V_MODEL_ID  # the model it asks for (a reference request names its own)

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
    model: ClassVar[str] = I2V_MODEL_ID  # the model it asks for (a reference request names its own)

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
    model: ClassVar[str] = EDIT_MODEL_ID  # the model it asks for (a reference request names its own)

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


# What any model is asked, and every argument of any generate tool (a new model's classes join these).
AnyRequest = R2VRequest | T2VRequest | I2VRequest | EditRequest
AnyArgs = GenerateArgs | T2VArgs | I2VArgs | EditArgs
