"""A local reference opened once: every check and the upload read the same open file.

The file is opened without following a symlink at its last component (CVE-2025-53109), and its size,
type and magic bytes are judged on that open file; the upload reads it too, by offset. A file swapped for
a symlink, or replaced, after the check is therefore never what gets sent.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


class NotARegularFile(OSError):
    """The path names a symlink, a folder or a device, not a plain file."""


class OpenedFile:
    def __init__(self, path: Path):
        self.path = path
        try:
            self._fd = os.open(path, _FLAGS)
        except OSError as exc:
            if getattr(os, "O_NOFOLLOW", 0) and path.is_symlink():
                raise NotARegularFile(f"{path} became a symlink after it was checked") from None
            raise exc
        st = os.fstat(self._fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(self._fd)
            raise NotARegularFile(f"{path} is not a regular file")
        real = _real_path(self._fd)
        if real is not None and path.is_absolute() and real != str(path):
            # A folder above the file was swapped for a symlink between the check and the open: O_NOFOLLOW guards
            # only the last component, so the descriptor's own path is what decides.
            os.close(self._fd)
            raise NotARegularFile(f"{path} changed while it was being checked (it now leads elsewhere)")
        self.size = st.st_size
        self.identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        self._lock = threading.Lock()  # Windows has no pread: seek + read under a lock
        self._digest: str | None = None

    @property
    def suffix(self) -> str:
        return self.path.suffix.lower()

    def read_at(self, offset: int, size: int) -> bytes:
        if hasattr(os, "pread"):
            return os.pread(self._fd, size, offset)
        with self._lock:
            os.lseek(self._fd, offset, os.SEEK_SET)
            return os.read(self._fd, size)

    def reader(self) -> FileReader:
        """A file object of its own position over the open file, for Pillow, PyAV and httpx multipart."""
        return FileReader(self)

    def sha256(self) -> str:
        if self._digest is None:
            digest, offset = hashlib.sha256(), 0
            while chunk := self.read_at(offset, 1024 * 1024):
                digest.update(chunk)
                offset += len(chunk)
            self._digest = digest.hexdigest()
        return self._digest

    async def chunks(self, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """The bytes as an async stream read off the event loop, for streamed PUT uploads; stops at the checked size."""
        offset = 0
        while offset < self.size:
            chunk = await anyio.to_thread.run_sync(self.read_at, offset, min(size, self.size - offset))
            if not chunk:
                break
            offset += len(chunk)
            yield chunk

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> OpenedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _real_path(fd: int) -> str | None:
    """Where an open descriptor really is, on systems that say (Linux's /proc, macOS's F_GETPATH); else None."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        pass
    try:
        import fcntl

        if hasattr(fcntl, "F_GETPATH"):
            return fcntl.fcntl(fd, fcntl.F_GETPATH, bytes(1024)).split(b"\0", 1)[0].decode()  # type: ignore[attr-defined]
    except (OSError, ImportError, UnicodeDecodeError):
        pass
    return None


class FileReader:
    """read / seek / tell over an OpenedFile, bounded by the size that was checked."""

    def __init__(self, opened: OpenedFile):
        self._file = opened
        self._pos = 0
        self.name = opened.path.name

    def read(self, size: int = -1) -> bytes:
        left = self._file.size - self._pos
        if size is None or size < 0 or size > left:
            size = left
        if size <= 0:
            return b""
        data = self._file.read_at(self._pos, size)
        self._pos += len(data)
        return data

    def readinto(self, buffer) -> int:  # noqa: ANN001 - any writable buffer
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._file.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        pass
