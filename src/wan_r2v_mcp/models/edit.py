"""Wan 2.7 video editing: a source clip restyled or changed by the prompt, optionally after reference images.

Billing (Alibaba's video-editing guide, platform.qianwenai.com/docs/developer-guides/video-generation/video-editing,
and the hosts that resell it): the kept part of the source and the output are both billed (a 5 s edit bills 10 s);
reference images are free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import ModelSpec


class Edit(ModelSpec):
    name = "wan2.7-videoedit"
    title = "Wan 2.7 video editing"
    names_references = True

    @staticmethod
    def billable_input_seconds(video_seconds: Sequence[float | None]) -> float:
        return 0.0  # counted as the output's length: see billable_seconds

    @classmethod
    def billable_seconds(cls, video_seconds: Sequence[float | None], output_seconds: float) -> float:
        """The kept part of the source (as long as the output) and the output."""
        return 2 * output_seconds

    @staticmethod
    def output_seconds(request: dict[str, Any], source_seconds: float | None) -> float:
        """duration 0 keeps the whole source; its length unknown (a URL), the longest it may be is counted."""
        return float(request.get("duration") or source_seconds or 10.0)
