"""What every wire type shares: the models' ids, the output's sizes, Wan 2.7's limits, and the bounds of ids.

Limits are Wan 2.7 R2V's own
(https://docs.platform.qianwenai.com/docs/api-reference/video-generation/wan27-reference-to-video/create-task); a host's
narrower limits live in its provider's routes.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema


class _Wire(BaseModel):
    """Every model here: its validator is built when first used, not at import (start-up is felt at every launch;
    the result views, say, are first needed at the first call)."""

    model_config = ConfigDict(defer_build=True)

MODEL_ID = "wan2.7-r2v"
T2V_MODEL_ID = "wan2.7-t2v"
I2V_MODEL_ID = "wan2.7-i2v"
EDIT_MODEL_ID = "wan2.7-videoedit"
WAN3_MODEL_ID = "wan3.0-video"  # Wan 3.0's reference mode, in preview (see models/wan3.py)
R2VModel = Literal["wan2.7-r2v", "wan3.0-video"]

Resolution = Literal["720p", "1080p"]
AspectRatio = Literal["16:9", "9:16", "1:1", "4:3", "3:4"]
ShotType = Literal["single", "multi"]
Status = Literal["queued", "running", "succeeded", "failed", "canceled"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "canceled"})

# Output pixel size for each resolution x ratio (the model's API reference, above).
PIXEL_SIZES: dict[tuple[str, str], tuple[int, int]] = {
    ("720p", "16:9"): (1280, 720),
    ("720p", "9:16"): (720, 1280),
    ("720p", "1:1"): (960, 960),
    ("720p", "4:3"): (1104, 832),
    ("720p", "3:4"): (832, 1104),
    ("1080p", "16:9"): (1920, 1080),
    ("1080p", "9:16"): (1080, 1920),
    ("1080p", "1:1"): (1440, 1440),
    ("1080p", "4:3"): (1648, 1248),
    ("1080p", "3:4"): (1248, 1648),
}
OUTPUT_FPS = 30


class Limits:
    """Wan 2.7 R2V's limits, in one place (the model's API reference, above)."""

    PROMPT_MAX = 5000
    NEGATIVE_PROMPT_MAX = 500
    REFERENCES_MIN = 1
    REFERENCES_MAX = 5
    DURATION_MIN = 2
    DURATION_MAX = 15
    DURATION_MAX_WITH_VIDEO = 10
    DURATION_DEFAULT = 5
    SEED_MAX = 2_147_483_647
    DATA_URI_MAX_BYTES = 1_000_000

    IMAGE_FORMATS = ("jpeg", "png", "bmp", "webp")
    IMAGE_SIDE = (240, 8000)
    IMAGE_MAX_BYTES = 20 * 1024 * 1024
    VIDEO_FORMATS = ("mp4", "mov")
    VIDEO_SECONDS = (1.0, 30.0)
    VIDEO_SIDE = (240, 4096)
    VIDEO_MAX_BYTES = 100 * 1024 * 1024
    VOICE_FORMATS = ("wav", "mp3")
    VOICE_SECONDS = (1.0, 10.0)
    VOICE_MAX_BYTES = 15 * 1024 * 1024
    ASPECT_EXTREME = 8.0
    # wan2.7-t2v's `input.audio_url` (its API reference, platform.qianwenai.com/docs/api-reference/video-generation/
    # wan27-text-to-video/create-task): wav or mp3, 2-30 s, 15 MB; some hosts take 3-30 s (their routes say so).
    AUDIO_SECONDS = (2.0, 30.0)
    # wan2.7-i2v (platform.qianwenai.com/docs/api-reference/video-generation/wan27-image-to-video/create-task): the clip
    # it continues lasts 2-10 s; its inputs come in six combinations only, each at most once.
    CLIP_SECONDS = (2.0, 10.0)
    # wan2.7-videoedit (Alibaba's video-editing guide, platform.qianwenai.com/docs/developer-guides/video-generation/
    # video-editing): one source clip of 2-10 s, 0-4 reference images, duration 0 (keep it whole) or 2-10.
    EDIT_SOURCE_SECONDS = (2.0, 10.0)
    EDIT_REFERENCES_MAX = 4
    EDIT_DURATION_MAX = 10
    # Wan 3.0's reference mode (Alibaba's wan3.0-video API reference, platform.qianwenai.com/docs/api-reference/
    # video-generation/wan30-video/create-task): 10 images, 5 clips and 5 audio (1-15 s each, 15 s of each kind in
    # all); 2-30 s, a clip's seconds counted in the 30.
    WAN3_IMAGES_MAX = 10
    WAN3_VIDEOS_MAX = 5
    WAN3_AUDIO_MAX = 5
    WAN3_MEDIA_SECONDS = (1.0, 15.0)
    WAN3_KIND_TOTAL_SECONDS = 15.0
    WAN3_DURATION_MAX = 30
    I2V_MODES = (frozenset({"first_frame"}), frozenset({"first_frame", "driving_audio"}),
                 frozenset({"first_frame", "last_frame"}), frozenset({"first_frame", "last_frame", "driving_audio"}),
                 frozenset({"first_clip"}), frozenset({"first_clip", "last_frame"}))


# An id or name a tool was given back: bounded against hostile input, its bounds kept out of tools/list (they are
# nothing an agent plans with; an id over them is refused as any argument is).
Handle = Annotated[str, Field(min_length=1, max_length=100), WithJsonSchema({"type": "string"})]

TAKES_MAX = 4  # candidates of one request, each a task of its own (Google's Veo server offers 1-4 variants)

# Every tool that can wait waits the same by default: a client that listens to progress gets the video in one
# call; one that does not is answered within WAN_R2V_QUIET_WAIT whatever this says (tools/shape.patience).
WAIT_DEFAULT = 50
WAIT_WORDS = "Seconds to wait, with progress (cap 50); 0 answers at once."
