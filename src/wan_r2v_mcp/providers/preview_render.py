"""Render the offline preview: an H.264 MP4 composed from the references, with a slow pan, and their sound.

It is a storyboard of what was given (the first frame first, then each image, then frames of each
video), captioned with the prompt and marked as a preview. No model runs here. Synchronous and
CPU-bound: the preview provider runs it in a worker thread.

How a frame is made, cheaply: each reference is fitted whole (never cropped) over a blurred fill of
itself on a canvas a little wider than the output, converted to YUV once per segment; per frame the
camera's window is copied out of it row by row, so nothing is scaled or converted per frame; the two
bands (badges at the top, the caption at the bottom) are YUV rows made once and copied in. Frames are
composed in a thread of their own while x264 encodes with frame threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageDraw, ImageFilter

from .preview_text import caption_band, even, font_for, header_band

PAN = 0.08  # how far the camera travels across one segment, as a share of the output's width
ENCODER = {"preset": "veryfast", "crf": "23"}


class RenderStopped(Exception):
    pass


@dataclass(frozen=True)
class Segment:
    label: str
    kind: str  # image | video | remote | title (text to video: no picture is drawn from text offline)
    path: str | None = None
    url: str | None = None
    opens: bool = False  # the first frame: the clip opens on it exactly, bare
    closes: bool = False  # the last frame: the clip ends on it exactly, bare
    voice: str | None = None  # a voice sample heard when this segment starts


# ---------------------------------------------------------------- the picture


def compose(segments: list[Segment], prompt: str, size: tuple[int, int], fps: int, seconds: int,
            stop: threading.Event | None = None) -> Iterator[Any]:
    """The preview's frames, as yuv420p VideoFrames ready for the encoder."""
    width, height = size
    counts = split(fps * seconds, len(segments))
    caption = _yuv(caption_band(prompt, width, height))
    done = 0
    for index, (segment, count) in enumerate(zip(segments, counts)):
        header = _yuv(header_band(segment.label, width, height))
        inset = (header.height, caption.height)  # the reference goes between the bands, whole
        for i, frame in enumerate(_frames(segment, count, size, index, inset)):
            if stop is not None and stop.is_set():
                raise RenderStopped()
            bare = (done == 0 and i == 0 and segment.opens) or (segment.closes and i == count - 1)
            if not bare:
                _paste_rows(frame, header, 0)
                _paste_rows(frame, caption, height - caption.height)
            frame.pts = done
            done += 1
            yield frame


def split(total: int, parts: int) -> list[int]:
    parts = max(parts, 1)
    base = total // parts
    return [base] * (parts - 1) + [total - base * (parts - 1)]


def _frames(segment: Segment, count: int, size: tuple[int, int], index: int,
            inset: tuple[int, int] = (0, 0)) -> Iterator[Any]:
    if count <= 0:
        return
    if segment.kind == "image" and segment.path:
        exact = segment.opens or segment.closes  # fills one window exactly: the first (opens) or the last (closes)
        with Image.open(segment.path) as im:
            canvas = _yuv(_canvas(im.convert("RGB"), size, opens=exact, inset=inset))
        for i in range(count):
            yield _camera(canvas, size, i / max(count - 1, 1),
                          backwards=segment.closes or (index % 2 == 1 and not segment.opens))
    elif segment.kind == "video" and segment.path:
        for i, still in enumerate(_video_stills(segment.path, count, size, inset)):
            yield _camera(still, size, i / max(count - 1, 1), backwards=index % 2 == 1)
    else:
        card = _yuv(_title_card(segment, size))
        for i in range(count):
            yield _camera(card, size, i / max(count - 1, 1))


