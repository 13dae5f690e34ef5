"""Provider lookup by name. A host's module is imported only when that host is first used."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING

from pydantic import AliasChoices

from ..schema import MODEL_ID
from .host_settings import DashScopeSettings, FalSettings, HostSettings, InferenceShSettings, ReplicateSettings, read

if TYPE_CHECKING:
    from ..config import Settings
    from .base import Provider


@dataclass(frozen=True)
class HostInfo:
    """One host's own facts. Every table that names hosts (the key variables and headers, client configs, the
    player's media origins, the prices, the packaging files' key fields) is made from these records."""

    name: str
    provider: str  # "module:Class", imported only when the host is first used
    title: str
    settings: type[HostSettings] = HostSettings  # its own settings, read from its own variables
    key_option: str | None = None  # the bundle's option (manifest.json user_config) that fills key_env
    key_header: str | None = None  # the header a caller brings its own key in, over HTTP
    key_query: str | None = None  # the same as Smithery's per-connection query parameter
    key_prompt: str | None = None  # the id a client config asks for the key under (VS Code's inputs)
    key_title: str | None = None  # how a person knows the key
    result_origins: tuple[str, ...] = ()  # where finished videos are served from
    prices: dict[str, float] = field(default_factory=dict)  # USD per billable second, by output resolution
    price_source: str = ""  # where the prices come from, and whether they are estimates

    @property
    def key_env(self) -> str | None:
        """The host's own variable for its key (which its SDK reads too): its settings' `api_key`."""
        alias = self.settings.model_fields["api_key"].validation_alias
        return alias.choices[0] if isinstance(alias, AliasChoices) else None  # type: ignore[return-value]


# One line (one record) per host; the order is the order a default host is chosen in, after the preview.
HOSTS: dict[str, HostInfo] = {h.name: h for h in (
    HostInfo("preview", "wan_r2v_mcp.providers.preview:PreviewProvider", "the offline preview",
             prices={"720p": 0.0, "1080p": 0.0}, price_source="free: rendered locally"),
    HostInfo("dashscope", "wan_r2v_mcp.providers.dashscope:DashScopeProvider", "DashScope",
             settings=DashScopeSettings,
             key_option="dashscope_api_key", key_header="X-DashScope-Api-Key",
             key_query="dashscopeApiKey", key_prompt="dashscope-key",
             key_title="DashScope (Alibaba Model Studio) API key", result_origins=("https://*.aliyuncs.com",),
             # Alibaba lists no USD rate for wan2.7-r2v in the material we have; resellers of the same model
             # charge $0.10/s at 720p and $0.15/s at 1080p (Runware's Wan 2.7 page), taken as the estimate.
             prices={"720p": 0.10, "1080p": 0.15},
             price_source="estimate from resellers' Wan 2.7 rates (Runware docs), not an Alibaba price list"),
    HostInfo("replicate", "wan_r2v_mcp.providers.replicate:ReplicateProvider", "Replicate",
             settings=ReplicateSettings,
             key_option="replicate_api_token", key_header="X-Replicate-Api-Token",
             key_query="replicateApiToken", key_prompt="replicate-token", key_title="Replicate API token",
             result_origins=("https://replicate.delivery", "https://*.replicate.delivery"),
             # An estimate, so that the caps apply: Replicate publishes no Wan 2.7 R2V price (third parties report
             # $0.10/s; 1080p is taken at DashScope's resale rate, to err on the side of the caps).
             prices={"720p": 0.10, "1080p": 0.15},
             price_source="estimate: Replicate publishes no price for the model; third parties report $0.10/s "
                          "(set WAN_R2V_PRICES to your own rate)"),
    HostInfo("inferencesh", "wan_r2v_mcp.providers.inferencesh:InferenceShProvider", "inference.sh",
             settings=InferenceShSettings,
             key_option="inference_api_key", key_header="X-Inference-Api-Key",
             key_query="inferenceApiKey", key_prompt="inference-key", key_title="inference.sh API key",
             result_origins=("https://*.inference.sh",),
             # An estimate: inference.sh points to Alibaba's pricing, and its app runs the model on DashScope.
             prices={"720p": 0.10, "1080p": 0.15},
             price_source="estimate: inference.sh points to Alibaba's pricing; DashScope's resale rate is taken "
                          "(set WAN_R2V_PRICES to your own rate)"),
    HostInfo("fal", "wan_r2v_mcp.providers.fal:FalProvider", "fal",
             settings=FalSettings,
             key_option="fal_key", key_header="X-Fal-Key", key_query="falKey",
             key_prompt="fal-key", key_title="fal API key", result_origins=("https://fal.media", "https://*.fal.media"),
             prices={"720p": 0.10, "1080p": 0.10},
             price_source="fal's model page: $0.10 per second of input video plus output, any resolution"),
)}
PRICES_AS_OF = "2026-12"
_REGISTRY = {name: host.provider for name, host in HOSTS.items()}


def available() -> list[str]:
    return list(_REGISTRY)


def provider_class(name: str) -> type[Provider]:
    module, _, attr = _REGISTRY[name].partition(":")
    return getattr(import_module(module), attr)


def hosts_serving(model: str) -> list[str]:
    """Names of the real hosts (not the preview) that make `model`."""
    return [n for n in _REGISTRY if n != "preview" and model in provider_class(n).routes]


def hosts_supporting(field: str, model: str = MODEL_ID) -> list[str]:
    """Names of the real hosts (not the preview) that honour an optional field of `model`."""
    return [n for n in hosts_serving(model) if field in provider_class(n).routes[model].supports]


def default_provider(settings: Settings) -> str:
    """WAN_R2V_PROVIDER, else the first host whose key is set, else the offline preview."""
    if settings.provider:
        return settings.provider
    for name in keyed():
        if api_key(settings, name):
            return name
    return "preview"


def setting_problems(settings: Settings) -> list[str]:
    """What is wrong with the settings that name providers, and with each host's own (a check for
    `config.load_settings`: every host's settings are read, and its key kept from output, before anything starts)."""
    from pydantic import ValidationError

    from ..config import sentences

    problems = []
    if settings.provider and settings.provider not in _REGISTRY:
        problems.append(f"WAN_R2V_PROVIDER is {settings.provider!r}, which is not a provider: use one of "
                        f"{', '.join(_REGISTRY)}, or unset it")
    for name, host in HOSTS.items():
        try:
            read(settings, host.settings, name)
        except ValidationError as exc:
            problems.extend(sentences(exc, host.settings))
    return problems


