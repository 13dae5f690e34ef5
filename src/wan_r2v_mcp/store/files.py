"""The data folder: every file and folder the server keeps, named in one place, and the one way they are written.

A file is written whole or not at all: to a temporary name beside it, flushed to disk, renamed over the target,
and the folder flushed, so after a crash the name holds the old bytes or the new ones, never a torn mix
(rename(2) is atomic within a filesystem; fsync of the folder makes the rename itself durable).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

LEDGER_FILE = "tasks.sqlite3"


def temp_beside(dest: Path) -> Path:
    """A name in the same folder (so the rename stays on one filesystem) that no other writer picks."""
    return dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")


def commit(part: Path, dest: Path) -> Path:
    """Make a fully written temporary file the target: fsync it, rename it over `dest`, fsync the folder."""
    with open(part, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(part, dest)
    if hasattr(os, "O_DIRECTORY"):  # folders cannot be opened for fsync on Windows; NTFS journals the rename
        fd = os.open(dest.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return dest


def atomic_write(dest: Path, content: bytes | str | Callable[[Path], object]) -> Path:
    """Write `dest` whole or not at all; `content` is the bytes, the text (UTF-8), or a function that writes the
    temporary file it is given (an image's save, an encoder)."""
    part = temp_beside(dest)
    try:
        if isinstance(content, bytes):
            part.write_bytes(content)
        elif isinstance(content, str):
            part.write_text(content, encoding="utf-8")
        else:
            content(part)
        return commit(part, dest)
    finally:
        part.unlink(missing_ok=True)


def write_once(dest: Path, content: Callable[[Path], object]) -> Path:
    """Write `dest` whole unless it exists, never replacing it: a file others may hold open (a placeholder frame
    two checks read at once) keeps its inode, so an open descriptor's path still names it."""
    if dest.exists():
        return dest
    part = temp_beside(dest)
    try:
        content(part)
        with open(part, "rb") as fh:
            os.fsync(fh.fileno())
        try:
            os.link(part, dest)  # fails if another writer got there first: theirs stays
        except FileExistsError:
            pass
        return dest
    finally:
        part.unlink(missing_ok=True)


class DataDir:
    """The server's own folder (`WAN_R2V_DATA_DIR`): the ledger, the cast, upload caches, work files. Folders are
    made when first asked for."""

    def __init__(self, root: Path):
        self.root = root

    def _folder(self, name: str) -> Path:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def ledger(self) -> Path:
        return self.root / LEDGER_FILE

    @property
    def url_secret(self) -> Path:
        """The key that signs download URLs, made once (mode 0600) unless WAN_R2V_URL_SECRET gives one."""
        return self.root / "url-secret"

    @property
    def tool_schemas(self) -> Path:
        """The tools' published schemas as the code last made them (kept so that a start need not make them)."""
        return self.root / "tool-schemas.json"

    @property
    def uploads(self) -> Path:
        """The hosts' uploads still valid there, by host and content."""
        return self.root / "uploads.json"

    @cached_property
    def cast(self) -> Path:
        """The characters' files, named by the SHA-256 of their bytes."""
        return self._folder("cast")

    @cached_property
    def inline(self) -> Path:
        """Bytes that came as data: URIs or were fetched from https, kept only until uploaded or rendered."""
        return self._folder("inline")

    @cached_property
    def tmp(self) -> Path:
        """Work files made from references (an image with its transparency flattened)."""
        return self._folder("tmp")

    @cached_property
    def sequences(self) -> Path:
        """Frames carried between shots, and stand-ins for the ones not made yet."""
        return self._folder("sequences")

    @cached_property
    def preview(self) -> Path:
        """The offline preview's renders, before they are delivered like any host's video."""
        return self._folder("preview")
