"""Saving a paid result: the video, its poster and its sidecar, then the task's last move."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import anyio

from ..config import Settings
from ..errors import ProviderError, ResultExpired
from ..providers.base import HostJob, Provider
from ..schema import PIXEL_SIZES
from ..store import Store, TaskRecord
from . import results
from .lifecycle import Lifecycle, Phase
from .worker import Signals

log = logging.getLogger(__name__)


class Downloader:
    def __init__(self, settings: Settings, ledger: Store, lifecycle: Lifecycle, signals: Signals):
        self.settings = settings
        self.ledger = ledger
        self.lifecycle = lifecycle
        self.signals = signals

    async def save(self, record: TaskRecord, provider: Provider) -> None:
        """What may pass (5xx, resets, truncation, timeouts, HTML) is tried again with backoff for as long as the host
        serves the result; a readable video is kept whatever its length or size (fetching it again cannot change those
        bytes), and only a result the host no longer serves ends the task without it."""
        task_id = record.task_id
        folder = self.settings.videos_dir
        # A previous process's interrupted download: found by listing the folder, which holds every result, so off the
        # event loop (at thousands of tasks the listing took milliseconds per task, every other task waiting).
        await anyio.to_thread.run_sync(_clear_leftovers, folder, task_id)
        job = HostJob(record.provider_task_id or "", "succeeded", record.stage, video_url=record.video_url,
                      video_url_expires_at=record.video_url_expires_at, billable_seconds=record.billable_seconds,
                      extra={"payload": record.payload})
        expires = record.video_url_expires_at or (record.updated_at + 3600)
        request = record.request or {}
        size = None if request.get("first_frame") else PIXEL_SIZES.get((request.get("resolution"),
                                                                         request.get("aspect_ratio")))
        attempt = 0
        while True:
            try:
                # An edit of duration 0 keeps its source's length, which only the result shows.
                video, poster, facts = await results.save(task_id, folder, lambda part: provider.download(job, part),
                                                          float(request.get("duration") or 0) or None, size)
                break
            except ProviderError as exc:
                attempt += 1
                wait = self.settings.time_scale * min(2.0 * 2 ** attempt, 60.0)
                if not exc.retryable:  # expired, refused: it cannot pass
                    self.lifecycle.fail(task_id, exc, only_from=frozenset({Phase.DOWNLOADING}))
                    return
                if time.time() + wait >= expires:
                    self.lifecycle.fail(task_id, ResultExpired(
                        f"the paid result could not be saved before the host's URL for it expired (the last try: "
                        f"{exc.message})", fix=f"generate again; the job was {record.provider_task_id} at "
                        f"{provider.capabilities.title}, whose console may still show it"),
                        only_from=frozenset({Phase.DOWNLOADING}))
                    return
                log.warning("downloading the result of %s: attempt %d failed (%s); trying again in %.1f s", task_id,
                            attempt, exc.message, wait)
                self.lifecycle.note(task_id, Phase.DOWNLOADING,
                                    stage=f"downloading the result: attempt {attempt} failed ({exc.message}); "
                                          f"trying again in {wait:.0f} s")
                self.signals.notify(task_id)
                await anyio.sleep(wait)
        finished = time.time()
        record = self.ledger.get(task_id) or record
        sidecar = results.write_sidecar(folder, record, {
            "status": "succeeded",
            "finished_at": results.iso(finished),
            "video": video.name,
            "poster": poster.name if poster else None,
            "video_url": None if provider.capabilities.local else record.video_url,
            "output": facts,
            "billable_seconds": record.billable_seconds,
            "cost_estimate_usd": record.cost_estimate,
            "payload": record.payload,
        })
        self.lifecycle.move(task_id, Phase.SUCCEEDED, only_from=frozenset({Phase.DOWNLOADING}), stage="saved",
                            progress=1.0, finished_at=finished, local_path=str(video), output=facts,
                            poster_path=str(poster) if poster else None, sidecar_path=str(sidecar))


def _clear_leftovers(folder: Path, task_id: str) -> None:
    prefix = f".{task_id}."
    if not folder.is_dir():
        return
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(prefix) and entry.name.endswith(".part"):
                Path(entry.path).unlink(missing_ok=True)
