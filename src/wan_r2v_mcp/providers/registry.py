"""The providers this server has: one instance per host and key, made on first use, with the default choice.

A caller over HTTP may bring its own host key (`access.CallerKeys`); its tasks then use an instance made
with that key, and the operator's key is never used for them.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import SecretStr

from ..access import CallerKeys
from ..errors import ProviderUnavailable
from . import HOSTS, available, default_provider, key_headers, keyed, provider_class
from .base import Capabilities, Provider
from .host_settings import with_host

if TYPE_CHECKING:
    from ..config import Settings


class ProviderRegistry:
    def __init__(self, settings: Settings, keys: CallerKeys | None = None):
        self.settings = settings
        self.keys = keys or CallerKeys(key_headers())
        self._made: dict[tuple[str, str], Provider] = {}
        self._making = threading.Lock()  # quotes run in worker threads: one instance (one HTTP client) per host and key

    def default_for(self, caller: str) -> str:
        """WAN_R2V_PROVIDER, else the first host the caller brought a key for, else the operator's default."""
        if self.settings.provider:
            return self.settings.provider
        for name in keyed():
            if self.keys.get(caller, name):
                return name
        return default_provider(self.settings)

    def uses_callers_key(self, name: str, caller: str) -> bool:
        return self.keys.get(caller, name) is not None

    def get(self, name: str | None = None, *, caller: str = "", callers_key_only: bool = False) -> Provider:
        """The provider called `name` (the caller's default when None), with the caller's own key when it brought
        one; raises `ProviderUnavailable` naming the fix when it is unknown or has no key."""
        name = name or self.default_for(caller)
        if name not in available():
            raise ProviderUnavailable(f"\"{name}\" is not a provider of this server", field="provider",
                                      limit=f"one of {', '.join(available())}",
                                      fix="leave provider out for the configured default, or pick one of those")
        key = self.keys.get(caller, name)
        if key is None and callers_key_only:
            title = provider_class(name).capabilities.title
            raise ProviderUnavailable(
                f"this task was submitted with its caller's own {title} key, which the server no longer holds (it "
                "restarted since)", field="provider",
                fix=f"call any tool again with the {HOSTS[name].key_header} header and it is followed again")
        ident = (name, hashlib.sha256(key.encode()).hexdigest()[:16] if key else "")
        made = self._made.get(ident)
        if made is None:
            with self._making:
                made = self._made.get(ident)
                if made is None:
                    settings = self.settings
                    if key is not None:
                        settings = with_host(settings, name, api_key=SecretStr(key))
                    made = self._made[ident] = provider_class(name)(settings)  # reads its own key, or says which to set
        return made

    def warm(self, names: Sequence[str]) -> None:
        """Make the operator's instance of each of `names` now, off the event loop (a host's module, its HTTP client
        and TLS set-up take about 100 ms), so that the first calls do not all wait for it. One that cannot be made
        says why to the call that needs it."""
        for name in names:
            try:
                self.get(name)
            except Exception:  # noqa: BLE001 - a host without a key here, or settings its first use reports
                continue

    @staticmethod
    def capabilities(name: str) -> Capabilities | None:
        return provider_class(name).capabilities if name in available() else None

    async def aclose(self) -> None:
        for provider in self._made.values():
            await provider.aclose()
