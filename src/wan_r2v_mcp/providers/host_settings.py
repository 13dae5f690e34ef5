"""Each host's own settings, read from the variables its own SDK reads (DASHSCOPE_API_KEY, FAL_KEY, ...).

A host reads its settings here, not from the server's `Settings`: a new host brings its own class. Values set in
code (`with_host`: a caller's own key, an emulator's address) stand over the environment's.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..config import env_name, unfilled_is_unset, whole_url
from ..errors import register_secret

if TYPE_CHECKING:
    from ..config import Settings


def _env(name: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(name))


def key_as_pasted(value: object, name: str) -> object:
    """A key pasted with quotes or a trailing newline is the key; one with a space or quote inside is refused."""
    if not isinstance(value, str):
        return value
    key = value.strip()
    if len(key) >= 2 and key[0] == key[-1] and key[0] in "'\"":
        key = key[1:-1].strip()
    if any(c.isspace() or c in "'\"" for c in key):
        raise ValueError(f"{name} has a space or a quote inside it: set it to the key alone, as the host's "
                         "console shows it")
    return key


class HostSettings(BaseModel):
    """What every host has: its key (a secret, never shown) and the addresses it may be pointed at. Each field is
    read from the one variable its alias names (plain names, so no settings library's sources are needed: reading
    them is a dictionary lookup each)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    api_key: SecretStr | None = None
    shown: ClassVar[tuple[str, ...]] = ()  # the fields `doctor` shows when set (never the key)

    @model_validator(mode="before")
    @classmethod
    def _unfilled_is_unset(cls, values: object) -> object:
        return unfilled_is_unset(values)

    @field_validator("api_key", mode="before")
    @classmethod
    def _key_as_pasted(cls, value: object) -> object:
        return key_as_pasted(value, env_name("api_key", cls))

    @field_validator("*")
    @classmethod
    def _whole_url(cls, value: object, info: ValidationInfo) -> object:
        name = info.field_name or ""
        if name.endswith("_url") and (value is None or isinstance(value, str)):
            return whole_url(value, env_name(name, cls))
        return value

    @classmethod
    def from_environment(cls, given: dict[str, Any]) -> HostSettings:
        """The settings from the environment, with `given` (by field name) standing over it."""
        found = {}
        for name, info in cls.model_fields.items():
            alias = info.validation_alias
            if name not in given and isinstance(alias, AliasChoices) and (value := os.environ.get(
                    str(alias.choices[0]))) is not None:
                found[name] = value
        return cls.model_validate({**found, **given})

    def model_post_init(self, _context: object) -> None:
        if self.api_key is not None:
            register_secret(self.api_key.get_secret_value())

    def summary(self) -> str:
        """The settings `doctor` shows, by their variables: `DASHSCOPE_REGION=singapore`."""
        return ", ".join(f"{env_name(f, type(self))}={getattr(self, f)}" for f in self.shown
                         if getattr(self, f) is not None)


class DashScopeSettings(HostSettings):
    api_key: SecretStr | None = _env("DASHSCOPE_API_KEY")
    region: str = Field(default="singapore", validation_alias=AliasChoices("DASHSCOPE_REGION"))
    base_url: str | None = _env("DASHSCOPE_BASE_URL")
    workspace_id: str | None = _env("DASHSCOPE_WORKSPACE_ID")  # Wan 3.0's workspace host
    shown = ("region", "base_url", "workspace_id")


class ReplicateSettings(HostSettings):
    api_key: SecretStr | None = _env("REPLICATE_API_TOKEN")
    base_url: str | None = _env("REPLICATE_BASE_URL")
    shown = ("base_url",)


class InferenceShSettings(HostSettings):
    api_key: SecretStr | None = _env("INFERENCE_API_KEY")
    base_url: str | None = _env("INFERENCE_BASE_URL")
    shown = ("base_url",)


class FalSettings(HostSettings):
    api_key: SecretStr | None = _env("FAL_KEY")
    queue_url: str | None = _env("FAL_QUEUE_URL")
    rest_url: str | None = _env("FAL_REST_URL")
    shown = ("queue_url", "rest_url")


def read(settings: Settings, cls: type[HostSettings], name: str) -> HostSettings:
    """The host's settings: its variables, under what code set for it in `settings.hosts`; read once per set of
    values (the key is the values themselves, so a copy of `settings` with other values reads again)."""
    given = settings.hosts.get(name, {})
    ident = (name, tuple(sorted((k, v.get_secret_value() if isinstance(v, SecretStr) else str(v))
                                for k, v in given.items())))
    made = settings._derived.get(ident)
    if made is None:
        made = settings._derived[ident] = cls.from_environment(given)
    return made


def with_host(settings: Settings, name: str, **values: Any) -> Settings:
    """A copy of `settings` whose host `name` takes these values over its environment's."""
    hosts = {**settings.hosts, name: {**settings.hosts.get(name, {}), **values}}
    return settings.model_copy(update={"hosts": hosts})
