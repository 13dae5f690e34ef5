"""Where a reference comes from: a local file, an https URL, or a small data URI.

Every form is normalised here (`~`, `file://`), and a data URI is written once to a content-addressed
file so the rest of the server only ever deals with paths and URLs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from ..errors import ReferenceError
from ..schema import Limits
from ..store.files import atomic_write
from .folders import Folders
from .probe import sniff

Location = Literal["local", "url", "data"]

_EXT = {"jpeg": ".jpg", "png": ".png", "bmp": ".bmp", "webp": ".webp", "mp4": ".mp4", "mov": ".mov",
        "wav": ".wav", "mp3": ".mp3"}


@dataclass(frozen=True)
class Source:
    given: str
    location: Location
    path: Path | None = None
    url: str | None = None

    @property
    def shown(self) -> str:
        """The source as it may be echoed back: data URIs shortened."""
        return self.given if len(self.given) <= 200 else self.given[:60] + f"…({len(self.given)} chars)"


def local_path(text: str) -> Path:
    """A path as the user wrote it, normalised: file:// URLs, ~, Windows drive paths under WSL, /mnt/c on Windows."""
    import re

    if text[:7].lower() == "file://":
        try:
            parsed = urlparse(text)
        except ValueError:  # file://[x/y.png: a bracket that opens no IPv6 address
            raise ReferenceError(f"'{text[:200]}' is not a valid file:// URL",
                                 fix="give the path itself, or file:///absolute/path") from None
        raw = unquote(parsed.path)
        if "\x00" in raw:
            raise ReferenceError("contains a NUL character (%00)", fix="pass the path exactly as it is on disk")
        if re.match(r"^/[A-Za-z]:[/\\]", raw):  # file:///C:/Users/...
            raw = raw[1:]
    else:
        raw = text
    drive = re.match(r"^([A-Za-z]):[/\\](.*)$", raw)
    if drive and os.name != "nt":
        wsl = Path(f"/mnt/{drive.group(1).lower()}")
        if wsl.is_dir():  # a Windows path given to a server running inside WSL
            return wsl.joinpath(*re.split(r"[/\\]+", drive.group(2)))
        raise ReferenceError(f"'{text}' is a Windows path, but this server runs on {os.uname().sysname}",
                             fix="give the path as this server's machine sees it")
    wsl = re.match(r"^/mnt/([a-z])/(.*)$", raw)
    if wsl and os.name == "nt":
        return Path(f"{wsl.group(1).upper()}:\\", *wsl.group(2).split("/"))
    if raw.startswith(("\\\\", "//")) and os.name == "nt":
        raise ReferenceError(f"'{text}' is on a network share", fix="copy the file to a local folder")
    try:
        return Path(raw).expanduser()
    except RuntimeError:  # ~someone who has no home folder here
        raise ReferenceError(f"'{text}' names a user with no home folder on this machine",
                             fix="give the absolute path, or one starting with ~/ for your own home") from None


def parse_source(text: str, field: str, data_dir: Path, folders: Folders | None = None) -> Source:
    if not isinstance(text, str) or not text.strip():
        raise ReferenceError("is empty", field=field, fix="give a file path, an https URL or a data: URI")
    text = text.strip()
    if "\x00" in text:
        raise ReferenceError("contains a NUL character", field=field, fix="pass the path exactly as it is on disk")
    lowered = text[:8].lower()
    if lowered.startswith("data:"):
        return _from_data_uri(text, field, data_dir)
    if lowered.startswith(("https://", "http://")):  # the host fetches it itself (every host's API takes https URLs)
        try:
            parsed_url = urlparse(text)
            host, _ = parsed_url.hostname, parsed_url.port  # .port raises on one out of range
        except ValueError:
            host = None
        if not host:
            raise ReferenceError("is not a valid URL", field=field, fix="give a full https:// URL")
        return Source(given=text, location="url", url=text)
    try:
        path = local_path(text)
    except ReferenceError as exc:
        exc.field = field
        raise
    if not path.is_absolute():
        found = _find_in(folders, path) if folders is not None else None
        raise ReferenceError(
            f"'{text}' is a relative path, and the server's working folder is not yours",
            field=field, fix=f"did you mean {_shown(found)}? Give the absolute path" if found else
            "give an absolute path (or one starting with ~/)",
        )
    try:
        return _local_source(text, path, field, folders)
    except ReferenceError:
        if folders is not None and folders.remote and folders.local_files:
            raise folders.unreadable(str(path), field) from None
        raise


