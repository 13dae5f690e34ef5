"""Finished videos on disk: `<task_id>.mp4`, a poster frame `<task_id>.jpg` and a `<task_id>.json` sidecar.

The video is written to a temporary name in the same folder, fsynced and renamed, so a crash never
leaves a half-written file under the final name; file names come from our task id, never from the host.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio

from ..memory import media_work
from ..store.files import atomic_write, commit


def poster(video: Path, dest: Path) -> Path | None:
    """A JPEG of a frame a quarter of the way in, at most 640 px wide: small enough to show in chat."""
    with media_work():
        return _poster(video, dest)


def _poster(video: Path, dest: Path) -> Path | None:
    import av

    try:
        with av.open(str(video), options={"protocol_whitelist": "file"}) as container:
            stream = container.streams.video[0]
            wanted = (container.duration or 0) / 1_000_000 / 4
            chosen = None  # only the frame kept is turned into a picture (each conversion costs more than a decode)
            for frame in container.decode(stream):
                chosen = frame
                if frame.time is None or frame.time >= wanted:
                    break
            if chosen is None:
                return None
            image = chosen.to_image()
        image.thumbnail((640, 640))
        return atomic_write(dest, lambda part: image.save(part, format="JPEG", quality=85))
    except Exception:  # a poster is a convenience; the video itself is what matters
        return None


def iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds") if ts is not None else None


def check_video(path: Path, expected_seconds: float | None, expected_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """What was downloaded counts if it is a readable video; returns its real size and length ({"width", "height",
    "seconds"}), and under "differs" how it differs from what was asked. A paid video is never turned away for its
    length or size: downloading again cannot change those bytes, so it is kept and the task says so."""
    import av

    from ..errors import ResultInvalid

    try:
        with av.open(str(path), options={"protocol_whitelist": "file"}) as container:
            if not container.streams.video:
                raise ResultInvalid("the result has no video stream", fix="the server fetches it again on its own")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            seconds = container.duration / 1_000_000 if container.duration else None
            if seconds is None and stream.duration and stream.time_base:
                seconds = float(stream.duration * stream.time_base)
    except ResultInvalid:
        raise
    except Exception as exc:  # HTML, a truncated body, anything PyAV cannot open
        raise ResultInvalid(f"the result is not a readable video ({type(exc).__name__})",
                               fix="the server fetches it again on its own") from None
    if not width or not height:
        raise ResultInvalid("the result's video stream has no picture size",
                               fix="the server fetches it again on its own")
    facts: dict[str, Any] = {"width": width, "height": height}
    differs = []
    if seconds is not None:
        facts["seconds"] = round(seconds, 2)
        if expected_seconds and abs(seconds - expected_seconds) > max(1.5, 0.25 * expected_seconds):
            differs.append(f"it lasts {seconds:.1f} s, not the {expected_seconds:g} s asked")
    else:
        differs.append("its length could not be read")
    if expected_size is not None and abs(width * expected_size[1] - height * expected_size[0]) > \
            0.02 * width * expected_size[1]:  # another shape, not merely another pixel count
        differs.append(f"it is {width}x{height}, not the shape of the {expected_size[0]}x{expected_size[1]} asked")
    if differs:
        facts["differs"] = "; ".join(differs)
    return facts


async def save(task_id: str, folder: Path, write_video: Any, expected_seconds: float | None,
               expected_size: tuple[int, int] | None = None) -> tuple[Path, Path | None, dict[str, Any]]:
    """Run `write_video(part_path)`, check the video, and move it into place; returns (video, poster, its facts)."""
    dest = folder / f"{task_id}.mp4"
    part = folder / f".{task_id}.{secrets.token_hex(4)}.part"
    try:
        await write_video(part)
        facts = await anyio.to_thread.run_sync(check_video, part, expected_seconds, expected_size)
        await anyio.to_thread.run_sync(commit, part, dest)
    finally:
        part.unlink(missing_ok=True)
    still = await anyio.to_thread.run_sync(poster, dest, folder / f"{task_id}.jpg")
    return dest, still, facts


def write_sidecar(folder: Path, record: Any, extra: dict[str, Any]) -> Path:
    """Provenance beside the video: what was asked, of whom, with which references, and when."""
    dest = folder / f"{record.task_id}.json"
    body = {
        "task_id": record.task_id,
        "model": record.model,
        "provider": record.provider,
        "provider_task_id": record.provider_task_id,
        "request": record.request,
        "references": record.refs,
        "created_at": iso(record.created_at),
        **extra,
    }
    return write_json(dest, body)


def write_json(dest: Path, body: dict[str, Any]) -> Path:
    """A JSON file written whole or not at all."""
    return atomic_write(dest, json.dumps(body, indent=2, ensure_ascii=False) + "\n")
