"""The plan of a sequence: each shot's request, checked like any generation before anything is paid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..cast.roster import Cast, name_key
from ..cast.use import mentions, rewrite
from ..config import Settings
from ..errors import InputError, InputErrors
from ..providers.registry import ProviderRegistry
from ..references.folders import Folders
from ..schema import I2V_MODEL_ID, MODEL_ID, PIXEL_SIZES, GenerateArgs, I2VArgs, Limits, SequenceArgs
from ..store import Store
from ..store.files import write_once
from .quote import Quote, budget_check, quote
from .sequences import CARRIED_CLIP_SECONDS, carried
from .takes import seeds_for


class Planner:
    def __init__(self, settings: Settings, ledger: Store, providers: ProviderRegistry, cast: Cast):
        self.settings = settings
        self.ledger = ledger
        self.providers = providers
        self.cast = cast

    @property
    def folder(self) -> Path:
        """Where a sequence's own files live (frames carried over, placeholders)."""
        folder = self.settings.data.sequences
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def shot_args(self, spec: dict[str, Any], index: int, first_frame: Path | None, take: int = 0) -> GenerateArgs:
        shot = spec["shots"][index]
        seed = take_seed(spec, index, take)
        return GenerateArgs(
            prompt=shot["prompt"], duration=shot["duration"], negative_prompt=spec.get("negative_prompt"),
            resolution=spec["resolution"], aspect_ratio=spec["aspect_ratio"], seed=seed,
            characters=shot["characters"] if shot.get("characters") is not None else named(spec, index),
            first_frame=str(first_frame) if first_frame else None, provider=spec["provider"], allow_duplicate=True,
            wait_seconds=0)

    def clip_args(self, spec: dict[str, Any], index: int, clip: Path, take: int = 0) -> I2VArgs:
        """A shot carried on by clip: wan2.7-i2v continuing `clip`, for the shot's seconds after it."""
        shot = spec["shots"][index]
        seed = take_seed(spec, index, take)
        listed = list(spec.get("characters") or []) + list(shot.get("characters") or [])
        prompt = rewrite(shot["prompt"], {name: name for name in listed})  # @alice is alice, seen in the clip
        return I2VArgs(prompt=prompt, duration=shot["duration"] + CARRIED_CLIP_SECONDS,
                       negative_prompt=spec.get("negative_prompt"), resolution=spec["resolution"], seed=seed,
                       first_clip=str(clip), provider=spec["provider"], allow_duplicate=True, wait_seconds=0)

    def placeholder(self, spec: dict[str, Any]) -> Path:
        """A stand-in for what does not exist yet (the last frame, or the last seconds, of the shot before), to
        check and show."""
        width, height = PIXEL_SIZES[(spec["resolution"], spec["aspect_ratio"])]
        if carried(spec) == "clip":
            path = self.folder / f"placeholder-{width}x{height}-{CARRIED_CLIP_SECONDS}s.mp4"
            return write_once(path, lambda part: _grey_clip(part, width, height, CARRIED_CLIP_SECONDS))
        from PIL import Image

        path = self.folder / f"placeholder-{width}x{height}.png"
        return write_once(path, lambda part: Image.new("RGB", (width, height), (90, 90, 90)).save(part, format="PNG"))

    def quote_shot(self, spec: dict[str, Any], index: int, owner: str, carried_over: Path | None,
                   take: int = 0) -> Quote:
        """The shot's request, checked like any generation (the carried-over frame or clip included): R2V, or I2V
        continuing the clip when the sequence carries shots on by clip."""
        kept = {}
        by_clip = carried_over is not None and carried(spec) == "clip"
        if carried_over is not None:
            kept[carried_over.resolve()] = f"last {'seconds' if by_clip else 'frame'} of shot {index}"
        folders = Folders(roots=(), local_files=False, kept=kept)  # a shot reads only the server's own files
        context = dict(settings=self.settings, providers=self.providers, ledger=self.ledger, owner=owner,
                       cast=self.cast)
        try:
            if by_clip:
                assert carried_over is not None
                return quote(self.clip_args(spec, index, carried_over, take), folders, **context)
            return quote(self.shot_args(spec, index, carried_over, take), folders, model_chosen=False, **context)
        except InputErrors as exc:
            for error in exc.errors:  # say which shot it is about
                if error.field in ("first_frame", "first_clip") and carried_over is not None:  # what continuity carries
                    error.field = "continuity"
                    carries = "continues the last seconds" if by_clip else "opens on the last frame"
                    error.message = f"shot {index + 1} {carries} of shot {index}: {error.message}"
                    error.fix = ("pass continuity=\"none\"" if by_clip else
                                 "name fewer characters in this shot, or pass continuity=\"clip\" or \"none\"")
                error.field = f"shots[{index}].{error.field}" if error.field else f"shots[{index}]"
            raise

    def plan(self, args: SequenceArgs, owner: str) -> tuple[dict[str, Any], list[Quote]]:
        """Check every shot before anything is paid: the same checks a generation gets, continuity on a host that
        takes a first frame, and the cost of the whole against the caps. The quotes' files are open: close them."""
        provider = self.providers.get(args.provider, caller=owner)
        caps = provider.capabilities
        if self.cast is not None:  # the sequence's own list first, so a wrong name is reported where it was written
            from ..cast.use import resolve

            resolve(self.cast, owner, list(args.characters), "", field="characters")
        spec = args.model_dump(mode="json", include={"shots", "characters", "continuity", "negative_prompt",
                                                     "resolution", "aspect_ratio", "seed"})
        spec["provider"] = caps.name
        spec["continuity"] = self._way(provider, args) if len(args.shots) > 1 else False
        for shot in spec["shots"]:  # each take of a shot its own seed, recorded before anything is made
            if shot.get("variants", 1) > 1:
                shot["seeds"] = seeds_for(shot.get("seed") if shot.get("seed") is not None else spec.get("seed"),
                                          shot["variants"])
        quotes: list[Quote] = []
        errors: list[InputError] = []
        longest = Limits.DURATION_MAX - CARRIED_CLIP_SECONDS
        too_long = {i for i, shot in enumerate(args.shots) if i and shot.duration > longest} \
            if carried(spec) == "clip" else set()
        try:
            for index in range(len(args.shots)):
                if index in too_long:  # its request cannot be written: say why, in the shots' order
                    seconds = args.shots[index].duration
                    errors.append(InputError(
                        f"is {seconds} s; continuing the {CARRIED_CLIP_SECONDS} s before makes it "
                        f"{seconds + CARRIED_CLIP_SECONDS} s", field=f"shots[{index}].duration",
                        limit=f"at most {longest} s for a shot carried on by clip ({I2V_MODEL_ID} makes "
                              f"2-{Limits.DURATION_MAX} s)", fix=f"ask for at most {longest} s, or split the shot in two"))
                    continue
                first = self.placeholder(spec) if carried(spec) and index > 0 else None
                try:
                    quotes.append(self.quote_shot(spec, index, owner, first))
                except InputErrors as exc:
                    errors.extend(exc.errors)
            if errors:
                raise InputErrors(errors)
            # An early word; `create` decides it again, atomically, as the whole of the sequence's work.
            budget_check(total_cost(quotes, takes_of(spec)), self.settings,
                         f"the whole sequence of {len(quotes)} shots")(
                self.ledger.spent(owner))
        except BaseException:
            for q in quotes:
                q.close()
            raise
        return spec, quotes


    def _way(self, provider: Any, args: SequenceArgs) -> str | bool:
        """The continuity asked for, on this host: a frame where its R2V opens on one, else a clip where its I2V
        continues one; refused, naming what would work, where the host can do neither the way asked."""
        from ..providers import hosts_supporting

        frame = "first_frame" in provider.route(MODEL_ID).supports
        clip = I2V_MODEL_ID in provider.routes and "first_clip" in provider.route(I2V_MODEL_ID).supports
        title = provider.capabilities.title
        if args.continuity == "none":
            return False
        if args.continuity == "frame" and not frame:
            raise InputErrors([InputError(
                f"{title} cannot open a shot on the last frame of the one before (its {MODEL_ID} takes no "
                "first_frame)", field="continuity", fix=f"pass continuity=\"clip\" (each shot continues the last "
                f"{CARRIED_CLIP_SECONDS} s before), use provider={' or '.join(hosts_supporting('first_frame'))}, or "
                "pass continuity=\"none\"")])
        if args.continuity == "clip" and not clip:
            raise InputErrors([InputError(
                f"{title} cannot continue a clip ({I2V_MODEL_ID} with first_clip)", field="continuity",
                fix=f"pass continuity=\"frame\", use provider="
                    f"{' or '.join(hosts_supporting('first_clip', I2V_MODEL_ID))}, or pass continuity=\"none\"")])
        if args.continuity == "auto":
            if not (frame or clip):
                raise InputErrors([InputError(
                    f"{title} can neither open a shot on a frame nor continue a clip", field="continuity",
                    fix="pass continuity=\"none\" (hard cuts), or use provider=dashscope")])
            return "frame" if frame else "clip"
        return args.continuity


