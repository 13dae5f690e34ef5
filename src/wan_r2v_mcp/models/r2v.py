"""Wan 2.7 reference-to-video: up to five reference images and clips (and voices), named in the prompt.

Billing (Alibaba Model Studio's wan2.7-r2v API reference, "Billing"): reference images are free; each reference
video counts at most 5 s divided by the number of reference videos; the output's seconds count in full.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import ModelSpec

INPUT_VIDEO_CAP_SECONDS = 5.0


class R2V(ModelSpec):
    name = "wan2.7-r2v"
    title = "Wan 2.7 reference-to-video"
    names_references = True

    @staticmethod
    def billable_input_seconds(video_seconds: Sequence[float | None]) -> float:
        """A video whose length is unknown (a URL) counts at its full share."""
        if not video_seconds:
            return 0.0
        share = INPUT_VIDEO_CAP_SECONDS / len(video_seconds)
        return round(sum(min(s if s is not None else share, share) for s in video_seconds), 3)
