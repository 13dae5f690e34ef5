"""Uploads already made, by content hash, so one file is not uploaded twice while the host keeps it."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from ..store.files import atomic_write


class UploadCache:
    """`(provider, sha256) -> (address, expires_at)`, kept in a small JSON file beside the ledger."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def _load(self) -> dict[str, list]:
        try:
            return json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def get(self, provider: str, digest: str, *, margin: float = 3600) -> str | None:
        with self._lock:
            entry = self._load().get(f"{provider}:{digest}")
        if entry and entry[1] - margin > time.time():
            return entry[0]
        return None

    def put(self, provider: str, digest: str, address: str, ttl: float) -> None:
        with self._lock:
            now = time.time()
            table = {k: v for k, v in self._load().items() if v[1] > now}
            table[f"{provider}:{digest}"] = [address, now + ttl]
            atomic_write(self.path, json.dumps(table))
