"""Settings from the environment (the same names work in a client's `env` block)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import register_secret
from .store.files import DataDir

APP_NAME = "wan-r2v-mcp"


def _env(name: str) -> AliasChoices:
    """The one environment variable a field is read from: never a bare name another app might set (ALLOWED_HOSTS,
    HTTP_TOKENS); in code the field's own name works too."""
    return AliasChoices(name)


def unfilled_is_unset(values: object) -> object:
    """A client that fills a config template may pass an optional value empty, or as its placeholder left
    unreplaced ("${user_config.fal_key}" from a bundle's unset option): both mean "not set"."""
    if isinstance(values, dict):
        return {k: v for k, v in values.items()
                if not (isinstance(v, str) and (not v.strip() or v.strip().startswith("${user_config.")))}
    return values



def whole_url(value: str | None, name: str) -> str | None:
    """An address the server calls or publishes: a whole http(s) URL with a host, https unless on loopback."""
    if value is None:
        return None
    from urllib.parse import urlsplit

    text = value.strip()
    try:
        parts = urlsplit(text)
        host, _ = parts.hostname or "", parts.port
    except ValueError:
        host, parts = "", None
    if parts is None or parts.scheme not in ("https", "http") or not host or parts.username or parts.password:
        raise ValueError(f"{name} is {value!r}, not a whole URL: write it with its scheme and host, like "
                         "https://example.com")
    if parts.scheme == "http" and host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"{name} is {value!r}: use https (plain http only on 127.0.0.1 or localhost)")
    return text


