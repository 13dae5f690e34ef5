"""What a media file really is: format by magic bytes, then size, dimensions and duration.

The format comes from the first bytes, never the extension, and the byte size is checked before
anything is decoded. Pillow and PyAV are imported only when a file gets that far.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .opened import OpenedFile

HEADER_BYTES = 64


@dataclass(frozen=True)
class MediaInfo:
    kind: str  # image | video | audio | unknown
    format: str | None
    size_bytes: int
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    fps: float | None = None
    has_audio: bool | None = None
    has_alpha: bool | None = None  # an image with an alpha channel (DashScope takes PNG only without one)
    error: str | None = None  # the file claims a format but could not be read as it


def sniff(header: bytes) -> tuple[str, str | None]:
    """(kind, format) from a file's first bytes."""
    if header.startswith(b"\xff\xd8\xff"):
        return "image", "jpeg"
    if header.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "png"
    if header.startswith(b"BM") and len(header) >= 26:
        return "image", "bmp"
    if header[:4] == b"RIFF" and header[8:12] == b"WEBP":
        return "image", "webp"
    if header[:4] == b"RIFF" and header[8:12] == b"WAVE":
        return "audio", "wav"
    if header.startswith((b"GIF87a", b"GIF89a")):
        return "image", "gif"
    if header[4:8] == b"ftyp":
        brand = header[8:12]
        if brand == b"qt  ":
            return "video", "mov"
        if brand in (b"M4A ", b"M4B "):
            return "audio", "m4a"
        return "video", "mp4"
    if header[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "video", "mov"
    if header.startswith(b"ID3") or (len(header) > 1 and header[0] == 0xFF and header[1] & 0xE0 == 0xE0):
        return "audio", "mp3"
    return "unknown", None


# Probing decodes nothing: Pillow reads the header, PyAV the container's index. Results are kept
# by (device, inode, size, mtime) so listing a folder twice costs one stat per file.
_cache: dict[tuple[int, int, int, int], MediaInfo] = {}
_CACHE_MAX = 20_000


def probe(file: Path | OpenedFile, *, max_bytes: dict[str, int] | None = None) -> MediaInfo:
    """Judge the open file itself (a path is opened here, without following a final symlink)."""
    if isinstance(file, Path):
        with OpenedFile(file) as opened:
            return probe(opened, max_bytes=max_bytes)
    key = file.identity
    if (hit := _cache.get(key)) is not None:
        return hit
    kind, fmt = sniff(file.read_at(0, HEADER_BYTES))
    info = MediaInfo(kind=kind, format=fmt, size_bytes=file.size)
    cap = (max_bytes or {}).get(kind)
    if kind != "unknown" and (cap is None or file.size <= cap):
        info = _measure(file, info)
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    _cache[key] = info
    return info


def _measure(file: OpenedFile, info: MediaInfo) -> MediaInfo:
    from dataclasses import replace

    try:
        if info.kind == "image":
            from PIL import Image

            Image.MAX_IMAGE_PIXELS = None  # we read the size from the header and judge it ourselves
            with Image.open(file.reader()) as im:  # lazy: reads the header, decodes no pixels
                alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
                return replace(info, width=im.width, height=im.height, has_alpha=alpha)
        import av

        # A file object, not a name: PyAV reads only these bytes and follows no playlist or protocol.
        with av.open(file.reader(), mode="r", format=info.format if info.format in ("mp4", "mov", "wav", "mp3") else None) as container:
            duration = container.duration / 1_000_000 if container.duration else None
            if info.kind == "video":
                if not container.streams.video:
                    return replace(info, error="no video stream in the file")
                stream = container.streams.video[0]
                if duration is None and stream.duration and stream.time_base:
                    duration = float(stream.duration * stream.time_base)
                fps = float(stream.average_rate) if stream.average_rate else None
                return replace(info, width=stream.codec_context.width, height=stream.codec_context.height,
                               duration_seconds=duration, fps=fps, has_audio=bool(container.streams.audio))
            if not container.streams.audio:
                return replace(info, error="no audio stream in the file")
            return replace(info, duration_seconds=duration, has_audio=True)
    except Exception as exc:  # a corrupt or hostile file: report it, never crash on it
        return replace(info, error=f"could not be read as {info.format}: {type(exc).__name__}")
