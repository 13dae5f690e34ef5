"""Wan 3.0's reference mode (`wan3.0-video`, in preview): up to 10 images, 5 clips and 5 audio references, 2-30 s.

Facts from Alibaba's wan3.0-video API reference (platform.qianwenai.com/docs/api-reference/video-generation/
wan30-video/create-task; help.aliyun.com/zh/model-studio/wan3-video-generation-api-reference) and fal's
alibaba/wan-3.0/reference-to-video page: references are numbered per type ("Image 1", "Video 1", "Audio 1"); a voice
is an audio reference of its own that the prompt names, not a field of an image; references never go with a first
or last frame (DashScope fails such a task only after it was sent); there is no negative prompt.

Billing is not confirmed: one reseller says every input-video second is billed beside the output on DashScope, fal
bills the output only. The stricter reading is the model's; a host that bills less says so on its route.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..schema import WAN3_MODEL_ID, GenerateArgs, Limits, R2VRequest
from .base import ModelSpec


class Wan3(ModelSpec):
    name = WAN3_MODEL_ID
    title = "Wan 3.0 reference mode (preview)"
    names_references = True
    args = GenerateArgs  # made through generate_r2v, with model="wan3.0-video"
    request_model = R2VRequest
    images_max = Limits.WAN3_IMAGES_MAX
    videos_max = Limits.WAN3_VIDEOS_MAX
    references_max = Limits.WAN3_IMAGES_MAX + Limits.WAN3_VIDEOS_MAX
    role_seconds = {"reference_video": Limits.WAN3_MEDIA_SECONDS, "voice": Limits.WAN3_MEDIA_SECONDS}
    kind_total_seconds = Limits.WAN3_KIND_TOTAL_SECONDS
    with_inputs_max = Limits.WAN3_DURATION_MAX
    lacks = {
        "first_frame": "leave first_frame out: Wan 3.0 never takes a frame with references (generate_i2v opens on a "
                       "frame), or use model=\"wan2.7-r2v\"",
        "negative_prompt": "say what to avoid in the prompt itself, or use model=\"wan2.7-r2v\"",
        "shot_type": "write the shots in the prompt (\"Shot 1 [0-3s]: ...\")",
    }

    @staticmethod
    def billable_input_seconds(video_seconds: Sequence[float | None]) -> float:
        """Every input second; a clip of unknown length (a URL) at its share of the most the clips may last."""
        if not video_seconds:
            return 0.0
        share = Limits.WAN3_KIND_TOTAL_SECONDS / len(video_seconds)
        return round(sum(s if s is not None else share for s in video_seconds), 3)


def voiced_prompt(prompt: str, owners: Sequence[str]) -> str:
    """The prompt as Wan 3.0 gets it: voice k is the reference "Audio k", heard only where the prompt names it, so
    a voice the prompt does not name is named after its reference's character ("Image 1 speaks in the voice of
    Audio 1.")."""
    lowered = prompt.lower()
    missing = [f"{owner} speaks in the voice of Audio {k}." for k, owner in enumerate(owners, 1)
               if f"audio {k}" not in lowered and f"音频{k}" not in prompt]
    return " ".join([prompt.rstrip(), *missing]) if missing else prompt
