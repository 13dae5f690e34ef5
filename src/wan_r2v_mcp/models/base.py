"""What a model is, apart from who serves it: its name, its billing rule and the words an agent plans with.

A spec holds only facts about the model (from its public API pages); a host's own mapping of it lives in that
host's module under `providers/`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from ..schema import Limits


class ModelSpec(ABC):
    name: ClassVar[str]  # the model's own id, as a task row records it
    title: ClassVar[str]  # how people call it
    names_references: ClassVar[bool]  # whether the prompt names its references ("Image 1", "Video 1")
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