def _not_from(field: str, source: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """A settings source that never fills `field` (one set in code only, whatever the environment holds)."""

    def read() -> dict[str, Any]:
        return {k: v for k, v in source().items() if k != field}

    read.__name__ = type(source).__name__
    return read


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WAN_R2V_", extra="ignore", populate_by_name=True)

    provider: str | None = Field(default=None, description="Default provider; chosen from the keys present when unset.")
    data_dir: Path | None = Field(default=None, description="Where the task ledger lives.")
    output_dir: Path | None = Field(default=None, description="Where finished videos are saved.")
    allowed_dirs: str | None = Field(
        default=None, description="Folders references may come from, separated by the OS path separator.")
    remote: bool = Field(default=False, description="Serving over HTTP: local files are off unless folders are set.")
    wait_cap_seconds: float = Field(default=50.0, gt=0, validation_alias=_env("WAN_R2V_WAIT_CAP"))
    quiet_wait_seconds: float = Field(
        default=4.0, gt=0, validation_alias=_env("WAN_R2V_QUIET_WAIT"),
        description="The most a call waits for a client that asked for no progress (below openai-agents' 5 s).")
    max_cost_per_task_usd: float | None = Field(
        default=None, ge=0, validation_alias=_env("WAN_R2V_MAX_COST_PER_TASK"))
    max_cost_per_day_usd: float | None = Field(
        default=None, ge=0, validation_alias=_env("WAN_R2V_MAX_COST_PER_DAY"))
    duplicate_window_seconds: float = Field(
        default=900.0, ge=0, validation_alias=_env("WAN_R2V_DUPLICATE_WINDOW"))
    prices: str | None = Field(default=None, description="JSON overriding the price table, by provider and resolution.")
    progress_interval_seconds: float = Field(
        default=5.0, gt=0, validation_alias=_env("WAN_R2V_PROGRESS_INTERVAL")
    )
    request_deadline_seconds: float = Field(
        default=60.0, gt=0, validation_alias=_env("WAN_R2V_REQUEST_DEADLINE"),
        description="The most one API request to a host may take in all, however slowly it answers.")
    upload_deadline_seconds: float = Field(
        default=900.0, gt=0, validation_alias=_env("WAN_R2V_UPLOAD_DEADLINE"))
    download_deadline_seconds: float = Field(
        default=900.0, gt=0, validation_alias=_env("WAN_R2V_DOWNLOAD_DEADLINE"))
    time_scale: float = Field(
        default=1.0, gt=0, le=1, validation_alias=_env("WAN_R2V_TIME_SCALE"),
        description="Shrinks the follower's own waits (poll backoff, retries, reconciliation): for compressed "
                    "emulator timings in tests and soaks only.")

    # -- serving over HTTP (serve --transport http)
    http_tokens: SecretStr | None = Field(
        default=None, validation_alias=_env("WAN_R2V_HTTP_TOKENS"),
        description='Callers and their bearer tokens: JSON {"<token>": "<caller>"}, or the path of a file holding it.')
    database_url: SecretStr | None = Field(
        default=None, validation_alias=_env("WAN_R2V_DATABASE_URL"),
        description="postgresql://... : tasks, leases, sequences, characters and money in PostgreSQL, shared by "
                    "every replica; unset, SQLite in the data folder.")
    oauth_issuer: str | None = Field(default=None, validation_alias=_env("WAN_R2V_OAUTH_ISSUER"))
    oauth_audience: str | None = Field(default=None, validation_alias=_env("WAN_R2V_OAUTH_AUDIENCE"))
    oauth_jwks_url: str | None = Field(default=None, validation_alias=_env("WAN_R2V_OAUTH_JWKS_URL"))
    oauth_scopes: str | None = Field(default=None, validation_alias=_env("WAN_R2V_OAUTH_SCOPES"),
                                     description="Scopes every OAuth token must carry, separated by spaces.")
    public_url: str | None = Field(default=None, validation_alias=_env("WAN_R2V_PUBLIC_URL"),
                                   description="Where clients reach this server (its /mcp endpoint's origin).")
    allowed_hosts: str | None = Field(default=None, validation_alias=_env("WAN_R2V_ALLOWED_HOSTS"))
    allowed_origins: str | None = Field(default=None,
                                        validation_alias=_env("WAN_R2V_ALLOWED_ORIGINS"))
    max_body_bytes: int = Field(default=1024 * 1024, gt=0,
                                validation_alias=_env("WAN_R2V_MAX_BODY_BYTES"))
    video_url_seconds: float = Field(default=3600.0, gt=0,
                                     validation_alias=_env("WAN_R2V_VIDEO_URL_SECONDS"))
    resource_max_bytes: int = Field(default=8 * 1024 * 1024, gt=0,
                                    validation_alias=_env("WAN_R2V_RESOURCE_MAX_BYTES"))
    http_host: str = Field(default="127.0.0.1", validation_alias=_env("WAN_R2V_HOST"),
                           description="The address `serve --transport http` listens on.")
    # $PORT is what container platforms set; it is read only for the HTTP server's port.
    port: int = Field(default=8000, validation_alias=AliasChoices("WAN_R2V_PORT", "PORT"))

    # Each host's own settings (its key, region, URLs) are read by the host from its own variables
    # (providers/host_settings.py); these are values set in code over them, by host name: a caller's own key, an
    # emulator's address. Never read from the environment.
    hosts: dict[str, dict[str, Any]] = Field(default_factory=dict, exclude=True)
    _derived: dict[Any, Any] = PrivateAttr(default_factory=dict)  # what the layers above read once from these

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):  # type: ignore[no-untyped-def, override]
        return init_settings, _not_from("hosts", env_settings), dotenv_settings, file_secret_settings

    @model_validator(mode="before")
    @classmethod
    def _unfilled_is_unset(cls, values: object) -> object:
        return unfilled_is_unset(values)

    @field_validator("port", mode="before")
    @classmethod
    def _port_number(cls, value: object) -> object:
        text = str(value).strip()
        if not text.isdigit() or not 1 <= int(text) <= 65535:
            raise ValueError(f"the HTTP port (WAN_R2V_PORT, or PORT) is {value!r}: set a number from 1 to 65535, "
                             "or unset it")
        return int(text)

    @field_validator("oauth_issuer", "oauth_jwks_url", "public_url")
    @classmethod
    def _whole_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        return whole_url(value, env_name(info.field_name or ""))

    @field_validator("prices")
    @classmethod
    def _prices_are_json(cls, value: str | None) -> str | None:
        if value:
            try:
                table = json.loads(value)
                assert isinstance(table, dict) and all(isinstance(v, dict) for v in table.values())
                [float(x) for v in table.values() for x in v.values()]
            except (ValueError, AssertionError, TypeError):
                raise ValueError('WAN_R2V_PRICES must be JSON like {"dashscope": {"1080p": 0.14}}') from None
        return value

    def model_post_init(self, _context: object) -> None:
        for token in self.callers:
            register_secret(token)
        if self.database_url is not None:  # its password, wherever it shows (an error naming the URL)
            url = self.database_url.get_secret_value()
            register_secret(url)
            password = urlparse(url).password
            if password:
                register_secret(password)

    @cached_property
    def callers(self) -> dict[str, str]:
        """Bearer token -> caller name, from WAN_R2V_HTTP_TOKENS (inline JSON, or a file holding it), read once."""
        if self.http_tokens is None:
            return {}
        text = self.http_tokens.get_secret_value().strip()
        if not text.startswith("{"):
            try:
                text = Path(text).expanduser().read_text(encoding="utf-8")
            except OSError as exc:
                raise ValueError(f"WAN_R2V_HTTP_TOKENS names a file that cannot be read ({type(exc).__name__})") from None
        try:
            table = json.loads(text)
            assert isinstance(table, dict) and all(isinstance(k, str) and isinstance(v, str) and 16 <= len(k) <= 4096
                                                   and v.strip() and len(v) <= 256 for k, v in table.items())
        except (ValueError, AssertionError):
            raise ValueError('WAN_R2V_HTTP_TOKENS must be JSON like {"<token of 16-4096 characters>": "<caller>"}, '
                             "or the path of a file holding it") from None
        if any(caller.startswith("oauth:") for caller in table.values()):
            raise ValueError("WAN_R2V_HTTP_TOKENS names a caller starting with 'oauth:', which is kept for OAuth "
                             "subjects: rename that caller")
        return table

    @cached_property
    def data(self) -> DataDir:
        import platformdirs

        folder = self.data_dir or Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
        folder = folder.expanduser().resolve()  # files kept here are handed to hosts and previews by absolute path
        folder.mkdir(parents=True, exist_ok=True)
        return DataDir(folder)

    @cached_property
    def videos_dir(self) -> Path:
        import platformdirs

        folder = self.output_dir or Path(platformdirs.user_videos_dir()) / "wan-r2v"
        folder = folder.expanduser().resolve()
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def allowed_folders(self) -> list[Path]:
        if not self.allowed_dirs:
            return []
        text = self.allowed_dirs.strip()
        if text.startswith("["):
            return [Path(p).expanduser() for p in json.loads(text)]
        return [Path(p).expanduser() for p in text.split(os.pathsep) if p.strip()]

    def folders(self, client_roots: list[Path] | None = None):  # -> references.folders.Folders
        from .references.folders import build_folders

        return build_folders(self.allowed_folders, self.videos_dir, remote=self.remote, client_roots=client_roots or ())


