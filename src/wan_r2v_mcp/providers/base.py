"""The one interface every host of Wan 2.7 R2V sits behind.

A provider is in charge of: turning the canonical request into its host's payload (a pure function),
putting local references in the host's own storage, creating, polling and cancelling one job, listing
the jobs a lost create may have made, and fetching the finished video's bytes, each in one attempt
under a deadline. It is not in charge of: the ledger, deciding when to poll, whether to try again or
which job is a task's, or where results land. Those belong to the follower. A provider sees plain
values (a `JobRef`), never the ledger's row.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import InputError, ProviderUnavailable
from ..schema import Limits, Status, TaskError
from . import HOSTS, host_settings

if TYPE_CHECKING:
    from ..config import Settings
    from ..references.intake import Intake, Reference

# The optional canonical fields, with the value that means "not used".
OPTIONAL_FIELDS: dict[str, Any] = {
    "negative_prompt": None,
    "first_frame": None,
    "voices": [],
    "shot_type": None,
    "prompt_extend": None,
    "watermark": False,
    "seed": None,
    "audio": None,
    "last_frame": None,
    "first_clip": None,
    "driving_audio": None,
}


@dataclass(frozen=True)
class Capabilities:
    """One host's own facts, whatever model it makes: how to pace, poll and list it."""

    name: str
    title: str
    poll_initial_seconds: float = 3.0  # then x1.5 per poll up to poll_max_seconds
    poll_max_seconds: float = 15.0
    max_polls_per_second: float = 10.0  # our pace for this host's status calls, all tasks together
    # Hosts whose job list shows statuses: one sweep of the list every `sweep_seconds` tells which followed jobs
    # ended, so each job is polled once when it ends (and every `sweep_safety_seconds` meanwhile), not every 15 s.
    sweep_seconds: float | None = None
    sweep_safety_seconds: float = 300.0
    local: bool = False
    cancel_is_request: bool = False  # a cancel of a running job is only a signal: keep following it
    # Tasks being sent to the host at once (their uploads and create), all tasks together: a burst of requests
    # answered at once (wait 0) waits its turn here rather than opening a connection each.
    max_sends: int = 16

    @property
    def key_env(self) -> str | None:
        """The host's own variable for its key, as its record says (None: it needs no key)."""
        return HOSTS[self.name].key_env


@dataclass(frozen=True)
class Route:
    """How one host serves one model (a spec in `models/`): the host's id for it, the optional inputs it honours,
    its limits where narrower than the model's, and the provider method that maps a request to its payload (a pure
    function of the request, its references and their addresses)."""

    model: str  # the model's own name, as `models.spec` knows it and a task row records it
    host_model: str  # the host's name for it: the model field, endpoint, app or model path, as its job lists show it
    supports: frozenset[str]
    payload: str  # the name of the provider's method building the body
    duration_max: int = Limits.DURATION_MAX
    duration_max_with_video: int = Limits.DURATION_MAX_WITH_VIDEO
    max_voices: int = Limits.REFERENCES_MAX
    # Media items one request may carry, the first frame included, where the host's schema caps them (DashScope's
    # `input.media` has maxItems 5; whether the first frame counts is unconfirmed, so the stricter reading is kept).
    media_max: int | None = None
    audio_seconds: tuple[float, float] | None = None  # a text-to-video audio's length, where narrower than the model's
    only: tuple[tuple[str, Any], ...] = ()  # fields the host does not take, and the one value it then makes
    # Image-to-video's combinations of media this host is known to take, where fewer than the model's.
    modes: tuple[frozenset[str], ...] | None = None
    references_max: int | None = None  # video editing's reference images, where fewer than the model's
    prices: dict[str, float] | None = None  # USD per billable second by resolution, where not the host's own
    price_source: str = ""
    input_billed: bool = True  # whether the host bills the input clips' seconds the model's rule counts


def optional_inputs(request: Any, prompt_extend: str = "prompt_extend") -> dict[str, Any]:
    """The optional inputs Wan 2.7 bodies name alike, each only when given: a negative prompt, prompt expansion (under
    the host's name for it) and a seed."""
    given: dict[str, Any] = {}
    if getattr(request, "negative_prompt", None):
        given["negative_prompt"] = request.negative_prompt
    if request.prompt_extend is not None:
        given[prompt_extend] = request.prompt_extend
    if request.seed is not None:
        given["seed"] = request.seed
    return given


def serves(*served: Route) -> dict[str, Route]:
    return {route.model: route for route in served}


@dataclass(frozen=True)
class JobRef:
    """What a provider needs to address one job at its host."""

    provider_task_id: str
    payload: dict[str, Any] | None = None  # the preview renders again from it after a restart
    model: str | None = None  # the model it makes (`Route.model`), where a host addresses its models' jobs apart


@dataclass(frozen=True)
class HostCandidate:
    """A job the host lists, as evidence for a create whose answer was lost."""

    provider_task_id: str
    created_at: float | None  # epoch seconds, when the host says
    model: str | None
    prompt: str | None  # None while the host does not show it (DashScope: only once the job succeeded)
    status: Status | None = None  # as the listing says, when it does


