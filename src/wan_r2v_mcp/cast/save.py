"""Saving a character: the reference and voice get the checks of any reference, then the cast keeps its own copy."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import replace
from pathlib import Path

import anyio

from ..errors import InputError, InputErrors, ReferenceError
from ..references.folders import Folders
from ..references.intake import KIND_MAX_BYTES, judge
from ..references.opened import OpenedFile
from ..references.probe import MediaInfo, probe
from ..references.sources import _EXT, parse_source
from ..schema import Limits, SaveCharacterArgs
from ..store.files import atomic_write
from .roster import Cast, Character, check_name, name_key, taken

THUMBNAIL_SIDE = 256
FETCH_SECONDS = 60.0  # a reference given as a URL is fetched within this, or refused: the call never hangs


async def save_character(cast: Cast, owner: str, args: SaveCharacterArgs, folders: Folders,
                         data_dir: Path) -> tuple[Character, bool]:
    """Check, copy and record a character; returns it and whether it replaced one of the same name. Raises one
    InputErrors naming every problem; nothing is kept unless everything passed."""
    errors: list[InputError] = []
    try:
        name = check_name(args.name)
    except InputError as exc:
        errors.append(exc)
        name = ""
    if name and not args.replace and cast.get(owner, name) is not None:
        errors.append(taken(name))  # said before anything is copied; the store says it again if a race wins
    kept: dict[Path, str] = {}
    given = {"reference": args.reference, "voice": args.voice}
    for field, text in given.items():
        if isinstance(text, str) and text.strip().lower().startswith(("https://", "http://")):
            try:  # the cast keeps its own copy, so a URL is fetched once, now, with the usual guards
                with anyio.fail_after(FETCH_SECONDS):
                    path = await _fetch(text.strip(), field, data_dir)
            except InputError as exc:
                errors.append(exc)
                given[field] = None
                continue
            except TimeoutError:
                errors.append(ReferenceError(f"took over {FETCH_SECONDS:.0f} s to fetch", field=field,
                                             fix="download the file and pass its path"))
                given[field] = None
                continue
            kept[path.resolve()] = text.strip()[:200]
            given[field] = str(path)
    folders = replace(folders, kept={**folders.kept, **kept})

    def check_and_keep() -> tuple[Character, bool]:
        opened: list[OpenedFile] = []
        inline: list[Path] = []
        try:
            media = _open(given["reference"], "reference", ("image", "video"), data_dir, folders, opened, errors,
                          inline) if given["reference"] is not None else None
            voice = _open(given["voice"], "voice", ("audio",), data_dir, folders, opened, errors, inline) \
                if given["voice"] is not None else None
            if errors:
                raise InputErrors(errors)
            assert media is not None
            (ref_file, ref_info) = media
            cast.check_room(owner, name, ref_info.size_bytes + (voice[1].size_bytes if voice else 0),
                            replace=args.replace)  # before anything is copied
            copied: list[str] = []
            try:
                return _keep(cast, owner, name, args, ref_file, ref_info, voice, copied)
            except BaseException:
                cast.forget_files(copied)  # a refused save leaves nothing behind (unless another character uses it)
                raise
        finally:
            for f in opened:
                f.close()
            for path in kept:  # the fetched bytes now live in the cast folder
                path.unlink(missing_ok=True)
            for path in inline:  # a data: URI's bytes likewise
                path.unlink(missing_ok=True)

    return await anyio.to_thread.run_sync(check_and_keep)


def _keep(cast: Cast, owner: str, name: str, args: SaveCharacterArgs, ref_file: OpenedFile, ref_info: MediaInfo,
          voice: tuple[OpenedFile, MediaInfo] | None, copied: list[str]) -> tuple[Character, bool]:
    """Copy the checked files into the cast (naming each in `copied` as it lands) and record the character."""
    media_name = cast.keep(ref_file, ref_info.format or "")
    copied.append(media_name)
    voice_name = cast.keep(voice[0], voice[1].format or "") if voice else None
    if voice_name:
        copied.append(voice_name)
    thumb = _thumbnail(cast.folder / media_name, ref_info.kind)
    if thumb:
        copied.append(thumb)
    now = time.time()
    old = cast.get(owner, name)
    character = Character(
        owner=owner, key=name_key(name), name=name, description=args.description.strip(),
        kind=ref_info.kind, format=ref_info.format or "", media=media_name, size_bytes=ref_info.size_bytes,
        width=ref_info.width, height=ref_info.height,
        seconds=round(ref_info.duration_seconds, 3) if ref_info.duration_seconds else None,
        voice=voice_name, voice_format=voice[1].format if voice else None,
        voice_seconds=round(voice[1].duration_seconds, 3) if voice and voice[1].duration_seconds else None,
        thumbnail=thumb, created_at=now, last_used_at=old.last_used_at if old else None,
        uses=old.uses if old else 0)
    replaced = cast.save(character, replace=args.replace)
    return character, replaced is not None


def _open(text: str, field: str, kinds: tuple[str, ...], data_dir: Path, folders: Folders,
          opened: list[OpenedFile], errors: list[InputError], inline: list[Path]) -> tuple[OpenedFile, MediaInfo] | None:
    """Parse, open (no symlinks) and judge one file as a reference of the kind it is; None after an error. A data: URI's
    bytes land in `inline`, to be removed once copied."""
    try:
        source = parse_source(text, field, data_dir, folders)
        assert source.path is not None
        if source.location == "data":
            inline.append(source.path)
        file = OpenedFile(source.path)
    except InputError as exc:
        errors.append(exc)
        return None
    except OSError as exc:
        errors.append(ReferenceError(f"cannot be opened as a plain file ({type(exc).__name__})", field=field,
                                     fix="pass the file itself, not a symlink to it, and check its permissions"))
        return None
    opened.append(file)
    info = probe(file, max_bytes=KIND_MAX_BYTES)
    if info.kind not in kinds and info.kind in ("image", "video", "audio"):
        wanted = "an image or a clip" if field == "reference" else "a voice sample (wav or mp3)"
        where = "voice" if info.kind == "audio" else "reference"
        errors.append(ReferenceError(f"is {info.kind} ({info.format}), but a character's {field} is {wanted}",
                                     field=field, fix=f"pass it as {where} instead"))
        return None
    role = {"image": "reference_image", "video": "reference_video", "audio": "voice"}.get(info.kind,
                                                                                       f"reference_{kinds[0]}")
    if info.kind == "unknown":
        role = "voice" if kinds == ("audio",) else "reference_image"
    problems = judge(info, role, field)
    if problems:
        errors.extend(problems)
        return None
    return file, info


async def _fetch(url: str, field: str, data_dir: Path) -> Path:
    from ..references.probe import sniff
    from ..references.remote import fetch_head

    if not url.lower().startswith("https://"):
        raise ReferenceError("is an http:// URL, which the server does not fetch itself", field=field,
                             fix="pass an https URL, or the file by path")
    cap = Limits.VOICE_MAX_BYTES if field == "voice" else Limits.VIDEO_MAX_BYTES
    data, size = await fetch_head(url, field, limit=cap + 1)
    if len(data) > cap or (size is not None and size > cap):
        raise ReferenceError(f"is {size or len(data):,} bytes", field=field, limit=f"at most {cap:,} bytes",
                             fix="pass a smaller file")
    if size is not None and len(data) < size:  # a 206 with part of the file: never keep a cut-off copy
        raise ReferenceError(f"arrived cut short ({len(data):,} of {size:,} bytes)", field=field,
                             fix="try again, or download the file and pass its path")
    kind, fmt = sniff(data[:64])
    folder = data_dir / "inline"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:32]}.{secrets.token_hex(3)}{_EXT.get(fmt or '', '.bin')}"
    path.write_bytes(data)
    return path


def _thumbnail(path: Path, kind: str) -> str | None:
    """A small JPEG beside the media (a clip's first frame), for list_characters and the resource."""
    from PIL import Image

    dest = path.with_name(f"{path.stem}.thumb.jpg")
    try:
        if kind == "video":
            import av

            with av.open(str(path), options={"protocol_whitelist": "file"}) as container:
                image = next(container.decode(container.streams.video[0])).to_image()
        else:
            with Image.open(path) as im:
                im.draft("RGB", (THUMBNAIL_SIDE * 2, THUMBNAIL_SIDE * 2))  # JPEG: decode at a fraction of full size
                image = im.convert("RGB")
        image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        atomic_write(dest, lambda part: image.save(part, format="JPEG", quality=80))
        return dest.name
    except Exception:  # a thumbnail is a convenience; the character is kept without one
        return None
