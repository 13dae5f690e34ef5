"""Which local folders references may come from, and the containment check (the path escapes of CVE-2025-53110 and CVE-2025-53109, among others).

Containment is decided on resolved real paths, by path component (never by string prefix), so a
sibling `refs_secret` beside an allowed `refs` is outside and a symlink pointing out is outside.
Dotfiles and dot-folders are refused even inside an allowed folder. Over HTTP, local files are off
unless the operator configured folders: there a "local path" means the server's own disk.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ReferenceError


@dataclass(frozen=True)
class Folders:
    roots: tuple[Path, ...]
    local_files: bool = True
    # Files the server keeps itself (a character's media, a sequence's carried-over frame), readable whatever the
    # folders, by how a request's references list shows them ("@alice").
    kept: Mapping[Path, str] = field(default_factory=dict)
    # Reached over HTTP: a caller must not learn which paths exist on the server's disk, so "missing", "outside"
    # and "hidden" read the same.
    remote: bool = False

    def unreadable(self, shown: str, field: str) -> ReferenceError:
        """The one answer a remote caller gets for a path it may not read, whatever the reason."""
        return ReferenceError(f"{shown} is not a file this server may read", field=field,
                              limit="allowed: " + (", ".join(str(r) for r in self.roots) or "none"),
                              fix="pass a media file inside one of those folders, an https URL, or a small data: URI")

    def check(self, path: Path, shown: str, field: str) -> None:
        """`path` is already resolved (symlinks followed); refuse it unless it lies in a root and is not hidden."""
        if not self.local_files:
            raise ReferenceError(
                "local files are off on this server (it is reached over HTTP, so a path would mean the server's disk)",
                field=field, fix="pass an https URL the host can fetch, or a small data: URI; the operator can allow "
                "a folder with WAN_R2V_ALLOWED_DIRS")
        for root in self.roots:
            if path == root or path.is_relative_to(root):
                hidden = [part for part in path.relative_to(root).parts if part.startswith(".")]
                if hidden:
                    raise ReferenceError(f"{shown} is a hidden file or lies in a hidden folder ({hidden[0]})",
                                         field=field, fix="copy the media to a visible folder")
                return
        raise ReferenceError(
            f"{shown} is outside the folders this server may read", field=field,
            limit="allowed: " + (", ".join(str(r) for r in self.roots) or "none"),
            fix="move or copy the file into one of those folders, or add its folder to WAN_R2V_ALLOWED_DIRS "
                "(separate several with the OS path separator)")


def default_folders() -> list[Path]:
    """The user's own media folders: Pictures, Videos (Movies), Downloads, Desktop, Documents."""
    import platformdirs

    return [Path(p) for p in (platformdirs.user_pictures_dir(), platformdirs.user_videos_dir(),
                              platformdirs.user_downloads_dir(), platformdirs.user_desktop_dir(),
                              platformdirs.user_documents_dir())]


def _resolved(folders: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for folder in folders:
        try:
            resolved = Path(folder).expanduser().resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if resolved.is_dir() and resolved not in out and resolved != Path(resolved.anchor):
            out.append(resolved)
    return out


def build_folders(configured: Iterable[Path], output_dir: Path, *, remote: bool, client_roots: Iterable[Path] = ()) -> Folders:
    """Locally, the user's client may add its roots. Over HTTP only the operator's folders count, and a remote
    client's roots can only narrow them (a root inside an allowed folder), never add to them."""
    configured = _resolved(configured)
    if remote:
        if not configured:
            return Folders(roots=(), local_files=False, remote=True)
        offered = _resolved(client_roots)
        if not offered:
            return Folders(roots=tuple(configured), remote=True)
        narrowed = [r for r in offered if any(r == c or r.is_relative_to(c) for c in configured)]
        narrowed += [c for c in configured if any(c.is_relative_to(r) for r in offered) and c not in narrowed]
        return Folders(roots=tuple(narrowed), local_files=bool(narrowed), remote=True)
    return Folders(roots=tuple(_resolved([*configured, output_dir, *default_folders(), *client_roots])))
