"""Provider lookup by name. A host's module is imported only when that host is first used."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Settings
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


def default_provider(settings: Settings) -> str:
    """WAN_R2V_PROVIDER, else the first host whose key is set, else the offline preview."""
    if settings.provider:
        return settings.provider
    from ..config import PROVIDER_KEYS

    for name in PROVIDER_KEYS:
        if settings.api_key(name) and name in _REGISTRY:
            return name
    return "preview"


def setting_problems(settings: Settings) -> list[str]:
    """What is wrong with the settings that name providers (a check for `config.load_settings`)."""
    if settings.provider and settings.provider not in _REGISTRY:
        return [f"WAN_R2V_PROVIDER is {settings.provider!r}, which is not a provider: use one of "
                f"{', '.join(_REGISTRY)}, or unset it"]
    return []
