"""The tools' published schemas, kept between starts.

Making them is most of a start's own work (pydantic builds each argument model and its JSON schema, ~30 ms of
~50 in `build_server`), and they change only with the code. So they are kept in the data folder under a key made
of what shapes them: the source of the wire types and of the tools, and the versions of Python and pydantic. A
start whose key matches reads them (about 2 ms with the key); any other makes them and keeps them. An unreadable
or unwritable file only means they are made again. Within one process each is made at most once (the code cannot
change under a running process): a process that builds several servers, each on its own data folder, makes them
for the first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..store.files import atomic_write

log = logging.getLogger(__name__)
_CURRENT: ContextVar[SchemaCache | None] = ContextVar("wan_r2v_schema_cache", default=None)
_MADE_HERE: dict[str, Any] = {}  # name -> schema, made in this process


def _made_here(name: str, make: Callable[[], Any]) -> Any:
    if name not in _MADE_HERE:
        _MADE_HERE[name] = make()
    return _MADE_HERE[name]


def _copy(schema: Any) -> Any:
    return json.loads(json.dumps(schema))  # callers may edit what they get


@lru_cache(maxsize=1)
def code_key() -> str:
    """What the schemas are made from: the package's wire types and tools (their sources), pydantic (which writes
    the JSON schemas) and Python."""
    import pydantic
    import pydantic_core

    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(f"{pydantic.VERSION} {pydantic_core.__version__} {sys.version}\n".encode())
    for folder in ("schema", "tools"):
        for source in sorted((package / folder).glob("*.py")):
            digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()


class SchemaCache:
    def __init__(self, path: Path):
        self.path = path
        self.key = code_key()
        self._made: dict[str, Any] = {}
        self._changed = False
        try:
            kept = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(kept, dict) and kept.get("key") == self.key and isinstance(kept.get("schemas"), dict):
                self._made = {name: entry for name, entry in kept["schemas"].items() if _whole(entry)}
        except (OSError, ValueError):
            pass  # none yet, or unreadable: made again

    def get(self, name: str, make: Callable[[], Any]) -> Any:
        """The schema kept under `name`, else `make()`'s (then kept); a fresh copy each time (callers may edit it)."""
        if name not in self._made:
            self._made[name] = _made_here(name, make)
            self._changed = True
        return _copy(self._made[name])

    def save(self) -> None:
        if not self._changed:
            return
        try:
            atomic_write(self.path, json.dumps({"key": self.key, "schemas": self._made}, separators=(",", ":")))
        except OSError as exc:  # a read-only data folder: they are made at each start
            log.info("keeping the tools' schemas failed: %s", exc)


def _whole(entry: Any) -> bool:
    """A kept entry as `model_tool` makes it: an input schema with its properties, an output schema or none."""
    return (isinstance(entry, dict) and isinstance(entry.get("input"), dict)
            and isinstance(entry["input"].get("properties"), dict)
            and (entry.get("output") is None or isinstance(entry["output"], dict)))


@contextmanager
def kept_in(path: Path) -> Iterator[None]:
    """Within this block, `schema(name, make)` reads and keeps the schemas in the file at `path`."""
    cache = SchemaCache(path)
    token = _CURRENT.set(cache)
    try:
        yield
    finally:
        _CURRENT.reset(token)
    cache.save()


def schema(name: str, make: Callable[[], Any]) -> Any:
    """`make()`'s schema, or the one kept under `name` for this very code (outside `kept_in`, the one made here)."""
    cache = _CURRENT.get()
    return _copy(_made_here(name, make)) if cache is None else cache.get(name, make)