class ConfigError(Exception):
    """The environment's settings cannot be used: one sentence per problem, each naming the variable and the fix."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def env_name(field: str, model: type[BaseModel] = Settings) -> str:
    """The environment variable that sets a field (of `model`: these settings, or a host's own)."""
    alias = model.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return f"WAN_R2V_{field.upper()}"


def sentences(exc: ValidationError, model: type[BaseModel] = Settings) -> list[str]:
    """One sentence per problem in `exc`, naming the variable and the fix."""
    return [_sentence(e, model) for e in exc.errors(include_url=False)]


def _sentence(error: Any, model: type[BaseModel]) -> str:
    field = str(error["loc"][0]) if error.get("loc") else "?"
    name = env_name(field, model) if field in model.model_fields else field
    value = error.get("input")
    kind = error.get("type", "")
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind in ("float_parsing", "int_parsing", "float_type", "int_type"):
        return f"{name} is {value!r}, not a number: set a number (e.g. {name}=5) or unset it"
    if kind in ("greater_than", "greater_than_equal", "less_than_equal", "less_than"):
        bound = {"greater_than": "more than", "greater_than_equal": "at least", "less_than_equal": "at most",
                 "less_than": "less than"}[kind]
        limit = next(iter((error.get("ctx") or {}).values()), "?")
        return f"{name} is {value!r}, but it must be {bound} {limit}: change it or unset it"
    if kind == "bool_parsing":
        return f"{name} is {value!r}, not true or false"
    return f"{name}: {error.get('msg', 'is not valid')} (got {value!r})"


def _writable(folder_of: str, name: str, settings: Settings) -> str | None:
    try:
        folder = getattr(settings, folder_of)  # made on first use
        folder = folder.root if folder_of == "data" else folder
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return (f"{name} cannot be created or written ({exc.strerror or type(exc).__name__}): point it at a folder "
                "you can write to")
    return None


def load_settings(checks: Iterable[Callable[[Settings], list[str]]] = (), **overrides: object) -> Settings:
    """The settings from the environment, checked before anything starts (with `checks`, each returning its
    problems); raises ConfigError naming every problem."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(sentences(exc)) from None
    problems: list[str] = []
    for check in checks:  # what the layers above know of (the providers' names, each host's own settings)
        problems.extend(check(settings))
    for attr, name in (("data", "WAN_R2V_DATA_DIR"), ("videos_dir", "WAN_R2V_OUTPUT_DIR")):
        if (problem := _writable(attr, name, settings)) is not None:
            problems.append(problem)
    try:
        settings.callers  # noqa: B018 - parse the tokens now, not at the first request
    except ValueError as exc:
        problems.append(str(exc))
    try:
        folders = settings.allowed_folders
        assert all(isinstance(p, Path) for p in folders)
    except (ValueError, TypeError, AssertionError):
        problems.append("WAN_R2V_ALLOWED_DIRS starts with [ but is not a JSON list of folders: write "
                        '["/path/one", "/path/two"], or the folders separated by ' + repr(os.pathsep))
    if problems:
        raise ConfigError(problems)
    return settings
