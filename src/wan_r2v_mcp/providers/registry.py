"""The providers this server has: one instance per host, made on first use, with the default choice."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ProviderUnavailable
from . import available, provider_class
from .base import Capabilities, Provider

if TYPE_CHECKING:
    from ..config import Settings


class ProviderRegistry:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._made: dict[str, Provider] = {}

    def get(self, name: str | None = None) -> Provider:
        """The provider called `name` (the configured default when None); raises `ProviderUnavailable` naming the
        fix when it is unknown or its key is not set."""
        name = name or self.settings.default_provider
        if name not in self._made:
            if name not in available():
                raise ProviderUnavailable(f"\"{name}\" is not a provider of this server", field="provider",
                                          limit=f"one of {', '.join(available())}",
                                          fix="leave provider out for the configured default, or pick one of those")
            self._made[name] = provider_class(name)(self.settings)  # reads its own key, or says which to set
        return self._made[name]

    @staticmethod
    def capabilities(name: str) -> Capabilities | None:
        return provider_class(name).capabilities if name in available() else None

    async def aclose(self) -> None:
        for provider in self._made.values():
            await provider.aclose()
