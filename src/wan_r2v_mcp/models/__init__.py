"""Model lookup by name: a spec's module is imported only when that model is first used."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import ModelSpec

_REGISTRY: dict[str, str] = {
    "wan2.7-r2v": "wan_r2v_mcp.models.r2v:R2V",
    "wan2.7-t2v": "wan_r2v_mcp.models.t2v:T2V",
    "wan2.7-i2v": "wan_r2v_mcp.models.i2v:I2V",
    "wan2.7-videoedit": "wan_r2v_mcp.models.edit:Edit",
    "wan3.0-video": "wan_r2v_mcp.models.wan3:Wan3",
}


def known() -> list[str]:
    return list(_REGISTRY)


def spec(name: str) -> type[ModelSpec]:
    """The spec of a model this server makes; KeyError for any other name."""
    module, _, attr = _REGISTRY[name].partition(":")
    return getattr(import_module(module), attr)
