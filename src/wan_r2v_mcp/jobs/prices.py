"""What each host charges per billable second, kept in one place with its date and source.

Billable seconds are input-video seconds (capped at 5 s in all) plus output seconds on every host
(each host's own price page, cited per line below). Override any figure with WAN_R2V_PRICES, e.g. '{"dashscope": {"1080p": 0.14}}'.
"""

from __future__ import annotations

import json

AS_OF = "2026-12"

# USD per billable second, by output resolution.
PRICES: dict[str, dict[str, float]] = {
    # Alibaba lists no USD rate for wan2.7-r2v in the material we have; resellers of the same model
    # charge $0.10/s at 720p and $0.15/s at 1080p (Runware's Wan 2.7 page), which we take as the estimate.
    "dashscope": {"720p": 0.10, "1080p": 0.15},
    # Estimates, so that the caps apply on every host: Replicate publishes no Wan 2.7 R2V price (third parties
    # report $0.10/s; 1080p is taken at DashScope's resale rate, to err on the side of the caps), and inference.sh
    # points to Alibaba's pricing, whose app runs the model on DashScope.
    "replicate": {"720p": 0.10, "1080p": 0.15},
    "inferencesh": {"720p": 0.10, "1080p": 0.15},
    "fal": {"720p": 0.10, "1080p": 0.10},
    "preview": {"720p": 0.0, "1080p": 0.0},
}

SOURCES: dict[str, str] = {
    "dashscope": "estimate from resellers' Wan 2.7 rates (Runware docs), not an Alibaba price list",
    "fal": "fal's model page: $0.10 per second of input video plus output, any resolution",
    "replicate": "estimate: Replicate publishes no price for the model; third parties report $0.10/s (set "
                 "WAN_R2V_PRICES to your own rate)",
    "inferencesh": "estimate: inference.sh points to Alibaba's pricing; DashScope's resale rate is taken (set "
                   "WAN_R2V_PRICES to your own rate)",
    "preview": "free: rendered locally",
}


def price_per_second(provider: str, resolution: str, overrides: str | None = None) -> float | None:
    table = {name: dict(rates) for name, rates in PRICES.items()}
    if overrides:
        for name, rates in json.loads(overrides).items():
            table.setdefault(name, {}).update({k: float(v) for k, v in rates.items()})
    return table.get(provider, {}).get(resolution)
