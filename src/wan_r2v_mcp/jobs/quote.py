"""Quoting a request: every check that needs no network, the budget, the cost and the dry run.

Nothing here uploads, submits or writes the ledger: a quote can be thrown away at no cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..cast.roster import Cast
from ..cast.use import cast_into, kept_files, resolve
from ..config import Settings
from ..errors import BudgetError, InputError, InputErrors
from ..models import spec as model_spec
from ..models.i2v import LABELS as I2V_LABELS
from ..providers.base import Provider, Route
from ..providers.registry import ProviderRegistry
from ..references.flatten import flatten_alpha
from ..references.folders import Folders
from ..references.intake import Intake, admit, admit_media
from ..schema import (
    MODEL_ID,
    WAN3_MODEL_ID,
    AnyArgs,
    AnyRequest,
    GenerateArgs,
    I2VArgs,
    Limits,
    R2VRequest,
    TaskView,
)
from ..store import Spend, Store, TaskRecord
from . import cost, prices
from .fingerprint import fingerprint
from .views import task_view


@dataclass
class Quote:
    """A request that passed every check, with its open reference files (close it when done)."""

    request: AnyRequest
    provider: Provider
    route: Route  # how the provider makes the model
    intake: Intake
    billable_seconds: float
    cost_estimate: float | None
    fingerprint: str
    key_from: str | None = None  # "caller" when the caller's own host key pays for it
    cast: dict[str, str] | None = None  # each character's label, when the request brought characters

    @property
    def model(self) -> str:
        """The models/ spec that bills it, recorded on the task."""
        return self.route.model

    def close(self) -> None:
        self.intake.close()

    def recorded_request(self) -> dict[str, Any]:
        """The request as the ledger keeps it: the model's inputs, and which label each character got."""
        body = self.request.model_dump(mode="json")
        if self.cast:
            body["characters"] = self.cast
        return body


def quote(args: AnyArgs, folders: Folders, *, settings: Settings,
          providers: ProviderRegistry, ledger: Store, owner: str = "", cast: Cast | None = None,
          model_chosen: bool = True) -> Quote:
    """Check everything that needs no network, for any model: its spec's own checks, the host's, each file probed and
    judged against both; raises one InputErrors naming every problem at once. Characters are brought in from `cast`
    first, so every check applies to the request as it will be sent. `model_chosen`: the caller may choose the model
    (a sequence's shots are Wan 2.7's), so a refusal may name the one that would do."""
    labels: dict[str, str] = {}
    if cast is not None and isinstance(args, GenerateArgs):
        args, folders, labels = cast_into(args, cast, owner, folders)
    elif cast is not None and isinstance(args, I2VArgs) and args.character:
        args, folders, labels = _character_media(args, cast, owner, folders)
    request = args.request()
    spec = model_spec(request.model)
    if problems := spec.problems(request):
        raise InputErrors(problems)
    try:
        provider = providers.get(args.provider, caller=owner)
        route = provider.route(spec.name)
    except InputError as exc:
        raise InputErrors([exc]) from None
    refusals = provider.refusals(request, route)
    media = spec.media(request)
    if media is None:  # the reference lists, named in the prompt
        if model_chosen:
            refusals = [_naming_longer_model(e, request) for e in refusals]
        intake = admit(request, request.prompt, settings.data.root, folders, extra=refusals, spec=spec)
    else:
        intake = admit_media(media, settings.data.root, folders, extra=refusals, homes=spec.homes)
    try:
        if media is None and not provider.capabilities.local:  # the preview reads the files as they are
            intake.findings.extend(flatten_alpha(intake, settings.data.tmp))
        seconds = {r.role: r.media.duration_seconds if r.media else None for r in intake.references}
        if problems := provider.media_refusals(intake, route) + spec.media_problems(request, seconds):
            raise InputErrors(problems)
        return _priced(request, provider, route, intake, settings=settings, providers=providers, ledger=ledger,
                       owner=owner, labels=labels)
    except BaseException:
        intake.close()
        intake.discard_inline()
        raise


def _character_media(args: I2VArgs, cast: Cast, owner: str, folders: Folders
                     ) -> tuple[I2VArgs, Folders, dict[str, str]]:
    """A saved character where its media fits image-to-video: its image as the first frame (a clip as the clip to
    continue), and its voice, with an image, as the driving audio."""
    try:
        (character,) = resolve(cast, owner, [args.character or ""], "", field="character")
    except InputErrors as exc:
        for error in exc.errors:
            error.field = "character"  # one name, not a list
        raise
    media = str((cast.folder / character.media).resolve())
    role = "first_frame" if character.kind == "image" else "first_clip"
    given = next((name for name in ("first_frame", "first_clip") if getattr(args, name)), None)
    if given is not None:  # the character would be a second start (the model takes one)
        raise InputErrors([InputError(f"@{character.name} brings its {character.kind} as the {role}, and this request "
                                      f"gives a {given} too", field="character",
                                      fix=f"leave out {given}, or the character")])
    update = {role: media}
    if character.voice and role == "first_frame" and not args.driving_audio:
        update["driving_audio"] = str((cast.folder / character.voice).resolve())
    kept = replace(folders, kept={**folders.kept, **kept_files(cast, [character])})
    return args.model_copy(update=update), kept, {character.name: I2V_LABELS[role]}


