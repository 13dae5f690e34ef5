"""Wan 2.7 image-to-video: a first frame (to a last frame, or driven by audio), or a clip to continue.

Billing (Alibaba Model Studio's wan2.7-i2v API reference, platform.qianwenai.com/docs/api-reference/
video-generation/wan27-image-to-video/create-task, "usage"): `duration` is the whole output, a continued clip's
seconds included, and all of it is billed; images and driving audio are free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InputError
from ..schema import I2V_MODEL_ID, I2VArgs, I2VRequest, Limits
from .base import Medium, ModelSpec, ToolWords

LABELS = {"first_frame": "First frame", "last_frame": "Last frame", "first_clip": "First clip",
          "driving_audio": "Driving audio"}


class I2V(ModelSpec):
    name = I2V_MODEL_ID
    title = "Wan 2.7 image-to-video"
    names_references = False
    args = I2VArgs
    request_model = I2VRequest
    tool = ToolWords("generate_i2v", "Image to video", """\
Wan 2.7 image-to-video: animate a first_frame (to a last_frame, or to driving_audio) or continue a first_clip, \
to lock a look or extend a shot; to keep characters, generate_r2v. Paid per second; \
provider="preview" is a free draft. As generate_r2v otherwise.""")
    homes = {"image": "first_frame", "video": "first_clip", "audio": "driving_audio"}

    @staticmethod
    def media(request: Any) -> list[Medium]:
        return [(getattr(request, role), label, role, role) for role, label in LABELS.items() if getattr(request, role)]

    @staticmethod
    def problems(request: Any) -> list[InputError]:
        error = mode_error(request.media)
        return [error] if error is not None else []

    @staticmethod
    def media_problems(request: Any, seconds: Mapping[str, float | None]) -> list[InputError]:
        """A continued clip is inside `duration`, so the duration must be longer than the clip."""
        clip = seconds.get("first_clip")
        if clip is None or request.duration > clip:
            return []
        return [InputError(
            f"is {request.duration} s, but duration is the whole video, first_clip's {clip:.1f} s included",
            field="duration", limit=f"more than {clip:.1f} s with this clip",
            fix=f"ask for at least {math.floor(clip) + 1} s (at most {Limits.DURATION_MAX})")]

    @staticmethod
    def billable_input_seconds(video_seconds: Sequence[float | None]) -> float:
        return 0.0  # a continued clip is inside `duration`, which is billed whole as the output


def mode_error(given: frozenset[str]) -> InputError | None:
    """Why a combination of image-to-video media is not one the model takes (None when it is)."""
    if given in Limits.I2V_MODES:
        return None
    order = ["first_frame", "first_clip", "last_frame", "driving_audio"]
    modes = "; ".join(" + ".join(sorted(m, key=order.index)) for m in Limits.I2V_MODES)
    if not given & {"first_frame", "first_clip"}:
        what, field, fix = "nothing to start from", "first_frame", \
            "give a first_frame (an image it opens on) or a first_clip (a clip it continues)"
    elif {"first_frame", "first_clip"} <= given:
        what, field, fix = "both first_frame and first_clip", "first_clip", \
            "give one: first_frame to animate an image, or first_clip to continue a clip"
    else:
        what, field, fix = "first_clip with driving_audio", "driving_audio", \
            "driving_audio goes with a first_frame only: drop it, or open on a first_frame instead of the clip"
    return InputError(f"{what}: not a combination Wan 2.7 image-to-video takes", field=field,
                      limit=f"one of: {modes}", fix=fix)
