"""Wan 2.7 text-to-video: a prompt alone, optionally with the audio the video follows.

Billing (Alibaba Model Studio's wan2.7-t2v API reference, platform.qianwenai.com/docs/api-reference/
video-generation/wan27-text-to-video/create-task, "usage"): the output's seconds only; the audio is free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..schema import T2V_MODEL_ID, T2VArgs, T2VRequest
from .base import Medium, ModelSpec, ToolWords


class T2V(ModelSpec):
    name = T2V_MODEL_ID
    title = "Wan 2.7 text-to-video"
    names_references = False
    args = T2VArgs
    request_model = T2VRequest
    tool = ToolWords("generate_t2v", "Text to video", """\
Wan 2.7 text-to-video: a prompt alone (and optional audio), to explore a look before references \
exist; to keep a character, generate_r2v. Paid per second; provider="preview" is a free title card. As \
generate_r2v otherwise.""")

    @staticmethod
    def media(request: Any) -> list[Medium]:
        return [(request.audio, "Audio", "audio", "audio")] if request.audio else []

    @staticmethod
    def billable_input_seconds(video_seconds: Sequence[float | None]) -> float:
        return 0.0
