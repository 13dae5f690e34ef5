"""The cost estimate of a request: its model's billable seconds (models/) at its host's price (jobs/prices)."""

from __future__ import annotations


def estimate_usd(price_per_second: float | None, seconds: float) -> float | None:
    return None if price_per_second is None else round(price_per_second * seconds, 4)
