"""What a model is, apart from who serves it: its name, what it takes, its billing rule and the words an agent plans
with.

A spec holds only facts about the model (from its public API pages) and its checks that need no host; a host's own
mapping of it lives in that host's module under `providers/`. A new model is its spec module, one line in
`models/__init__.py` and a route in each host module that serves it; the quote, the tools and the records follow.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel

from ..errors import InputError
from ..schema import Limits

# One medium a request gives: (what was given, its label, its role, the argument it came in).
Medium = tuple[str, str, str, str]


@dataclass(frozen=True)
class ToolWords:
    """The MCP tool that makes a model: its name, title and the summary an agent plans with (its description)."""

    name: str
    title: str
    summary: str


@dataclass(frozen=True)
class Role:
    """What one medium is to the model: its kind, the argument it comes in, and its length where bounded."""

    kind: str  # image, video or audio
    field: str
    seconds: tuple[float, float] | None = None


# Every role a medium plays in the family's requests (a new model's new role is a line here; `ModelSpec.role_seconds`
# narrows or widens a length for one model).
ROLES = {
    "reference_image": Role("image", "reference_images"),
    "reference_video": Role("video", "reference_videos", Limits.VIDEO_SECONDS),
    "first_frame": Role("image", "first_frame"),
    "voice": Role("audio", "voices", Limits.VOICE_SECONDS),
    "audio": Role("audio", "audio", Limits.AUDIO_SECONDS),
    "last_frame": Role("image", "last_frame"),
    "first_clip": Role("video", "first_clip", Limits.CLIP_SECONDS),
    "driving_audio": Role("audio", "driving_audio", Limits.AUDIO_SECONDS),
    "video": Role("video", "video", Limits.EDIT_SOURCE_SECONDS),
}
REFERENCE_ROLES = ("reference_image", "reference_video", "first_frame", "voice")  # the roles R2V's lists hold


def image_label(index: int) -> str:
    """How the Wan family's prompts name the image at `index` of its list ("Image 1")."""
    return f"Image {index + 1}"


def video_label(index: int) -> str:
    return f"Video {index + 1}"


def reference_labels(images: int, videos: int) -> list[str]:
    """Images and videos are numbered separately, each in its own list's order (Wan 2.7 R2V's API reference)."""
    return [image_label(i) for i in range(images)] + [video_label(i) for i in range(videos)]


class ModelSpec(ABC):
    name: ClassVar[str]  # the model's own id, as a task row records it
    title: ClassVar[str]  # how people call it
    names_references: ClassVar[bool]  # whether the prompt names its references ("Image 1", "Video 1")
    args: ClassVar[type[BaseModel]]  # every argument of the call that makes it (its request's and the call options)
    request_model: ClassVar[type[BaseModel]]  # what the model itself is asked: what the ledger keeps and hosts map
    tool: ClassVar[ToolWords | None] = None  # its own tool; None: made through another model's tool (its `model`)
    # A reference model's intake: how many images and videos it takes (each kind, and together), each role's
    # length where it is not the 2.7 family's, and what one kind may add up to in all (None: no bound).
    images_max: ClassVar[int] = Limits.REFERENCES_MAX
    videos_max: ClassVar[int] = Limits.REFERENCES_MAX
    references_max: ClassVar[int] = Limits.REFERENCES_MAX
    role_seconds: ClassVar[dict[str, tuple[float, float]]] = {}
    kind_total_seconds: ClassVar[float | None] = None
    with_inputs_max: ClassVar[int | None] = None  # the output and the input clips' seconds together, where bounded
    # Inputs of the family's request this model does not have, each with the fix an agent is told.
    lacks: ClassVar[dict[str, str]] = {}
    # Of a model that takes single media (not reference lists): by kind, the argument a file of that kind belongs in,
    # so a file given in the wrong one is told where to go.
    homes: ClassVar[dict[str, str]] = {}

    @staticmethod
    def media(request: Any) -> list[Medium] | None:
        """The media a request gives, each in its role; None: the reference lists (images, videos, voices), taken in
        with their labels and the prompt's naming of them."""
        return None

    @staticmethod
    def problems(request: Any) -> list[InputError]:
        """What is wrong with a request before any file is read (a combination of inputs the model does not take)."""
        return []

    @staticmethod
    def media_problems(request: Any, seconds: Mapping[str, float | None]) -> list[InputError]:
        """What is wrong once its media are probed: `seconds` is each role's length (None: not known, a URL)."""
        return []

    @staticmethod
    @abstractmethod
    def billable_input_seconds(video_seconds: Sequence[float | None]) -> float:
        """Seconds of the request's input videos that are billed."""

    @staticmethod
    def output_seconds(request: dict[str, Any], source_seconds: float | None) -> float:
        """How long the made video is: the request's duration (a model that keeps a source's length says so)."""
        return float(request.get("duration") or 5)

    @classmethod
    def billable_seconds(cls, video_seconds: Sequence[float | None], output_seconds: float) -> float:
        """Everything billed for one request: its billed input seconds and its output seconds."""
        return cls.billable_input_seconds(video_seconds) + output_seconds
