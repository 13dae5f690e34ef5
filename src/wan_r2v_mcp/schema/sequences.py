"""The cast, sequences and takes: their tools' arguments and views."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator

from .base import TAKES_MAX, WAIT_DEFAULT, AspectRatio, Handle, Limits, Resolution, _Wire
from .requests import CastChoice, RunOptions

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