def keyed() -> list[str]:
    """The hosts that need a key, in the order a default is chosen."""
    return [name for name, host in HOSTS.items() if host.key_env]


def host_settings(settings: Settings, name: str) -> HostSettings:
    """A host's own settings (its key, region, URLs), from its variables under what code set in `settings.hosts`;
    raises `NotConfigured` naming each variable at fault (the CLI checks them all before it starts)."""
    from pydantic import ValidationError

    try:
        return read(settings, HOSTS[name].settings, name)
    except ValidationError as exc:
        from ..config import sentences
        from ..errors import NotConfigured

        raise NotConfigured("; ".join(sentences(exc, HOSTS[name].settings)),
                            fix="correct that variable in the server's environment and start it again") from None


def api_key(settings: Settings, name: str) -> str | None:
    """The operator's key for a host (or the caller's, in a registry's copy), from the host's own variable."""
    secret = host_settings(settings, name).api_key if name in HOSTS else None
    return secret.get_secret_value() if secret is not None else None


def key_headers() -> dict[str, tuple[str, str]]:
    """Per host, the header and the Smithery query parameter a caller's own key comes in."""
    return {n: (h.key_header, h.key_query) for n, h in HOSTS.items() if h.key_header and h.key_query}


def result_origins() -> list[str]:
    return [origin for host in HOSTS.values() for origin in host.result_origins]
