"""The cast: characters kept by name, each one reference (an image or a clip) and optionally a voice sample.

The server keeps its own copy of each file, named by the SHA-256 of its bytes, in `<data dir>/cast/`: a
character survives the user moving or deleting the original, two characters made from the same photo
share one file, and the hosts' upload caches (keyed by content) reuse an upload while it is valid. Rows
live in the ledger's SQLite file, one per (caller, name); `Cast` is their only writer.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass, fields
from pathlib import Path

from ..errors import InputError, ReferenceError
from ..jobs.ledger import Ledger
from ..references.opened import OpenedFile

NAME_MAX = 40
CAST_MAX = 200  # characters per caller: a list an agent can still read whole
CAST_MAX_BYTES = 2 * 1024**3  # a caller's cast files on the server's disk
CAST_TOTAL_BYTES = 20 * 1024**3  # every caller's together

_SCHEMA = """
CREATE TABLE IF NOT EXISTS characters (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL,
    format TEXT NOT NULL,
    media TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    width INTEGER,
    height INTEGER,
    seconds REAL,
    voice TEXT,
    voice_format TEXT,
    voice_seconds REAL,
    thumbnail TEXT,
    created_at REAL NOT NULL,
    last_used_at REAL,
    uses INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, key)
);
"""

_EXT = {"jpeg": ".jpg", "png": ".png", "bmp": ".bmp", "webp": ".webp", "mp4": ".mp4", "mov": ".mov",
        "wav": ".wav", "mp3": ".mp3"}
_NAME = re.compile(r"[^\W_][\w-]*")  # a letter or digit (any script), then letters, digits, _ and -
_PATHLIKE = set("/\\.:~*?\"<>|")


@dataclass
class Character:
    owner: str
    key: str
    name: str
    description: str
    kind: str  # image | video
    format: str
    media: str  # file name in the cast folder
    size_bytes: int
    width: int | None
    height: int | None
    seconds: float | None
    voice: str | None
    voice_format: str | None
    voice_seconds: float | None
    thumbnail: str | None
    created_at: float
    last_used_at: float | None
    uses: int


_COLUMNS = [f.name for f in fields(Character)]


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
    def __init__(self, ledger: Ledger, folder: Path):
        self.ledger = ledger
        self.folder = folder
        ledger.create_tables(_SCHEMA)

    # -- reading

    def get(self, owner: str, name: str) -> Character | None:
        rows = self.ledger.read(f"SELECT {', '.join(_COLUMNS)} FROM characters WHERE owner = ? AND key = ?",
                                (owner, name_key(name)))
        return Character(*rows[0]) if rows else None

    def list(self, owner: str) -> list[Character]:
        rows = self.ledger.read(f"SELECT {', '.join(_COLUMNS)} FROM characters WHERE owner = ? ORDER BY key", (owner,))
        return [Character(*r) for r in rows]

    def path(self, file_name: str | None) -> Path | None:
        return self.folder / file_name if file_name else None

    def missing(self, character: Character) -> list[str]:
        """Which of a character's files are gone from the cast folder (deleted by hand, a disk restored...)."""
        return [n for n in (character.media, character.voice) if n and not (self.folder / n).is_file()]

    # -- writing

    def keep(self, opened: OpenedFile, fmt: str) -> str:
        """Copy an open, checked file into the cast folder under the hash of its bytes; returns the file name."""
        self.folder.mkdir(parents=True, exist_ok=True)
        part = self.folder / f".{secrets.token_hex(6)}.part"
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
                out.flush()
                os.fsync(out.fileno())
            if offset != opened.size:
                raise ReferenceError("changed while it was being copied", field="reference",
                                     fix="save the character again once the file is complete")
            name = f"{digest.hexdigest()[:40]}{_EXT.get(fmt, '.bin')}"
            os.replace(part, self.folder / name)
            return name
        finally:
            part.unlink(missing_ok=True)

    def check_room(self, owner: str, name: str, size: int, *, replace: bool) -> None:
        """Refuse, before anything is copied, a character the cast has no room for (`save` decides it again)."""
        count, mine, everyone = self._room(owner, name)
        _refuse_beyond(count if self.get(owner, name) is None else 0, mine, everyone, size)

    def _room(self, owner: str, name: str) -> tuple[int, int, int]:
        rows = self.ledger.read(
            "SELECT (SELECT COUNT(*) FROM characters WHERE owner = ?), "
            "(SELECT COALESCE(SUM(size_bytes), 0) FROM characters WHERE owner = ? AND key != ?), "
            "(SELECT COALESCE(SUM(size_bytes), 0) FROM characters)", (owner, owner, name_key(name)))
        return int(rows[0][0]), int(rows[0][1]), int(rows[0][2])

    def forget_files(self, names: list[str]) -> None:
        """Remove cast files that no character uses (what a refused save had copied)."""
        for name in names:
            rows = self.ledger.read("SELECT 1 FROM characters WHERE media = ? OR voice = ? OR thumbnail = ? LIMIT 1",
                                    (name, name, name))
            if not rows:
                (self.folder / name).unlink(missing_ok=True)

    def save(self, character: Character, *, replace: bool) -> Character | None:
        """Insert the character; with `replace`, overwrite one of that name. Returns the one it replaced, if any."""
        def work(db: sqlite3.Connection) -> Character | None:
            row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM characters WHERE owner = ? AND key = ?",
                             (character.owner, character.key)).fetchone()
            old = Character(*row) if row else None
            if old is not None and not replace:
                raise taken(old.name)
            count = db.execute("SELECT COUNT(*) FROM characters WHERE owner = ?", (character.owner,)).fetchone()[0]
            mine = db.execute("SELECT COALESCE(SUM(size_bytes), 0) FROM characters WHERE owner = ? AND key != ?",
                              (character.owner, character.key)).fetchone()[0]
            everyone = db.execute("SELECT COALESCE(SUM(size_bytes), 0) FROM characters").fetchone()[0]
            _refuse_beyond(count if old is None else 0, int(mine), int(everyone), character.size_bytes)
            values = [getattr(character, c) for c in _COLUMNS]
            db.execute(f"INSERT OR REPLACE INTO characters ({', '.join(_COLUMNS)}) VALUES "
                       f"({', '.join('?' for _ in _COLUMNS)})", values)
            return old

        old = self.ledger.transaction(work)
        if old is not None:
            self._collect(old)
        return old

    def delete(self, owner: str, name: str) -> Character | None:
        def work(db: sqlite3.Connection) -> Character | None:
            row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM characters WHERE owner = ? AND key = ?",
                             (owner, name_key(name))).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM characters WHERE owner = ? AND key = ?", (owner, name_key(name)))
            return Character(*row)

        gone = self.ledger.transaction(work)
        if gone is not None:
            self._collect(gone)
        return gone

    def used(self, owner: str, names: list[str]) -> None:
        now = time.time()
        self.ledger.transaction(lambda db: db.executemany(
            "UPDATE characters SET last_used_at = ?, uses = uses + 1 WHERE owner = ? AND key = ?",
            [(now, owner, name_key(n)) for n in names]))

    def _collect(self, character: Character) -> None:
        """Remove the files of a deleted or replaced character that no other character uses. A task still uploading
        one reads it through its own open descriptor, so removing the name takes nothing from it."""
        for name in (character.media, character.voice, character.thumbnail):
            if not name:
                continue
            rows = self.ledger.read("SELECT 1 FROM characters WHERE media = ? OR voice = ? OR thumbnail = ? LIMIT 1",
                                    (name, name, name))
            if not rows:
                (self.folder / name).unlink(missing_ok=True)