def _canvas(im: Image.Image, size: tuple[int, int], *, opens: bool = False,
            inset: tuple[int, int] = (0, 0)) -> Image.Image:
    """The reference whole, over a blurred fill of itself, on a canvas (1 + PAN) times as wide as the output. The
    camera's window (the output's size) pans across it, and the reference sits where every window sees it: the
    middle, (1 - PAN) of the width, between the bands (`inset`: their heights). A first frame fills the first
    window exactly instead, so the clip opens on it."""
    width, height = size
    canvas = _fill(im, size)
    top, bottom = (0, 0) if opens else inset
    box = (width, height) if opens else (round(width * (1 - PAN)), max(2, height - top - bottom))
    scale = min(box[0] / im.width, box[1] / im.height)
    shown = im if scale == 1 else im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                                            Image.Resampling.BILINEAR, reducing_gap=2.0)
    left = (width - shown.width) // 2 if opens else (canvas.width - shown.width) // 2
    canvas.paste(shown, (left, top + (box[1] - shown.height) // 2))
    return canvas


def _fill(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The image covering the canvas, blurred by scaling a tiny copy up, and darkened."""
    cw, ch = even(round(size[0] * (1 + PAN))), size[1]
    small = (max(cw // 16, 8), max(ch // 16, 8))
    cover = max(small[0] / im.width, small[1] / im.height)
    tiny = im.resize((max(1, round(im.width * cover)), max(1, round(im.height * cover))), Image.Resampling.BILINEAR,
                     reducing_gap=2.0)
    left, top = (tiny.width - small[0]) // 2, (tiny.height - small[1]) // 2
    tiny = tiny.crop((left, top, left + small[0], top + small[1])).filter(ImageFilter.GaussianBlur(1.5))
    return tiny.point(lambda v: v * 7 // 10).resize((cw, ch), Image.Resampling.BILINEAR)


def _camera(canvas: Any, size: tuple[int, int], t: float, *, backwards: bool = False) -> Any:
    """One frame of a slow pan across a canvas (a yuv420p VideoFrame): the output-sized window at an even offset
    (so the half-size colour planes line up), cut from each plane by Pillow and copied in whole where the rows are
    packed alike. Nothing is scaled or converted per frame."""
    width, height = size
    travel = canvas.width - width
    left = round(travel * ((1 - t) if backwards else t)) // 2 * 2
    frame = av.VideoFrame(width, height, "yuv420p")
    for k, (offset, rows, row) in enumerate(((left, height, width), (left // 2, height // 2, width // 2),
                                             (left // 2, height // 2, width // 2))):
        src = canvas.planes[k]
        plane = Image.frombuffer("L", (src.line_size, rows), src, "raw", "L", src.line_size, 1)
        _write_plane(frame.planes[k], plane.crop((offset, 0, offset + row, rows)).tobytes(), row)
    return frame


def _video_stills(path: str, count: int, size: tuple[int, int],
                  inset: tuple[int, int] = (0, 0)) -> Iterator[Any]:
    """`count` canvases (yuv420p frames) from frames spread evenly over the video, each frame held as often as it is
    due. A clip's frame is scaled by swscale straight to yuv420p and its planes copied into the blurred fill (made
    once, from its first frame), at even offsets so the half-size colour planes line up: no RGB canvas per frame."""
    with av.open(path, options={"protocol_whitelist": "file"}) as container:
        stream = container.streams.video[0]
        duration = float(container.duration / 1_000_000) if container.duration else None
        targets = [duration * (i + 0.5) / count for i in range(count)] if duration else None
        still: Any = None
        fill: Any = None
        emitted = 0
        for frame in container.decode(stream):
            due = emitted + 1 if targets is None or frame.time is None else sum(1 for t in targets if t <= frame.time)
            if due > emitted:
                if fill is None:
                    fill = _yuv(_fill(frame.to_image(), size))
                box = (round(size[0] * (1 - PAN)), max(2, size[1] - sum(inset)))  # swscale fits it to its box
                scale = min(box[0] / frame.width, box[1] / frame.height)
                fitted = frame.reformat(_even_down(round(frame.width * scale)), _even_down(round(frame.height * scale)),
                                        "yuv420p", interpolation="BILINEAR")
                still = _placed(fill, fitted, _even_down((fill.width - fitted.width) // 2),
                                _even_down(inset[0] + (box[1] - fitted.height) // 2))
                while emitted < min(due, count):
                    yield still
                    emitted += 1
            if emitted >= count:
                return
    if still is None:  # no decodable frame at all
        still = _yuv(Image.new("RGB", (even(round(size[0] * (1 + PAN))), size[1])))
    while emitted < count:  # the clip ran short: hold its last frame
        yield still
        emitted += 1


def _placed(base: Any, picture: Any, left: int, top: int) -> Any:
    """A copy of `base` (a yuv420p frame) with `picture` (a smaller one) over it at (left, top), both even."""
    out = av.VideoFrame(base.width, base.height, "yuv420p")
    for k in range(3):
        dst, src, pic = out.planes[k], base.planes[k], picture.planes[k]
        d, b, p = memoryview(dst), memoryview(src), memoryview(pic)
        if dst.line_size == src.line_size:
            d[:] = b[:len(d)]
        else:
            for r in range(dst.height):
                d[r * dst.line_size:r * dst.line_size + dst.width] = b[r * src.line_size:r * src.line_size + dst.width]
        x, y = (left, top) if k == 0 else (left // 2, top // 2)
        for r in range(pic.height):
            at = (y + r) * dst.line_size + x
            d[at:at + pic.width] = p[r * pic.line_size:r * pic.line_size + pic.width]
    return out


def _write_plane(plane: Any, data: bytes, row: int) -> None:
    """Packed rows of `row` bytes into a frame's plane."""
    d = memoryview(plane)
    if plane.line_size == row:
        d[:len(data)] = data
    else:
        for r in range(len(data) // row):
            d[r * plane.line_size:r * plane.line_size + row] = data[r * row:(r + 1) * row]


def _even_down(n: int) -> int:
    return max(2, n - n % 2)


# ---------------------------------------------------------------- bands, text and fonts


def _yuv(band: Image.Image) -> Any:
    return av.VideoFrame.from_image(band).reformat(format="yuv420p")


def _paste_rows(frame: Any, band: Any, top: int) -> None:
    """Copy a band (a yuv420p frame as wide as `frame`) over rows top.. of `frame`, plane by plane."""
    for k in range(3):
        dst, src = frame.planes[k], band.planes[k]
        d, s = memoryview(dst), memoryview(src)
        row0 = top if k == 0 else top // 2
        for row in range(src.height):
            at = (row0 + row) * dst.line_size
            d[at:at + src.width] = s[row * src.line_size:row * src.line_size + src.width]


def _title_card(segment: Segment, size: tuple[int, int]) -> Image.Image:
    width, height = size
    card = Image.new("RGB", (even(round(width * (1 + PAN))), height), (28, 32, 44))
    draw = ImageDraw.Draw(card)
    big, small = font_for(max(height // 12, 16)), font_for(max(height // 36, 12))
    draw.text((card.width // 2, card.height // 2 - height // 14), segment.label, font=big, fill=(235, 235, 240),
              anchor="mm")
    note = "nothing is drawn from text offline: the prompt is the caption" if segment.kind == "title" else \
        "remote reference, not fetched by the offline preview"
    draw.text((card.width // 2, card.height // 2 + height // 30), note, font=small, fill=(170, 175, 190), anchor="mm")
    if segment.url:
        draw.text((card.width // 2, card.height // 2 + height // 12), segment.url[:90], font=small,
                  fill=(120, 160, 220), anchor="mm")
    return card


# ---------------------------------------------------------------- the file


def encoder(container: Any, size: tuple[int, int], fps: int) -> Any:
    """The video stream every preview is written with (the bench's floor uses it too)."""
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
    stream.options = dict(ENCODER)
    stream.codec_context.thread_type = "FRAME"  # x264's frame threads: every core encodes
    stream.codec_context.thread_count = 0
    return stream


def soundtrack(segments: list[Segment], counts: list[int], fps: int) -> bytes | None:
    """Each segment's sound (its voice sample, else its clip's own sound), cut to the segment; None when silent."""
    from .. import audio

    if not any(s.voice or (s.kind == "video" and s.path and _has_audio(s.path)) for s in segments):
        return None
    parts = []
    for segment, count in zip(segments, counts):
        seconds = count / fps
        if segment.voice:
            parts.append(audio.pcm(Path(segment.voice), seconds))
        elif segment.kind == "video" and segment.path:
            parts.append(audio.pcm(Path(segment.path), seconds))
        else:
            parts.append(audio.silence(seconds))
    return b"".join(parts)


def _has_audio(path: str) -> bool:
    try:
        with av.open(path, options={"protocol_whitelist": "file"}) as container:
            return bool(container.streams.audio)
    except Exception:
        return False


def _ahead(frames: Iterator[Any], depth: int = 8) -> Iterator[Any]:
    """Compose the next frames in a thread of their own while the encoder works on these: swscale and x264 run
    outside the GIL, so the two overlap on separate cores."""
    import queue

    box: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    failure: list[BaseException] = []
    halt = threading.Event()

    def produce() -> None:
        try:
            for frame in frames:
                while not halt.is_set():
                    try:
                        box.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if halt.is_set():
                    return
        except BaseException as exc:  # RenderStopped, or a bad reference: raised where the frames are used
            failure.append(exc)
        finally:
            box.put(done)

    worker = threading.Thread(target=produce, name="preview-compose", daemon=True)
    worker.start()
    try:
        while (item := box.get()) is not done:
            yield item
        if failure:
            raise failure[0]
    finally:
        halt.set()
        while worker.is_alive():  # unblock a producer waiting for room, then let it end
            try:
                box.get_nowait()
            except queue.Empty:
                worker.join(0.05)


def render(segments: list[Segment], prompt: str, size: tuple[int, int], fps: int, seconds: int, out: Path,
           on_progress: Callable[[int, int], None] | None = None, stop: threading.Event | None = None) -> None:
    from .. import audio

    total = fps * seconds
    pcm = soundtrack(segments, split(total, len(segments)), fps)
    container = av.open(str(out), mode="w", format="mp4", options={"movflags": "+faststart"})
    try:
        # The sound is encoded in a thread beside the picture (the codec lets go of the GIL) and muxed after it; the
        # pool is shut down, its work done, before the container that owns the sound's encoder is closed.
        with ThreadPoolExecutor(1, thread_name_prefix="preview-sound") as beside:
            stream = encoder(container, size, fps)
            heard = None
            if pcm is not None:
                sound = audio.AacTrack(container)
                container.start_encoding()  # every codec open before the sound's thread uses its own
                heard = beside.submit(sound.packets, audio.fit(pcm, seconds), last=True)
            for done, frame in enumerate(_ahead(compose(segments, prompt, size, fps, seconds, stop)), start=1):
                container.mux(stream.encode(frame))
                if on_progress is not None:
                    on_progress(done, total)
            container.mux(stream.encode(None))
            if heard is not None:
                container.mux(heard.result())
    finally:
        container.close()
