"""The cast: characters kept by name, each one reference (an image or a clip) and optionally a voice sample.

The server keeps its own copy of each file, named by the SHA-256 of its bytes, in `<data dir>/cast/`: a
character survives the user moving or deleting the original, two characters made from the same photo
share one file, and the hosts' upload caches (keyed by content) reuse an upload while it is valid. Rows
live in the store, one per (caller, name); `Cast` is their only writer.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable
from pathlib import Path

from ..errors import InputError, ReferenceError
from ..references.opened import OpenedFile
from ..store import Store
from ..store.files import commit, temp_beside
from ..store.records import CastRoom, Character

NAME_MAX = 40
CAST_MAX = 200  # characters per caller: a list an agent can still read whole
CAST_MAX_BYTES = 2 * 1024**3  # a caller's cast files on the server's disk
CAST_TOTAL_BYTES = 20 * 1024**3  # every caller's together

_EXT = {"jpeg": ".jpg", "png": ".png", "bmp": ".bmp", "webp": ".webp", "mp4": ".mp4", "mov": ".mov",
        "wav": ".wav", "mp3": ".mp3"}
_NAME = re.compile(r"[^\W_][\w-]*")  # a letter or digit (any script), then letters, digits, _ and -
_PATHLIKE = set("/\\.:~*?\"<>|")


def name_key(name: str) -> str:
    """Names match whatever their case: @Alice and @alice are one character."""
    return name.casefold()


def check_name(name: object, field: str = "name") -> str:
    """The name as it will be kept, or an error saying what is wrong with it."""
    fix = "use letters, digits, _ and -, starting with a letter or digit, e.g. alice or old_sailor"
    if not isinstance(name, str) or not name.strip():
        raise InputError("is empty", field=field, fix=fix)
    name = name.strip().removeprefix("@")
    if len(name) > NAME_MAX:
        raise InputError(f"is {len(name)} characters long", field=field, limit=f"at most {NAME_MAX}", fix=fix)
    bad = sorted({c for c in name if c in _PATHLIKE})
    if bad:
        raise InputError(f"contains {' '.join(repr(c) for c in bad)}, a path character", field=field, fix=fix)
    if any(c.isspace() for c in name):
        raise InputError("contains a space", field=field, fix=f"join the words, e.g. {'_'.join(name.split())}")
    if not _NAME.fullmatch(name):
        raise InputError(f"'{name}' is not a usable name", field=field, fix=fix)
    return name


def taken(name: str) -> InputError:
    return InputError(f"'{name}' is already a character", field="name",
                      fix="pick another name, or pass replace=true to overwrite it")


def _refuse_beyond(count: int, mine: int, everyone: int, size: int) -> None:
    if count >= CAST_MAX:
        raise InputError(f"the cast already has {count} characters", field="name", limit=f"at most {CAST_MAX}",
                         fix="delete_character the ones no longer used")
    if mine + size > CAST_MAX_BYTES:
        raise InputError(f"the cast's files would come to {(mine + size) / 1024**2:,.0f} MB", field="reference",
                         limit=f"at most {CAST_MAX_BYTES // 1024**3} GB of files per caller",
                         fix="delete_character the ones no longer used, or save a smaller file")
    if everyone + size > CAST_TOTAL_BYTES:
        raise InputError("the server's cast folder is full", field="reference",
                         limit=f"at most {CAST_TOTAL_BYTES // 1024**3} GB for every caller together",
                         fix="ask the operator to make room, or save a smaller file")


class Cast:
    def __init__(self, store: Store, folder: Path):
        self.store = store
        self.folder = folder

    # -- reading

    def get(self, owner: str, name: str) -> Character | None:
        return self.store.get_character(owner, name_key(name))

    def list(self, owner: str) -> list[Character]:
        return self.store.list_characters(owner)

    def path(self, file_name: str | None) -> Path | None:
        return self.folder / file_name if file_name else None

    def files(self, owner: str, names: Iterable[str]) -> dict[str, str]:
        """The reference file of each of these characters that is still kept (shown beside takes on a sheet)."""
        kept = {}
        for name in names:
            character = self.get(owner, name)
            if character is not None and (path := self.path(character.media)) is not None:
                kept[character.name] = str(path)
        return kept

    def missing(self, character: Character) -> list[str]:
        """Which of a character's files are gone from the cast folder (deleted by hand, a disk restored...)."""
        return [n for n in (character.media, character.voice) if n and not (self.folder / n).is_file()]

    # -- writing

    def keep(self, opened: OpenedFile, fmt: str) -> str:
        """Copy an open, checked file into the cast folder under the hash of its bytes; returns the file name."""
        self.folder.mkdir(parents=True, exist_ok=True)
        part = temp_beside(self.folder / "copy")
        digest = hashlib.sha256()
        try:
            with open(part, "wb") as out:
                offset = 0
                while offset < opened.size:
                    chunk = opened.read_at(offset, min(1 << 20, opened.size - offset))
                    if not chunk:
                        break
                    digest.update(chunk)
                    out.write(chunk)
                    offset += len(chunk)
            if offset != opened.size:
                raise ReferenceError("changed while it was being copied", field="reference",
                                     fix="save the character again once the file is complete")
            name = f"{digest.hexdigest()[:40]}{_EXT.get(fmt, '.bin')}"
            commit(part, self.folder / name)
            return name
        finally:
            part.unlink(missing_ok=True)

    def check_room(self, owner: str, name: str, size: int, *, replace: bool) -> None:
        """Refuse, before anything is copied, a character the cast has no room for (`save` decides it again)."""
        room = self.store.cast_room(owner, name_key(name))
        _refuse_beyond(room.count if self.get(owner, name) is None else 0, room.mine, room.everyone, size)

    def forget_files(self, names: list[str]) -> None:
        """Remove cast files that no character uses (what a refused save had copied)."""
        for name in names:
            if not self.store.file_in_use(name):
                (self.folder / name).unlink(missing_ok=True)

    def save(self, character: Character, *, replace: bool) -> Character | None:
        """Insert the character; with `replace`, overwrite one of that name. Returns the one it replaced, if any."""
        def check(old: Character | None, room: CastRoom) -> None:
            if old is not None and not replace:
                raise taken(old.name)
            _refuse_beyond(room.count if old is None else 0, room.mine, room.everyone, character.size_bytes)

        old = self.store.save_character(character, check)
        if old is not None:
            self._collect(old)
        return old

    def delete(self, owner: str, name: str) -> Character | None:
        gone = self.store.delete_character(owner, name_key(name))
        if gone is not None:
            self._collect(gone)
        return gone

    def used(self, owner: str, names: list[str]) -> None:
        self.store.characters_used(owner, [name_key(n) for n in names], time.time())

    def _collect(self, character: Character) -> None:
        """Remove the files of a deleted or replaced character that no other character uses. A task still uploading
        one reads it through its own open descriptor, so removing the name takes nothing from it."""
        self.forget_files([n for n in (character.media, character.voice, character.thumbnail) if n])