def _local_source(text: str, path: Path, field: str, folders: Folders | None) -> Source:
    try:
        resolved = path.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise ReferenceError(
            f"file not found: {path}", field=field,
            fix="check the path; list_references(directory=...) lists the media files in a folder",
        ) from None
    except (OSError, RuntimeError) as exc:
        raise ReferenceError(f"cannot be opened: {path} ({type(exc).__name__})", field=field,
                             fix="check the path and its permissions") from None
    if folders is not None and resolved in folders.kept:
        return Source(given=folders.kept[resolved], location="local", path=resolved)
    if folders is not None:
        folders.check(resolved, str(path), field)
    if not resolved.is_file():
        raise ReferenceError(
            f"is not a file: {path}", field=field,
            fix="name one media file; list_references(directory=...) lists those in a folder",
        )
    return Source(given=text, location="local", path=resolved)


def _find_in(folders: Folders, relative: Path) -> Path | None:
    """A file of that relative name in an allowed folder, or one level below it: what a bare name most likely meant."""
    if ".." in relative.parts:
        return None
    for root in folders.roots:
        try:
            below = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))[:50]
        except OSError:
            continue
        for base in (root, *below):
            candidate = base / relative
            if candidate.is_file():
                return candidate
    return None


def _shown(path: Path) -> str:
    """A path as a person writes it: ~/... under the home folder."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def _from_data_uri(text: str, field: str, data_dir: Path) -> Source:
    header, sep, payload = text.partition(",")
    if not sep or ";base64" not in header.lower():
        raise ReferenceError("is a data URI without base64 content", field=field,
                             fix="use the form data:<mime>;base64,<data>")
    if len(payload) * 3 // 4 > Limits.DATA_URI_MAX_BYTES:
        raise ReferenceError(
            "is a data URI over the inline size limit", field=field,
            limit=f"{Limits.DATA_URI_MAX_BYTES // 1000} KB inline",
            fix="save the media to a file and pass its path, or pass an https URL",
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ReferenceError("is a data URI whose base64 does not decode", field=field,
                             fix="re-encode the file with standard base64") from None
    kind, fmt = sniff(data[:64])
    digest = hashlib.sha256(data).hexdigest()[:32]
    folder = data_dir / "inline"
    folder.mkdir(parents=True, exist_ok=True)
    # A copy of its own for each request (named by content, plus a token), so a request can remove what it wrote
    # without taking a file from another; uploads are deduplicated by content anyway.
    target = folder / f"{digest}.{secrets.token_hex(4)}{_EXT.get(fmt or '', '.bin')}"
    _prune(folder)
    atomic_write(target, data)
    return Source(given=text, location="data", path=target)


INLINE_KEPT_SECONDS = 48 * 3600  # a data: URI's bytes outlive the request only to be uploaded or rendered
INLINE_KEPT_BYTES = 256 * 1024 * 1024


def _prune(folder: Path) -> None:
    """Keep the inline folder bounded: files older than two days go, then the oldest until it fits. A task that
    still reads one holds it open, so removing the name takes nothing from it."""
    now = time.time()
    try:
        files = sorted(((p.stat().st_mtime, p.stat().st_size, p) for p in folder.iterdir() if p.is_file()),
                       key=lambda item: item[0])
    except OSError:
        return
    total = sum(size for _, size, _ in files)
    for mtime, size, path in files:
        if now - mtime > INLINE_KEPT_SECONDS or total > INLINE_KEPT_BYTES - Limits.DATA_URI_MAX_BYTES:
            path.unlink(missing_ok=True)
            total -= size
