"""Render the offline preview: an H.264 MP4 composed from the references, with slow camera motion.

It is a storyboard of what was given (the first frame first, then each image, then frames of each
video), captioned with the prompt and marked as a preview. No model runs here. Synchronous and
CPU-bound: the preview provider runs it in a worker thread.
"""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image, ImageDraw, ImageFont

BADGE = "OFFLINE PREVIEW - not Wan 2.7 output"
ZOOM = 0.12  # how far the camera pushes in over one segment


class RenderStopped(Exception):
    pass


@dataclass(frozen=True)
class Segment:
    label: str
    kind: str  # image | video | remote
    path: str | None = None
    url: str | None = None
    opens: bool = False  # the first frame: shown bare as the clip's opening frame


def render(segments: list[Segment], prompt: str, size: tuple[int, int], fps: int, seconds: int, out: Path,
           on_progress: Callable[[int, int], None] | None = None, stop: threading.Event | None = None) -> None:
    width, height = size
    total = fps * seconds
    counts = _split(total, len(segments))
    caption = _caption_band(prompt, width, height)
    container = av.open(str(out), mode="w", format="mp4", options={"movflags": "+faststart"})
    try:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        done = 0
        for index, (segment, count) in enumerate(zip(segments, counts)):
            header = _header_band(segment.label, width, height)
            for frame_image in _frames(segment, count, size, index):
                if stop is not None and stop.is_set():
                    raise RenderStopped()
                if not (done == 0 and segment.opens):  # a clip given a first frame opens on it exactly
                    frame_image.paste(header, (0, 0), header)
                    frame_image.paste(caption, (0, height - caption.height), caption)
                frame = av.VideoFrame.from_image(frame_image)
                frame.pts = done
                container.mux(stream.encode(frame))
                done += 1
                if on_progress is not None:
                    on_progress(done, total)
        container.mux(stream.encode(None))
    finally:
        container.close()


def _split(total: int, parts: int) -> list[int]:
    parts = max(parts, 1)
    base = total // parts
    return [base] * (parts - 1) + [total - base * (parts - 1)]


def _frames(segment: Segment, count: int, size: tuple[int, int], index: int):
    if count <= 0:
        return
    if segment.kind == "image" and segment.path:
        with Image.open(segment.path) as im:
            source = _fit_source(im.convert("RGB"), size)
        for i in range(count):
            yield _camera(source, size, i / max(count - 1, 1), index)
    elif segment.kind == "video" and segment.path:
        for i, still in enumerate(_video_stills(segment.path, count, size)):
            yield _camera(still, size, i / max(count - 1, 1), index, zoom=ZOOM / 2)
    else:
        card = _title_card(segment, size)
        for i in range(count):
            yield _camera(card, size, i / max(count - 1, 1), index, zoom=ZOOM / 3)


def _fit_source(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Crop to the output's aspect ratio (cover) and shrink to just above the output size."""
    width, height = size
    target = width / height
    w, h = im.size
    if w / h > target:
        new_w = int(h * target)
        im = im.crop(((w - new_w) // 2, 0, (w - new_w) // 2 + new_w, h))
    else:
        new_h = int(w / target)
        im = im.crop((0, (h - new_h) // 2, w, (h - new_h) // 2 + new_h))
    scale = (width * (1 + ZOOM)) / im.width
    if scale < 1:
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.BILINEAR)
    return im


def _camera(source: Image.Image, size: tuple[int, int], t: float, index: int, zoom: float = ZOOM) -> Image.Image:
    """One frame of a slow push-in, drifting left or right by segment."""
    w, h = source.size
    scale = 1 / (1 + zoom * t)
    bw, bh = w * scale, h * scale
    drift = (w - bw) * (t if index % 2 == 0 else 1 - t)
    left, top = drift, (h - bh) / 2
    return source.resize(size, Image.Resampling.BILINEAR, box=(left, top, left + bw, top + bh))


def _video_stills(path: str, count: int, size: tuple[int, int]):
    """`count` frames spread evenly over the video, each fitted to the output."""
    with av.open(path, options={"protocol_whitelist": "file"}) as container:
        stream = container.streams.video[0]
        duration = float(container.duration / 1_000_000) if container.duration else None
        targets = [duration * (i + 0.5) / count for i in range(count)] if duration else None
        still: Image.Image | None = None
        emitted = 0
        for frame in container.decode(stream):
            if targets is None or frame.time is None:
                due = emitted + 1
            else:
                due = sum(1 for t in targets if t <= frame.time)
            if due > emitted:
                still = _fit_source(frame.to_image(), size)
                while emitted < min(due, count):
                    yield still
                    emitted += 1
            if emitted >= count:
                return
    if still is None:  # no decodable frame at all
        still = Image.new("RGB", (int(size[0] * (1 + ZOOM)), int(size[1] * (1 + ZOOM))))
    while emitted < count:  # the clip ran short: hold its last frame
        yield still
        emitted += 1


def _font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=px)


def _title_card(segment: Segment, size: tuple[int, int]) -> Image.Image:
    width, height = size
    card = Image.new("RGB", (int(width * (1 + ZOOM)), int(height * (1 + ZOOM))), (28, 32, 44))
    draw = ImageDraw.Draw(card)
    big, small = _font(max(height // 12, 16)), _font(max(height // 36, 12))
    draw.text((card.width // 2, card.height // 2 - height // 14), segment.label, font=big, fill=(235, 235, 240),
              anchor="mm")
    note = "remote reference, not fetched by the offline preview"
    draw.text((card.width // 2, card.height // 2 + height // 30), note, font=small, fill=(170, 175, 190), anchor="mm")
    if segment.url:
        draw.text((card.width // 2, card.height // 2 + height // 12), segment.url[:90], font=small,
                  fill=(120, 160, 220), anchor="mm")
    return card


def _header_band(label: str, width: int, height: int) -> Image.Image:
    pad = max(height // 60, 6)
    font = _font(max(height // 34, 12))
    band = Image.new("RGBA", (width, font.size + 2 * pad), (0, 0, 0, 0))
    draw = ImageDraw.Draw(band)
    for text, x, anchor in ((BADGE, pad, "la"), (label, width - pad, "ra")):
        box = draw.textbbox((x, pad), text, font=font, anchor=anchor)
        draw.rounded_rectangle((box[0] - pad // 2, box[1] - pad // 2, box[2] + pad // 2, box[3] + pad // 2),
                               radius=pad // 2, fill=(0, 0, 0, 150))
        draw.text((x, pad), text, font=font, fill=(255, 255, 255, 255), anchor=anchor)
    return band


def _caption_band(prompt: str, width: int, height: int) -> Image.Image:
    font = _font(max(height // 30, 12))
    pad = max(height // 50, 6)
    chars = max(int(width / (font.size * 0.55)), 20)
    lines = textwrap.wrap(" ".join(prompt.split()), width=chars)
    if len(lines) > 3:
        lines = lines[:3]
        lines[2] = lines[2][: max(chars - 1, 1)].rstrip() + "…"
    line_h = int(font.size * 1.3)
    band = Image.new("RGBA", (width, line_h * len(lines) + 2 * pad), (0, 0, 0, 140))
    draw = ImageDraw.Draw(band)
    for i, line in enumerate(lines):
        draw.text((width // 2, pad + i * line_h), line, font=font, fill=(255, 255, 255, 255), anchor="ma")
    return band
