"""Wan 2.7 text-to-video: a prompt alone, optionally with the audio the video follows.

Billing (Alibaba Model Studio's wan2.7-t2v API reference, platform.qianwenai.com/docs/api-reference/
video-generation/wan27-text-to-video/create-task, "usage"): the output's seconds only; the audio is free.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import ModelSpec


class T2V(ModelSpec):
    name = "wan2.7-t2v"
    title = "Wan 2.7 text-to-video"
    names_references = False

    @staticmethod
    def billable_input_seconds(video_seconds: Sequence[float | None]) -> float:
        return 0.0
