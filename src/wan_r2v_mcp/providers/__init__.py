"""Provider lookup by name. A host's module is imported only when that host is first used."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Provider

_REGISTRY: dict[str, str] = {
    "preview": "wan_r2v_mcp.providers.preview:PreviewProvider",
    "dashscope": "wan_r2v_mcp.providers.dashscope:DashScopeProvider",
    "replicate": "wan_r2v_mcp.providers.replicate:ReplicateProvider",
    "inferencesh": "wan_r2v_mcp.providers.inferencesh:InferenceShProvider",
    "fal": "wan_r2v_mcp.providers.fal:FalProvider",
}


def available() -> list[str]:
    return list(_REGISTRY)


def provider_class(name: str) -> type[Provider]:
    module, _, attr = _REGISTRY[name].partition(":")
    return getattr(import_module(module), attr)


def hosts_supporting(field: str) -> list[str]:
    """Names of the real hosts (not the preview) that honour an optional field."""
    return [n for n in _REGISTRY if n != "preview" and field in provider_class(n).capabilities.supports]
