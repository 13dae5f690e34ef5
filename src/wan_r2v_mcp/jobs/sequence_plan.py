"""The plan of a sequence: each shot's request, checked like any generation before anything is paid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..cast.roster import Cast, name_key
from ..cast.use import mentions
from ..config import Settings
from ..errors import InputError, InputErrors
from ..providers.registry import ProviderRegistry
from ..references.folders import Folders
from ..schema import MODEL_ID, PIXEL_SIZES, GenerateArgs, SequenceArgs
from ..store import Store
from ..store.files import write_once
from .quote import Quote, budget_check, quote


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

    def shot_args(self, spec: dict[str, Any], index: int, first_frame: Path | None) -> GenerateArgs:
        shot = spec["shots"][index]
        seed = shot.get("seed") if shot.get("seed") is not None else spec.get("seed")
        return GenerateArgs(
            prompt=shot["prompt"], duration=shot["duration"], negative_prompt=spec.get("negative_prompt"),
            resolution=spec["resolution"], aspect_ratio=spec["aspect_ratio"], seed=seed,
            characters=shot["characters"] if shot.get("characters") is not None else named(spec, index),
            first_frame=str(first_frame) if first_frame else None, provider=spec["provider"], allow_duplicate=True,
            wait_seconds=0)

    def placeholder(self, spec: dict[str, Any]) -> Path:
        """A stand-in for a frame that does not exist yet (the last frame of the shot before), to check and show."""
        from PIL import Image

        width, height = PIXEL_SIZES[(spec["resolution"], spec["aspect_ratio"])]
        path = self.folder / f"placeholder-{width}x{height}.png"
        return write_once(path, lambda part: Image.new("RGB", (width, height), (90, 90, 90)).save(part, format="PNG"))

    def quote_shot(self, spec: dict[str, Any], index: int, owner: str, first_frame: Path | None) -> Quote:
        """The shot's request, checked like any generate_r2v request (the carried-over frame included)."""
        kept = {}
        if first_frame is not None:
            kept[first_frame.resolve()] = f"last frame of shot {index}"
        folders = Folders(roots=(), local_files=False, kept=kept)  # a shot reads only the server's own files
        try:
            return quote(self.shot_args(spec, index, first_frame), folders, settings=self.settings,
                         providers=self.providers, ledger=self.ledger, owner=owner, cast=self.cast)
        except InputErrors as exc:
            for error in exc.errors:  # say which shot it is about
                if error.field == "first_frame" and first_frame is not None:  # the frame continuity carries over
                    error.field = "continuity"
                    error.message = f"shot {index + 1} opens on the last frame of shot {index}: {error.message}"
                    error.fix = "name fewer characters in this shot, or pass continuity=false"
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
        if args.continuity and len(args.shots) > 1 and "first_frame" not in provider.route(MODEL_ID).supports:
            from ..providers import hosts_supporting

            raise InputErrors([InputError(
                f"{caps.title} cannot open a shot on the last frame of the one before (it takes no first_frame)",
                field="continuity", fix=f"use provider={' or '.join(hosts_supporting('first_frame'))}, or pass "
                "continuity=false (shots then cut without carrying over)")])
        quotes: list[Quote] = []
        errors: list[InputError] = []
        try:
            for index in range(len(args.shots)):
                first = self.placeholder(spec) if args.continuity and index > 0 else None
                try:
                    quotes.append(self.quote_shot(spec, index, owner, first))
                except InputErrors as exc:
                    errors.extend(exc.errors)
            if errors:
                raise InputErrors(errors)
            # An early word; `create` decides it again, atomically, as the whole of the sequence's work.
            budget_check(total_cost(quotes), self.settings, f"the whole sequence of {len(quotes)} shots")(
                self.ledger.spent(owner))
        except BaseException:
            for q in quotes:
                q.close()
            raise
        return spec, quotes


def named(spec: dict[str, Any], index: int) -> list[str]:
    """The sequence's characters that shot `index` names (@name): a shot brings, and pays for, only its own cast."""
    listed = list(spec.get("characters") or [])
    said = {name_key(name) for name in mentions(spec["shots"][index]["prompt"], listed)}
    return [name for name in listed if name_key(name) in said]


def total_cost(quotes: list[Quote]) -> float | None:
    """The whole sequence's estimate: unknown when any shot's is."""
    costs = [q.cost_estimate for q in quotes]
    return None if any(c is None for c in costs) else round(sum(c for c in costs if c is not None), 4)

