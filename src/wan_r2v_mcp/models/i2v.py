"""Wan 2.7 image-to-video: a first frame (to a last frame, or driven by audio), or a clip to continue.

Billing (Alibaba Model Studio's wan2.7-i2v API reference, platform.qianwenai.com/docs/api-reference/
video-generation/wan27-image-to-video/create-task, "usage"): `duration` is the whole output, a continued clip's
seconds included, and all of it is billed; images and driving audio are free.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import ModelSpec


class I2V(ModelSpec):
    name = "wan2.7-i2v"
    title = "Wan 2.7 image-to-video"
    names_references = False

    @staticmethod
    def billable_input_seconds(video_seconds: Sequence[float | None]) -> float:
        return 0.0  # a continued clip is inside `duration`, which is billed whole as the output
