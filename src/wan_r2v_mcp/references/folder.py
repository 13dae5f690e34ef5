"""List the media files of a folder that could serve as references."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ReferenceError
from ..schema import ReferenceView
from .folders import Folders
from .intake import judge
from .probe import probe
from .sources import local_path

_ROLE_OF_KIND = {"image": "reference_image", "video": "reference_video", "audio": "voice"}  # judged as references
_KIND_ORDER = {"image": 0, "video": 1, "audio": 2}


def list_folder(directory: str, limit: int, folders: Folders) -> tuple[str, list[ReferenceView], int]:
    """(folder, media files in it best first, how many more there were)."""
    text = directory.strip()
    try:
        path = local_path(text)
    except ReferenceError as exc:
        exc.field = "directory"
        raise
    if not path.is_absolute():
        raise ReferenceError(f"'{directory}' is a relative path", field="directory",
                             fix="give an absolute folder path (or one starting with ~/)")
    try:
        if not path.is_dir():
            raise ReferenceError(f"is not a folder: {path}", field="directory", fix="give an existing folder's path")
        path = path.resolve()  # checked and scanned as one path: the folder the check allowed is the one listed
        folders.check(path, str(path), "directory")
    except ReferenceError:
        if folders.remote and folders.local_files:
            raise folders.unreadable(str(path), "directory") from None
        raise
    found: list[tuple[tuple[int, int, float], ReferenceView]] = []
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file():
                continue
            file = Path(entry.path)
            try:
                media = probe(file)
            except OSError:
                continue
            if media.kind not in _ROLE_OF_KIND:
                continue
            role = _ROLE_OF_KIND[media.kind]
            problems = judge(media, role, entry.name)
            view = ReferenceView(
                label=f"candidate {media.kind}", kind=media.kind, role=role, source=str(file), location="local",  # type: ignore[arg-type]
                format=media.format, size_bytes=media.size_bytes, width=media.width, height=media.height,
                duration_seconds=round(media.duration_seconds, 3) if media.duration_seconds else None,
                ok=not problems, problems=[p.message + (f" (limit: {p.limit})" if p.limit else "") for p in problems],
            )
            found.append(((0 if view.ok else 1, _KIND_ORDER[media.kind], -entry.stat().st_mtime), view))
    found.sort(key=lambda item: item[0])
    return str(path), [v for _, v in found[:limit]], max(len(found) - limit, 0)