@dataclass
class HostJob:
    """What a host says about one job, in our vocabulary."""

    provider_task_id: str
    status: Status
    stage: str
    progress: float | None = None
    video_url: str | None = None
    video_url_expires_at: float | None = None
    billable_seconds: float | None = None
    error: TaskError | None = None
    prompt: str | None = None  # the job's prompt, where the host shows it (evidence for reconciliation)
    extra: dict[str, Any] = field(default_factory=dict)


ProgressFn = Callable[[float], Awaitable[None]]
PageTurn = Callable[[], Awaitable[None]]  # awaited before each page of a host's job list


class Provider(ABC):
    capabilities: ClassVar[Capabilities]
    routes: ClassVar[dict[str, Route]]  # by model: what this host makes

    def __init__(self, settings: Settings):
        caps = self.capabilities
        self.own = host_settings(settings, caps.name)  # this host's own settings: its key, region, URLs
        self.key = self.own.api_key.get_secret_value() if self.own.api_key is not None else ""
        if caps.key_env and not self.key:
            raise ProviderUnavailable(f"{caps.title} needs an API key and {caps.key_env} is not set", field="provider",
                                      fix=f"set {caps.key_env} in the server's environment, or try "
                                          "provider=\"preview\" for a free offline draft")
        self.settings = settings

    def route(self, model: str) -> Route:
        """How this host makes `model`; raises `ProviderUnavailable` naming the hosts that do."""
        found = self.routes.get(model)
        if found is None:
            from . import hosts_serving

            others = [h for h in hosts_serving(model) if h != self.capabilities.name]
            raise ProviderUnavailable(f"{self.capabilities.title} does not serve {model}", field="provider",
                                      fix=f"use provider={' or '.join(others)}" if others else "use another model")
        return found

    # -- checks before anything is uploaded or paid

    def refusals(self, request: Any, route: Route) -> list[InputError]:
        """Inputs this host cannot honour for the route's model; each names the hosts that can."""
        from ..models import spec
        from . import hosts_supporting

        caps = self.capabilities
        problems: list[InputError] = []
        fields = type(request).model_fields
        lacks = spec(route.model).lacks
        for name, unused in OPTIONAL_FIELDS.items():
            value = getattr(request, name, unused)
            if value != unused and name in lacks:  # the model's own gap, whoever hosts it
                problems.append(InputError(f"{route.model} takes no {name}", field=name, fix=lacks[name]))
            elif value != unused and name not in route.supports:
                others = hosts_supporting(name, route.model)
                problems.append(InputError(
                    f"{caps.title} cannot take {name}", field=name,
                    fix=f"leave {name} out, or use provider={' or '.join(others)}" if others else f"leave {name} out",
                ))
        for name, made in route.only:
            if name in fields and getattr(request, name) != made:
                problems.append(InputError(
                    f"{caps.title} takes no {name} for this model: it makes {made}", field=name,
                    fix=f"leave {name} out (it is {made}), or use another provider"))
        if route.modes is not None and "first_clip" in fields and request.media in Limits.I2V_MODES \
                and request.media not in route.modes:
            from . import hosts_serving, provider_class

            others = [h for h in hosts_serving(route.model) if h != caps.name and (
                (m := provider_class(h).routes[route.model].modes) is None or request.media in m)]
            problems.append(InputError(
                f"{caps.title} is not known to take {' with '.join(sorted(request.media))} (its docs leave it open, so "
                "it is refused rather than guessed)", field="first_clip" if "first_clip" in request.media else
                "last_frame", fix=f"use provider={' or '.join(others)}" if others else "drop last_frame"))
        if "video" in fields and route.references_max is not None and \
                len(request.reference_images) > route.references_max:
            from . import hosts_serving, provider_class

            others = [h for h in hosts_serving(route.model) if (m := provider_class(h).routes[route.model].references_max)
                      is None or m >= len(request.reference_images)]
            problems.append(InputError(
                f"{caps.title} takes {route.references_max} reference image for an edit, and this one has "
                f"{len(request.reference_images)}", field="reference_images", limit=f"{route.references_max} on {caps.name}",
                fix=f"keep the one that matters most, or use provider={' or '.join(others)}" if others else
                "keep the one that matters most"))
        if "reference_videos" not in fields:
            return problems + self._duration_refusals(request.duration, False, route)
        if "voices" in route.supports and len(request.voices) > route.max_voices:
            problems.append(InputError(
                f"{caps.title} takes at most {route.max_voices} voice{'s' if route.max_voices != 1 else ''}",
                field="voices", limit=f"{route.max_voices} on {caps.name}",
                fix="keep fewer voices, or use provider=dashscope"))
        references = len(request.reference_images) + len(request.reference_videos)
        if route.media_max and request.first_frame is not None and references + 1 > route.media_max:
            problems.append(InputError(
                f"with a first frame, {caps.title} takes at most {route.media_max - 1} references, and this request "
                f"has {references}", field="first_frame",
                limit=f"{route.media_max} media items in all on {caps.name}, the first frame counted (the host's schema "
                      "caps the list; whether the frame counts is not confirmed, so the stricter reading is used)",
                fix=f"keep at most {route.media_max - 1} references with a first frame, or leave first_frame out"))
        return problems + self._duration_refusals(request.duration, bool(request.reference_videos), route)

    def _duration_refusals(self, duration: int, with_video: bool, route: Route) -> list[InputError]:
        caps = self.capabilities
        problems: list[InputError] = []
        limit = route.duration_max_with_video if with_video else route.duration_max
        if duration > limit:
            model_limit = Limits.DURATION_MAX_WITH_VIDEO if with_video else Limits.DURATION_MAX
            who = "Wan 2.7" if limit == model_limit else caps.title
            why = " when any reference video is given" if with_video and limit < route.duration_max else ""
            problems.append(InputError(
                f"is {duration} s, but {who} makes at most {limit} s{why}", field="duration",
                limit=f"{Limits.DURATION_MIN}-{limit} s" + (f" on {caps.name}" if who != "Wan 2.7" else "") + why,
                fix=f"ask for {limit} s or less" + (", or drop the reference videos" if why else ""),
            ))
        return problems

    def media_refusals(self, intake: Intake, route: Route) -> list[InputError]:
        """What the probed media break of this host's narrower limits (a text-to-video audio's length)."""
        problems: list[InputError] = []
        for ref in intake.references:
            seconds = ref.media.duration_seconds if ref.media else None
            if ref.role in ("audio", "driving_audio") and route.audio_seconds and seconds is not None:
                lo, hi = route.audio_seconds
                if seconds < lo - 0.05 or seconds > hi + 0.05:
                    others = [n for n in _hosts_taking_audio(route.model, ref.role, seconds)
                              if n != self.capabilities.name]
                    problems.append(InputError(
                        f"lasts {seconds:.1f} s", field=ref.field, limit=f"{lo:g}-{hi:g} s on {self.capabilities.name}",
                        fix=(f"use a clip of at least {lo:g} s" if seconds < lo else f"trim it to {hi:g} s")
                        + (f", or use provider={' or '.join(others)}" if others else "")))
        return problems

    def notes(self, request: Any) -> list[str]:
        """What may not come out as meant on this host, though nothing stops the request (shown as warnings)."""
        return []

    # -- the host's side

    def build_payload(self, request: Any, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        """The exact body this host gets for the route's model; `urls` maps a reference label to where the host
        reads it."""
        return getattr(self, route.payload)(request, intake, urls, route)

    @abstractmethod
    async def upload(self, ref: Reference, route: Route, *, scope: str = "") -> str:
        """Put one local reference where the host can read it for the route's model; return that address. Uploads
        kept for reuse are kept per `scope` (the caller), never shared across callers."""

    @abstractmethod
    async def submit(self, payload: dict[str, Any], route: Route) -> HostJob:
        """Create the job, once. Raises `SubmitUnknown` when it may or may not have been made."""

    @abstractmethod
    async def poll(self, job: JobRef) -> HostJob:
        """The job's state now."""

    @abstractmethod
    async def cancel(self, job: JobRef) -> HostJob | None:
        """Ask the host to stop the job; the job's state after the request, when the host says."""

    @abstractmethod
    async def download(self, job: HostJob, dest: Path, progress: ProgressFn | None = None) -> None:
        """Write the finished video to `dest` (a new temporary file), in one attempt under a deadline."""

    async def find_submitted(self, *, since: float, until: float, model: str | None = None,
                             before_page: PageTurn | None = None) -> list[HostCandidate] | None:
        """Jobs the host made between `since` and `until` (epoch seconds), of the host's `model` where the host can
        filter by it (else of every model: each candidate says its own): the candidates for a create whose answer
        was lost, and the list sweep's reading. None when the host cannot list its jobs. `before_page` is awaited
        before each page is asked for (the host's pace: a long list is many calls)."""
        return None

    async def check_access(self) -> str:
        """Prove the key works with this host's cheapest call that costs nothing (`doctor --live`); returns what it
        showed, in a few words. Raises a ProviderError saying what is wrong and what to change. Never pays."""
        return "no live check for this host"

    async def aclose(self) -> None:
        """Release connections and background work."""

    def describe(self, ref: Reference) -> str:
        """How a not-yet-uploaded local reference is shown in a dry-run payload."""
        return f"<{ref.label}: local file, uploaded to {self.capabilities.title} storage on submit>"


def _hosts_taking_audio(model: str, field: str, seconds: float) -> list[str]:
    from . import hosts_supporting, provider_class

    lo, hi = Limits.AUDIO_SECONDS
    found = []
    for name in hosts_supporting(field, model):
        bounds = provider_class(name).routes[model].audio_seconds or (lo, hi)
        if bounds[0] - 0.05 <= seconds <= bounds[1] + 0.05:
            found.append(name)
    return found
