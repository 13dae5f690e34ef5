"""Billable seconds and the cost estimate of a request (providers.md §1, "Billing").

Reference images are free; each reference video counts at most 5 s / (number of reference videos);
output seconds count in full.
"""

from __future__ import annotations

from collections.abc import Sequence

INPUT_VIDEO_CAP_SECONDS = 5.0


def billable_input_seconds(video_seconds: Sequence[float | None]) -> float:
    """Input-video seconds billed; a video whose length is unknown (a URL) counts at its full share."""
    if not video_seconds:
        return 0.0
    share = INPUT_VIDEO_CAP_SECONDS / len(video_seconds)
    return round(sum(min(s if s is not None else share, share) for s in video_seconds), 3)


def billable_seconds(video_seconds: Sequence[float | None], output_seconds: int) -> float:
    return billable_input_seconds(video_seconds) + output_seconds


def estimate_usd(price_per_second: float | None, seconds: float) -> float | None:
    return None if price_per_second is None else round(price_per_second * seconds, 4)