def _grey_clip(path: Path, width: int, height: int, seconds: int) -> None:
    """A grey clip of `seconds` and one frame more (so that it is never measured under the model's 2 s minimum)."""
    import av

    rate = 24
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(seconds * rate + 1):
            frame = av.VideoFrame(width, height, "yuv420p")
            for plane, value in zip(frame.planes, (128, 128, 128)):
                plane.update(bytes([value]) * plane.buffer_size)
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def named(spec: dict[str, Any], index: int) -> list[str]:
    """The sequence's characters that shot `index` names (@name): a shot brings, and pays for, only its own cast."""
    listed = list(spec.get("characters") or [])
    said = {name_key(name) for name in mentions(spec["shots"][index]["prompt"], listed)}
    return [name for name in listed if name_key(name) in said]


def total_cost(quotes: list[Quote], takes: list[int] | None = None) -> float | None:
    """The whole sequence's estimate (each shot's take times its number of takes): unknown when any shot's is."""
    costs = [q.cost_estimate for q in quotes]
    if any(c is None for c in costs):
        return None
    return round(sum((c or 0.0) * n for c, n in zip(costs, takes or [1] * len(costs))), 4)


def take_seed(spec: dict[str, Any], index: int, take: int) -> int | None:
    """The seed of take `take` (from 0) of shot `index`: its own when the shot is made in several takes."""
    shot = spec["shots"][index]
    seeds = shot.get("seeds") or []
    if take < len(seeds):
        return seeds[take]
    return shot.get("seed") if shot.get("seed") is not None else spec.get("seed")


def takes_of(spec: dict[str, Any]) -> list[int]:
    """How many takes each shot is made in (sequences recorded before takes make one)."""
    return [int(shot.get("variants") or 1) for shot in spec["shots"]]

