"""Settings from the environment (the same names work in a client's `env` block)."""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import register_secret

APP_NAME = "wan-r2v-mcp"

# Which variable holds each host's key, in the order a default provider is chosen.
PROVIDER_KEYS: dict[str, str] = {
    "dashscope": "dashscope_api_key",
    "replicate": "replicate_api_token",
    "inferencesh": "inference_api_key",
    "fal": "fal_key",
}


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WAN_R2V_", extra="ignore", populate_by_name=True)

    provider: str | None = Field(default=None, description="Default provider; chosen from the keys present when unset.")
    data_dir: Path | None = Field(default=None, description="Where the task ledger lives.")
    output_dir: Path | None = Field(default=None, description="Where finished videos are saved.")
    allowed_dirs: str | None = Field(
        default=None, description="Folders references may come from, separated by the OS path separator.")
    remote: bool = Field(default=False, description="Serving over HTTP: local files are off unless folders are set.")
    wait_cap_seconds: float = Field(default=50.0, gt=0, validation_alias=_env("WAN_R2V_WAIT_CAP", "wait_cap_seconds"))
    max_cost_per_task_usd: float | None = Field(
        default=None, ge=0, validation_alias=_env("WAN_R2V_MAX_COST_PER_TASK", "max_cost_per_task_usd"))
    max_cost_per_day_usd: float | None = Field(
        default=None, ge=0, validation_alias=_env("WAN_R2V_MAX_COST_PER_DAY", "max_cost_per_day_usd"))
    duplicate_window_seconds: float = Field(
        default=900.0, ge=0, validation_alias=_env("WAN_R2V_DUPLICATE_WINDOW", "duplicate_window_seconds"))
    prices: str | None = Field(default=None, description="JSON overriding the price table, by provider and resolution.")
    progress_interval_seconds: float = Field(
        default=5.0, gt=0, validation_alias=_env("WAN_R2V_PROGRESS_INTERVAL", "progress_interval_seconds")
    )
    request_deadline_seconds: float = Field(
        default=60.0, gt=0, validation_alias=_env("WAN_R2V_REQUEST_DEADLINE", "request_deadline_seconds"),
        description="The most one API request to a host may take in all, however slowly it answers.")
    upload_deadline_seconds: float = Field(
        default=900.0, gt=0, validation_alias=_env("WAN_R2V_UPLOAD_DEADLINE", "upload_deadline_seconds"))
    download_deadline_seconds: float = Field(
        default=900.0, gt=0, validation_alias=_env("WAN_R2V_DOWNLOAD_DEADLINE", "download_deadline_seconds"))
    time_scale: float = Field(
        default=1.0, gt=0, le=1, validation_alias=_env("WAN_R2V_TIME_SCALE", "time_scale"),
        description="Shrinks the follower's own waits (poll backoff, retries, reconciliation): for compressed "
                    "emulator timings in tests and soaks only.")

    # -- serving over HTTP (serve --transport http)
    http_tokens: SecretStr | None = Field(
        default=None, validation_alias=_env("WAN_R2V_HTTP_TOKENS", "http_tokens"),
        description='Callers and their bearer tokens: JSON {"<token>": "<caller>"}, or the path of a file holding it.')
    oauth_issuer: str | None = Field(default=None, validation_alias=_env("WAN_R2V_OAUTH_ISSUER", "oauth_issuer"))
    oauth_audience: str | None = Field(default=None, validation_alias=_env("WAN_R2V_OAUTH_AUDIENCE", "oauth_audience"))
    oauth_jwks_url: str | None = Field(default=None, validation_alias=_env("WAN_R2V_OAUTH_JWKS_URL", "oauth_jwks_url"))
    oauth_scopes: str | None = Field(default=None, validation_alias=_env("WAN_R2V_OAUTH_SCOPES", "oauth_scopes"),
                                     description="Scopes every OAuth token must carry, separated by spaces.")
    public_url: str | None = Field(default=None, validation_alias=_env("WAN_R2V_PUBLIC_URL", "public_url"),
                                   description="Where clients reach this server (its /mcp endpoint's origin).")
    allowed_hosts: str | None = Field(default=None, validation_alias=_env("WAN_R2V_ALLOWED_HOSTS", "allowed_hosts"))
    allowed_origins: str | None = Field(default=None,
                                        validation_alias=_env("WAN_R2V_ALLOWED_ORIGINS", "allowed_origins"))
    max_body_bytes: int = Field(default=1024 * 1024, gt=0,
                                validation_alias=_env("WAN_R2V_MAX_BODY_BYTES", "max_body_bytes"))
    video_url_seconds: float = Field(default=3600.0, gt=0,
                                     validation_alias=_env("WAN_R2V_VIDEO_URL_SECONDS", "video_url_seconds"))
    resource_max_bytes: int = Field(default=8 * 1024 * 1024, gt=0,
                                    validation_alias=_env("WAN_R2V_RESOURCE_MAX_BYTES", "resource_max_bytes"))

    dashscope_api_key: SecretStr | None = Field(default=None, validation_alias=_env("DASHSCOPE_API_KEY", "dashscope_api_key"))
    dashscope_region: str = Field(default="singapore", validation_alias=_env("DASHSCOPE_REGION", "dashscope_region"))
    dashscope_base_url: str | None = Field(default=None, validation_alias=_env("DASHSCOPE_BASE_URL", "dashscope_base_url"))
    dashscope_workspace_id: str | None = Field(
        default=None, validation_alias=_env("DASHSCOPE_WORKSPACE_ID", "dashscope_workspace_id")
    )
    replicate_api_token: SecretStr | None = Field(
        default=None, validation_alias=_env("REPLICATE_API_TOKEN", "replicate_api_token")
    )
    replicate_base_url: str | None = Field(default=None, validation_alias=_env("REPLICATE_BASE_URL", "replicate_base_url"))
    inference_api_key: SecretStr | None = Field(default=None, validation_alias=_env("INFERENCE_API_KEY", "inference_api_key"))
    inference_base_url: str | None = Field(default=None, validation_alias=_env("INFERENCE_BASE_URL", "inference_base_url"))
    fal_key: SecretStr | None = Field(default=None, validation_alias=_env("FAL_KEY", "fal_key"))
    fal_queue_url: str | None = Field(default=None, validation_alias=_env("FAL_QUEUE_URL", "fal_queue_url"))
    fal_rest_url: str | None = Field(default=None, validation_alias=_env("FAL_REST_URL", "fal_rest_url"))

    @model_validator(mode="before")
    @classmethod
    def _unfilled_is_unset(cls, values: object) -> object:
        """A client that fills a config template may pass an optional value empty, or as its placeholder left
        unreplaced ("${user_config.fal_key}" from a bundle's unset option): both mean "not set"."""
        if isinstance(values, dict):
            return {k: v for k, v in values.items()
                    if not (isinstance(v, str) and (not v.strip() or v.strip().startswith("${user_config.")))}
        return values

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
        for attr in PROVIDER_KEYS.values():
            secret = getattr(self, attr)
            if secret is not None:
                register_secret(secret.get_secret_value())
        for token in self.callers:
            register_secret(token)

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
            assert isinstance(table, dict) and all(isinstance(k, str) and isinstance(v, str) and len(k) >= 16 and v
                                                   for k, v in table.items())
        except (ValueError, AssertionError):
            raise ValueError('WAN_R2V_HTTP_TOKENS must be JSON like {"<token of 16+ characters>": "<caller>"}, '
                             "or the path of a file holding it") from None
        return table

    @cached_property
    def ledger_path(self) -> Path:
        import platformdirs

        folder = self.data_dir or Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
        folder = folder.expanduser().resolve()  # files kept here are handed to hosts and previews by absolute path
        folder.mkdir(parents=True, exist_ok=True)
        return folder / "tasks.sqlite3"

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

    def api_key(self, provider: str) -> str | None:
        attr = PROVIDER_KEYS.get(provider)
        secret = getattr(self, attr) if attr else None
        return secret.get_secret_value() if secret is not None else None

    @property
    def default_provider(self) -> str:
        if self.provider:
            return self.provider
        from .providers import available

        for name in PROVIDER_KEYS:
            if self.api_key(name) and name in available():
                return name
        return "preview"


class ConfigError(Exception):
    """The environment's settings cannot be used: one sentence per problem, each naming the variable and the fix."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def env_name(field: str) -> str:
    """The environment variable that sets a field."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return f"WAN_R2V_{field.upper()}"


def _sentence(error: dict) -> str:
    field = str(error["loc"][0]) if error.get("loc") else "?"
    name = env_name(field) if field in Settings.model_fields else field
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
        folder = folder.parent if folder_of == "ledger_path" else folder
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return (f"{name} cannot be created or written ({exc.strerror or type(exc).__name__}): point it at a folder "
                "you can write to")
    return None


def load_settings(**overrides: object) -> Settings:
    """The settings from the environment, checked before anything starts; raises ConfigError naming every problem."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError([_sentence(e) for e in exc.errors(include_url=False)]) from None
    problems: list[str] = []
    if settings.provider:
        from .providers import available

        if settings.provider not in available():
            problems.append(f"WAN_R2V_PROVIDER is {settings.provider!r}, which is not a provider: use one of "
                            f"{', '.join(available())}, or unset it")
    for attr, name in (("ledger_path", "WAN_R2V_DATA_DIR"), ("videos_dir", "WAN_R2V_OUTPUT_DIR")):
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
