"""Finished videos for remote clients: signed, expiring URLs served by this server, for their caller only.

Over HTTP a `local_path` names the server's disk, which a remote client cannot open. A finished task's
view therefore carries `download_url` (the MP4, with Range requests so players can seek) and `poster_url`,
each signed with HMAC-SHA256 over the caller, the task, the file kind and the expiry. The key is
`WAN_R2V_URL_SECRET`, or one made once and kept (owner-only) in the data folder.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from .config import Settings
    from .store import Store

KINDS = {"mp4": ("local_path", "video/mp4"), "jpg": ("poster_path", "image/jpeg")}


class Signer:
    def __init__(self, settings: Settings, store: Store | None = None):
        self.settings = settings
        secret = os.environ.get("WAN_R2V_URL_SECRET")
        shared = store.shared_secret("url", lambda: secrets.token_bytes(32)) if store and not secret else None
        self._key = secret.encode() if secret else shared or _kept_secret(settings.data.url_secret)

    def sign(self, caller: str, task_id: str, kind: str, expires: int) -> str:
        message = f"{caller}\n{task_id}\n{kind}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def url(self, base: str, caller: str, task_id: str, kind: str) -> tuple[str, int]:
        expires = int(time.time() + self.settings.video_url_seconds)
        query = urlencode({"c": caller, "e": expires, "s": self.sign(caller, task_id, kind, expires)})
        return f"{base.rstrip('/')}/videos/{task_id}.{kind}?{query}", expires

    def check(self, caller: str, task_id: str, kind: str, expires: str, signature: str) -> bool:
        if not expires.isdigit() or int(expires) < time.time():
            return False
        return hmac.compare_digest(self.sign(caller, task_id, kind, int(expires)), signature)


def _kept_secret(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        return key
    except OSError:
        return secrets.token_bytes(32)  # an unreadable folder: URLs last until the server restarts


async def serve_file(request: Request, signer: Signer, saved: Callable[[str], Any]) -> Response:
    """GET /videos/{task_id}.{mp4|jpg}?c=&e=&s=: the file, for a URL this server signed and that has not expired."""
    from starlette.responses import FileResponse, PlainTextResponse

    name = request.path_params["name"]
    task_id, _, kind = name.rpartition(".")
    q = request.query_params
    if kind not in KINDS or not signer.check(q.get("c", ""), task_id, kind, q.get("e", ""), q.get("s", "")):
        return PlainTextResponse("This link is not valid or has expired; get_task gives a fresh one.", status_code=403)
    record = saved(task_id)  # a task's or a sequence's row: its owner, local_path and poster_path
    column, media_type = KINDS[kind]
    path = getattr(record, column) if record is not None and record.owner == q.get("c", "") else None
    if not path or not Path(path).is_file():
        return PlainTextResponse("No such file.", status_code=404)
    return FileResponse(path, media_type=media_type, filename=f"{task_id}.{kind}",
                        headers={"Cache-Control": "private, max-age=300"})
