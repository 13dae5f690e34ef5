"""What a request costs per billable second on a host: the host's record (`providers.HOSTS`, with its date and
source), or the operator's own figure.

Billable seconds are input-video seconds (capped at 5 s in all) plus output seconds on every host
(each host's own price page, cited per line below). Override any figure with WAN_R2V_PRICES, e.g. '{"dashscope": {"1080p": 0.14}}'.
"""

from __future__ import annotations

import json

from ..providers import HOSTS


def price_per_second(provider: str, resolution: str, overrides: str | None = None,
                     model_prices: dict[str, float] | None = None) -> float | None:
    """`model_prices`: the route's own, where the model is priced apart from the host's others."""
    table = {name: dict(host.prices) for name, host in HOSTS.items()}
    if model_prices is not None:
        table[provider] = dict(model_prices)
    if overrides:
        for name, rates in json.loads(overrides).items():
            table.setdefault(name, {}).update({k: float(v) for k, v in rates.items()})
    return table.get(provider, {}).get(resolution)
