"""Wan 2.7 video editing: a source clip restyled or changed by the prompt, optionally after reference images.

Billing (Alibaba's video-editing guide, platform.qianwenai.com/docs/developer-guides/video-generation/video-editing,
and the hosts that resell it): the kept part of the source and the output are both billed (a 5 s edit bills 10 s);
reference images are free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InputError
from ..schema import EDIT_MODEL_ID, EditArgs, EditRequest, Limits
from .base import Medium, ModelSpec, ToolWords, image_label


class Edit(ModelSpec):
    name = EDIT_MODEL_ID
    title = "Wan 2.7 video editing"
    names_references = True
    args = EditArgs
    request_model = EditRequest
    tool = ToolWords("edit_video", "Edit a video", """\
Wan 2.7 video editing, the last stage: restyle or change one clip as the prompt says, optionally after \
reference images. Input and output seconds are paid; provider="preview" is free. As generate_r2v otherwise.""")
    homes = {"image": "reference_images", "video": "video"}

    @staticmethod
    def media(request: Any) -> list[Medium]:
        return [(request.video, "Source video", "video", "video")] + [
            (given, image_label(i), "reference_image", f"reference_images[{i}]")
            for i, given in enumerate(request.reference_images)]

    @staticmethod
    def problems(request: Any) -> list[InputError]:
        if request.duration != 1:
            return []
        return [InputError("is 1 s", field="duration", limit="0 (keep the whole clip) or 2-10 s",
                           fix="ask for 0, or for at least 2 s cut from the start")]

    @staticmethod
    def media_problems(request: Any, seconds: Mapping[str, float | None]) -> list[InputError]:
        """A cut cannot be longer than the source."""
        source = seconds.get("video")
        if source is None or request.duration <= source + 0.05:
            return []
        most = min(Limits.EDIT_DURATION_MAX, math.floor(source + 0.05))
        cut = f" or 2-{most} s" if most > 2 else " or 2 s" if most == 2 else ""
        return [InputError(
            f"is {request.duration} s, but the source video lasts {source:.1f} s", field="duration",
            limit=f"0 (keep it whole){cut} for this clip", fix="ask for 0 to keep the whole clip, or fewer seconds")]

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
