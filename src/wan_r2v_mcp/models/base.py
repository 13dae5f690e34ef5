"""What a model is, apart from who serves it: its name, its billing rule and the words an agent plans with.

A spec holds only facts about the model (from its public API pages); a host's own mapping of it lives in that
host's module under `providers/`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar


class ModelSpec(ABC):
    name: ClassVar[str]  # the model's own id, as a task row records it
    title: ClassVar[str]  # how people call it
    names_references: ClassVar[bool]  # whether the prompt names its references ("Image 1", "Video 1")

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
