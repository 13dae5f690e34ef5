"""Take in a request's references: parse, probe, label and judge each one against the model's limits.

`examine` never raises: it reports (for `list_references`). `admit` raises one `InputErrors` naming
every problem (for `generate_r2v`), before anything is recorded, uploaded or paid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from ..errors import InputError, InputErrors, ReferenceError
from ..models.base import REFERENCE_ROLES, ROLES, Medium, ModelSpec, image_label, reference_labels, video_label
from ..models.r2v import R2V
from ..schema import Limits, PromptFinding, ReferenceSet, ReferenceView
from .folders import Folders
from .labels import lint_prompt
from .opened import OpenedFile
from .probe import MediaInfo, probe
from .sources import Source, parse_source

KIND_FORMATS = {"image": Limits.IMAGE_FORMATS, "video": Limits.VIDEO_FORMATS, "audio": Limits.VOICE_FORMATS}
KIND_MAX_BYTES = {"image": Limits.IMAGE_MAX_BYTES, "video": Limits.VIDEO_MAX_BYTES, "audio": Limits.VOICE_MAX_BYTES}
_URL_EXT_KIND = {".jpg": "image", ".jpeg": "image", ".png": "image", ".bmp": "image", ".webp": "image",
                 ".mp4": "video", ".mov": "video", ".wav": "audio", ".mp3": "audio"}


@dataclass
class Reference:
    label: str
    role: str
    field: str
    given: str
    source: Source | None = None
    media: MediaInfo | None = None
    errors: list[InputError] = field(default_factory=list)
    voice: Reference | None = None
    opened: OpenedFile | None = None  # a local file, open from its check to its upload

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def kind(self) -> str:
        if self.media is not None:
            return self.media.kind
        if self.source is not None and self.source.url:
            return _URL_EXT_KIND.get(PurePosixPath(urlparse(self.source.url).path).suffix.lower(), "unknown")
        return ROLES[self.role].kind

    @property
    def path(self) -> Path | None:
        return self.source.path if self.source else None

    def view(self) -> ReferenceView:
        m = self.media
        return ReferenceView(
            label=self.label, kind=self.kind if self.kind in ("image", "video", "audio") else "unknown",  # type: ignore[arg-type]
            role=self.role,  # type: ignore[arg-type]
            source=self.source.shown if self.source else self.given[:200],
            location=self.source.location if self.source else "local",
            format=m.format if m else None, size_bytes=m.size_bytes if m else None,
            width=m.width if m else None, height=m.height if m else None,
            duration_seconds=round(m.duration_seconds, 3) if m and m.duration_seconds else None,
            ok=self.ok, problems=[_problem_text(e) for e in self.errors],
        )


def _problem_text(err: InputError) -> str:
    text = err.message.rstrip(".") + "."
    if err.limit:
        text += f" Limit: {err.limit}."
    if err.fix:
        text += f" Fix: {err.fix}."
    return text


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MB"


R2V_HOMES = {"image": "reference_images", "video": "reference_videos", "audio": "voices"}


def judge(media: MediaInfo, role: str, field_name: str, homes: dict[str, str] | None = None,
          seconds: tuple[float, float] | None = None) -> list[InputError]:
    """Problems of one probed file for the role it is given in; `homes` names, by kind, the argument of the same tool
    a file of another kind belongs in (reference-to-video's lists unless given); `seconds` bounds its length where
    the model's are not the role's usual ones."""
    want = ROLES[role].kind
    allowed = ", ".join(KIND_FORMATS[want])
    def err(message: str, *, limit: str | None = None, fix: str) -> ReferenceError:
        return ReferenceError(message, field=field_name, limit=limit, fix=fix)

    if media.kind == "unknown":
        return [err("is not a media file: its first bytes match no image, video or audio format",
                    limit=f"{want} formats {allowed}", fix=f"pass {_a(want)} file ({allowed})")]
    if media.kind != want:
        home = (R2V_HOMES if homes is None and role in REFERENCE_ROLES else homes or {}).get(media.kind)
        fix = f"pass it in {home} instead, or give {_a(want)} here" if home and home != field_name else \
            f"give {_a(want)} file here ({allowed})"
        takes = "audio" if want == "audio" else f"{want}s"
        return [err(f"is {_a(media.kind)} ({media.format}), but {ROLES[role].field} takes {takes}", fix=fix)]
    if media.format not in KIND_FORMATS[want]:
        return [err(f"is {media.format}, which Wan 2.7 does not take", limit=f"{want} formats {allowed}",
                    fix=f"convert it to {KIND_FORMATS[want][0]}")]
    cap = KIND_MAX_BYTES[want]
    if media.size_bytes > cap:
        return [err(f"is {media.size_bytes:,} bytes", limit=f"at most {_mb(cap)} ({cap:,} bytes)",
                    fix="compress or trim it" if want != "image" else "downscale or re-encode it as JPEG")]
    if media.error:
        return [err(media.error, fix="re-export the file with a standard encoder")]
    problems: list[InputError] = []
    side_lo, side_hi = {"image": Limits.IMAGE_SIDE, "video": Limits.VIDEO_SIDE}.get(want, (None, None))
    if side_lo and media.width and media.height:
        w, h = media.width, media.height
        if min(w, h) < side_lo or max(w, h) > side_hi:
            problems.append(err(f"is {w}x{h} px", limit=f"each side {side_lo}-{side_hi} px",
                                fix="upscale it" if min(w, h) < side_lo else "downscale it"))
        elif max(w, h) / min(w, h) > Limits.ASPECT_EXTREME:
            problems.append(err(f"is {w}x{h} px, an aspect ratio beyond 1:8", limit="aspect between 1:8 and 8:1",
                                fix="crop it closer to the subject"))
    bounds = seconds or ROLES[role].seconds
    if bounds and media.duration_seconds is not None:
        lo, hi = bounds
        d = media.duration_seconds
        if d < lo - 0.05 or d > hi + 0.05:
            problems.append(err(f"lasts {d:.1f} s", limit=f"{lo:g}-{hi:g} s",
                                fix=f"trim it to at most {hi:g} s" if d > hi else f"use a clip of at least {lo:g} s"))
    return problems


def _take(given: str, label: str, role: str, field_name: str, data_dir: Path, folders: Folders,
          homes: dict[str, str] | None = None, seconds: tuple[float, float] | None = None) -> Reference:
    ref = Reference(label=label, role=role, field=field_name, given=given if isinstance(given, str) else repr(given))
    try:
        ref.source = parse_source(given, field_name, data_dir, folders)
    except InputError as exc:
        ref.errors.append(exc)
        return ref
    if ref.source.path is not None:
        try:
            ref.opened = OpenedFile(ref.source.path)
        except OSError as exc:
            ref.errors.append(ReferenceError(f"cannot be opened as a plain file: {ref.source.path} "
                                             f"({type(exc).__name__})", field=field_name,
                                             fix="pass the file itself, not a symlink to it, and check its permissions"))
            return ref
        ref.media = probe(ref.opened, max_bytes=KIND_MAX_BYTES)
        ref.errors.extend(judge(ref.media, role, field_name, homes, seconds))
    elif ref.kind not in ("unknown", ROLES[role].kind):
        ref.errors.append(ReferenceError(
            f"looks like {_a(ref.kind)} (from its extension), but {ROLES[role].field} takes {ROLES[role].kind}s",
            field=field_name, fix="check which list it belongs in"))
    return ref


@dataclass
class Intake:
    references: list[Reference]
    findings: list[PromptFinding]
    errors: list[InputError]  # request-level: counts, unknown voice labels, prompt errors
    voiced: list[Reference] = field(default_factory=list)  # the references given a voice, in the order of the voices

    @property
    def all_errors(self) -> list[InputError]:
        errs = [e for r in self.all_references for e in r.errors]
        return errs + self.errors

    @property
    def all_references(self) -> list[Reference]:
        out: list[Reference] = []
        for r in self.references:
            out.append(r)
            if r.voice is not None:
                out.append(r.voice)
        return out

    @property
    def views(self) -> list[ReferenceView]:
        return [r.view() for r in self.all_references]

    def close(self) -> None:
        """Close the files opened for checking and uploading."""
        for ref in self.all_references:
            if ref.opened is not None:
                ref.opened.close()

    def discard_inline(self) -> None:
        """Remove the copies of this request's data: URIs (each request writes its own): for a request refused, a
        dry run or a check, nothing it wrote is kept. A submitted task keeps them (a preview reads them by path)
        until the inline folder's pruning."""
        for ref in self.all_references:
            if ref.source is not None and ref.source.location == "data" and ref.source.path is not None:
                ref.source.path.unlink(missing_ok=True)


def examine(refs: ReferenceSet, prompt: str | None, data_dir: Path, folders: Folders, *,
            require_references: bool = True, spec: type[ModelSpec] = R2V) -> Intake:
    """`spec`: the reference model the references are judged for (how many, how long)."""
    def take(given: str, label: str, role: str, field_name: str) -> Reference:
        return _take(given, label, role, field_name, data_dir, folders, seconds=spec.role_seconds.get(role))

    items: list[Reference] = []
    if refs.first_frame is not None:
        items.append(take(refs.first_frame, "First frame", "first_frame", "first_frame"))
    for i, given in enumerate(refs.reference_images):
        items.append(take(given, image_label(i), "reference_image", f"reference_images[{i}]"))
    for i, given in enumerate(refs.reference_videos):
        items.append(take(given, video_label(i), "reference_video", f"reference_videos[{i}]"))

    errors: list[InputError] = []
    n_img, n_vid = len(refs.reference_images), len(refs.reference_videos)
    total = n_img + n_vid
    if min(spec.images_max, spec.videos_max) < spec.references_max:  # each kind bounded on its own, then together
        for n, most, name in ((n_img, spec.images_max, "reference_images"), (n_vid, spec.videos_max, "reference_videos")):
            if n > most:
                errors.append(InputError(f"{n} given", field=name, limit=f"at most {most} with {spec.name}",
                                         fix=f"keep the {most} that matter most"))
    if (require_references and total < Limits.REFERENCES_MIN) or total > spec.references_max:
        errors.append(InputError(
            f"{total} references given ({n_img} images, {n_vid} videos)",
            field="reference_images + reference_videos",
            limit=f"{Limits.REFERENCES_MIN} to {spec.references_max} images and videos together (first_frame not counted)",
            fix="add at least one reference image or video" if total < 1 else f"keep the {spec.references_max} that matter most",
        ))
    by_label = {r.label: r for r in items}
    labels = reference_labels(n_img, n_vid)
    voiced: list[Reference] = []
    for voice in refs.voices:
        key, given = voice.label, voice.audio
        label = _canonical_label(key)
        owner = by_label.get(label) if label in labels else None
        if owner is None:
            errors.append(InputError(
                f"names \"{key}\", which is not a reference of this request",
                field=f"voices[\"{key}\"]",
                limit=f"keys must be existing labels: {', '.join(labels) or 'none yet'}",
                fix="key the voice by the label of the image or video whose character speaks with it",
            ))
            continue
        owner.voice = take(given, f"Voice of {label}", "voice", f"voices[\"{key}\"]")
        voiced = [r for r in voiced if r is not owner] + [owner]
    errors.extend(_totals(items, getattr(refs, "duration", None), spec))

    findings = lint_prompt(prompt, n_img, n_vid) if prompt else []
    for f in findings:
        if f.severity == "error":
            errors.append(InputError(f.message, field="prompt", fix=f.fix))
    return Intake(references=items, findings=findings, errors=errors, voiced=voiced)


def _totals(items: list[Reference], duration: int | None, spec: type[ModelSpec]) -> list[InputError]:
    """What the probed clips and voices of one kind add up to, against the model's bounds on them."""
    errors: list[InputError] = []
    clips = sum(r.media.duration_seconds or 0 for r in items if r.role == "reference_video" and r.media)
    voices = sum(r.voice.media.duration_seconds or 0 for r in items if r.voice is not None and r.voice.media)
    if spec.kind_total_seconds is not None:
        for seconds, name in ((clips, "reference_videos"), (voices, "voices")):
            if seconds > spec.kind_total_seconds + 0.05:
                errors.append(InputError(f"last {seconds:.1f} s together", field=name,
                                         limit=f"{spec.kind_total_seconds:g} s in all with {spec.name}",
                                         fix="trim them, or keep fewer"))
    if spec.with_inputs_max is not None and duration is not None and clips + duration > spec.with_inputs_max + 0.05:
        errors.append(InputError(f"is {duration} s beside {clips:.1f} s of reference videos", field="duration",
                                 limit=f"{spec.with_inputs_max} s with the reference videos' seconds, on {spec.name}",
                                 fix=f"ask for at most {max(int(spec.with_inputs_max - clips), 2)} s, or trim the clips"))
    return errors


def _canonical_label(key: str) -> str:
    parts = key.strip().split()
    if len(parts) == 2 and parts[0].lower() in ("image", "video") and parts[1].isdigit():
        return f"{parts[0].capitalize()} {int(parts[1])}"
    return key.strip()


def admit_media(items: list[Medium], data_dir: Path, folders: Folders,
                extra: list[InputError] | None = None, homes: dict[str, str] | None = None) -> Intake:
    """Take in a request's media other than references (given, label, role, field for each: a text-to-video
    request's audio), refusing the whole request at once if anything is wrong."""
    intake = Intake(references=[_take(given, label, role, field_name, data_dir, folders, homes or {})
                                for given, label, role, field_name in items], findings=[], errors=[])
    errors = intake.all_errors + list(extra or [])
    if errors:
        intake.close()
        intake.discard_inline()
        raise InputErrors(errors)
    return intake


def admit(refs: ReferenceSet, prompt: str, data_dir: Path, folders: Folders,
          extra: list[InputError] | None = None, spec: type[ModelSpec] = R2V) -> Intake:
    """Examine, and refuse the whole request at once if anything is wrong."""
    intake = examine(refs, prompt, data_dir, folders, spec=spec)
    errors = intake.all_errors + list(extra or [])
    if errors:
        intake.close()
        intake.discard_inline()
        raise InputErrors(errors)
    return intake