def _naming_longer_model(error: InputError, request: R2VRequest) -> InputError:
    """A Wan 2.7 duration too long for its host or model, which Wan 3.0's reference mode would make: the fix says so."""
    if error.field != "duration" or request.model != MODEL_ID or request.duration > Limits.WAN3_DURATION_MAX:
        return error
    from ..providers import hosts_serving

    error.fix = f"{error.fix}, or model=\"{WAN3_MODEL_ID}\" (up to {Limits.WAN3_DURATION_MAX} s, on " \
                f"{' or '.join(hosts_serving(WAN3_MODEL_ID))})"
    return error


def _priced(request: AnyRequest, provider: Provider, route: Route, intake: Intake, *,
            settings: Settings, providers: ProviderRegistry, ledger: Store, owner: str,
            labels: dict[str, str] | None = None) -> Quote:
    """The quote of a checked request: what the model bills, at the host's price, against the caps."""
    videos = [r.media.duration_seconds if r.media else None for r in intake.references if r.role == "reference_video"
              and route.input_billed]
    source = next((r.media.duration_seconds if r.media else None for r in intake.references if r.role == "video"), None)
    spec = model_spec(route.model)
    seconds = spec.billable_seconds(videos, spec.output_seconds(request.model_dump(), source))
    name = provider.capabilities.name
    rate = prices.price_per_second(name, request.resolution, settings.prices, route.prices)
    estimate = cost.estimate_usd(rate, seconds)
    budget_check(estimate, settings)(ledger.spent(owner))  # early word; admission decides, atomically
    return Quote(request, provider, route, intake, seconds, estimate, fingerprint(name, route.model, request, intake),
                 "caller" if providers.uses_callers_key(name, owner) else None, labels or None)


def budget_check(estimate: float | None, settings: Settings, what: str = "") -> Callable[[Spend], None]:
    """The caps as a check of a spend of `estimate` USD against what is already spent and planned (`Spend`); it raises
    `InputErrors` to refuse. The ledger runs it inside the transaction that records the spend. `what` names the work
    when it is part of a sequence ("shot 2", "the whole sequence of 3 shots")."""
    per_task, per_day = settings.max_cost_per_task_usd, settings.max_cost_per_day_usd
    prefix = f"for {what}, " if what else ""

    def check(spend: Spend) -> None:
        if estimate is None or (per_task is None and per_day is None):
            return
        whole = estimate if spend.sequence is None else spend.sequence + estimate
        if per_task is not None and whole > per_task + 1e-9:
            made = "" if not spend.sequence else \
                f" (with the ${spend.sequence:.2f} its sequence has made and still plans, ${whole:.2f})"
            raise InputErrors([BudgetError(
                f"{prefix}the estimated cost ${estimate:.2f}{made} is over the per-task cap",
                limit=f"${per_task:.2f} per task{', a sequence or group of takes counting as one' if what else ''} "
                      "(WAN_R2V_MAX_COST_PER_TASK)",
                fix="ask for fewer seconds or 720p, or raise the cap")])
        if per_day is not None and spend.day + estimate > per_day + 1e-9:
            raise InputErrors([BudgetError(
                f"{prefix}the estimated cost ${estimate:.2f} would bring the last 24 hours to "
                f"${spend.day + estimate:.2f}",
                limit=f"${per_day:.2f} per day, counting the shots running sequences still plan "
                      "(WAN_R2V_MAX_COST_PER_DAY)" if what else f"${per_day:.2f} per day (WAN_R2V_MAX_COST_PER_DAY)",
                fix="wait until earlier tasks fall out of the 24-hour window, or raise the cap")])

    return check


FREE_PER_DAY = 200  # previews and stitches a caller may start in 24 hours: they cost no host, but disk and CPU
STITCH_MAX_SECONDS = 600  # a stitch's length: joins are free, so nesting them must not grow without end


def check_free_work(ledger: Store, owner: str, local_providers: list[str], what: str) -> None:
    """Refuse free work (a preview, a stitch) past the caller's daily bound."""
    started = ledger.free_work_since(owner, time.time() - 86400, local_providers)
    if started >= FREE_PER_DAY:
        raise InputErrors([BudgetError(
            f"{what}: {started} previews and stitches were started in the last 24 hours",
            limit=f"at most {FREE_PER_DAY} a day per caller (they cost no host, but the server's disk and time)",
            fix="wait until earlier ones fall out of the 24-hour window, or use a host provider")])


def remote_addresses(intake: Intake) -> dict[str, str]:
    """References given as URLs go to the host as they are."""
    return {r.label: r.source.url for r in intake.all_references if r.source is not None and r.source.url}


def dry_run(q: Quote) -> TaskView:
    """The task view the request would get, with the exact host payload; nothing uploaded or submitted."""
    urls = remote_addresses(q.intake)
    urls.update({r.label: q.provider.describe(r) for r in q.intake.all_references if r.path is not None})
    payload = q.provider.build_payload(q.request, q.intake, urls, q.route)
    now = time.time()
    record = TaskRecord(
        task_id="dry-run", created_at=now, updated_at=now, finished_at=None,
        provider=q.provider.capabilities.name, provider_task_id=None, status="queued",
        stage="dry run: nothing submitted", progress=None, request=q.recorded_request(),
        refs=[v.model_dump(mode="json") for v in q.intake.views], payload=payload, fingerprint=None,
        video_url=None, video_url_expires_at=None, local_path=None, poster_path=None, sidecar_path=None,
        cost_estimate=q.cost_estimate, billable_seconds=q.billable_seconds, error=None, owner="",
        phase="pending", submitted_at=None, candidates=None, key_from=q.key_from, creates=0, output=None,
        model=q.model,
    )
    view = task_view(record, q.provider.capabilities)
    return view.model_copy(update={"dry_run": True, "payload": payload, "next_check_seconds": None})
