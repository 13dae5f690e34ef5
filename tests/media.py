"""Small real media files, made on the spot (never downloaded)."""

from __future__ import annotations

import functools
import math
import struct
import threading
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

_MADE: dict[str, bytes] = {}  # a file's bytes by how it was asked for, made once in each test process


def _remembered(make: Callable[..., Path]) -> Callable[..., Path]:
    """The same arguments make the same bytes: the first call makes the file, the others copy it (most tests ask
    for the same few references, and an encoder's run costs a tenth of a second each time)."""

    @functools.wraps(make)
    def wrapper(path: Path, *args: Any, **kwargs: Any) -> Path:
        if kwargs.get("first") is not None:  # a picture of the caller's own: made anew
            return make(path, *args, **kwargs)
        key = repr((make.__name__, Path(path).suffix.lower(), args, sorted(kwargs.items())))
        blob = _MADE.get(key)
        if blob is None:
            made = make(path, *args, **kwargs)
            _MADE[key] = made.read_bytes()
            return made
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
        return path

    return wrapper


@_remembered
def image(path: Path, width: int = 640, height: int = 480, color=(40, 120, 200), fmt: str | None = None) -> Path:
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (width, height), color)
    draw = ImageDraw.Draw(im)
    draw.ellipse((width // 4, height // 4, width * 3 // 4, height * 3 // 4), fill=(240, 200, 60))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format=fmt)
    return path


@_remembered
def video(path: Path, width: int = 320, height: int = 240, seconds: float = 2.0, fps: int = 15,
          audio: bool = False, comment: str | None = None, first=None, hue: int = 0) -> Path:
    """An H.264 MP4 whose frames change colour; `first` (a PIL image) is its opening frame, as a host's is when
    given a first_frame; `audio` adds a 440 Hz AAC track as long as the picture."""
    import av
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        if comment:
            out.metadata["comment"] = comment
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        start = first.convert("RGB").resize((width, height)) if first is not None else None
        for i in range(round(seconds * fps)):
            image = Image.new("RGB", (width, height), ((i * 9 + hue) % 255, 80, (160 + hue) % 255))
            if start is not None:  # drifts away from the opening frame
                image = Image.blend(start, image, min(1.0, i / max(round(seconds * fps) - 1, 1)))
            frame = av.VideoFrame.from_image(image)
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    if audio:
        _add_tone(path, seconds)
    return path


def _add_tone(path: Path, seconds: float) -> None:
    """Remux `path` with a tone track of `seconds` (written apart: PyAV wants every stream before the first packet)."""
    import av

    tmp = path.with_suffix(".tone.mp4")
    with av.open(str(path)) as src, av.open(str(tmp), "w") as out:
        v = out.add_stream_from_template(src.streams.video[0])
        if src.metadata.get("comment"):
            out.metadata["comment"] = src.metadata["comment"]
        a = out.add_stream("aac", rate=48000)
        a.layout = "stereo"
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = v
            out.mux(packet)
        total, done = int(seconds * 48000), 0
        while done < total:
            n = min(1024, total - done)
            samples = b"".join(struct.pack("<hh", s, s) for s in
                               (int(6000 * math.sin(2 * math.pi * 440 * (done + k) / 48000)) for k in range(n)))
            frame = av.AudioFrame(format="s16", layout="stereo", samples=n)
            frame.planes[0].update(samples)
            frame.sample_rate, frame.pts = 48000, done
            done += n
            for p in a.encode(frame):
                out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    tmp.replace(path)


@_remembered
def wav(path: Path, seconds: float = 2.0, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 8))) for i in range(int(seconds * rate))))
    return path


def decode(path: Path) -> dict:
    """What a player would see: pixel size, frame rate, duration, frame count, codec."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.decode(v))
        return {"width": v.codec_context.width, "height": v.codec_context.height, "fps": float(v.average_rate),
                "duration": round(c.duration / 1_000_000, 2), "frames": frames, "codec": v.codec_context.name}


def continuation(clip: bytes, seconds: float, fps: int = 10) -> bytes:
    """What a host's Wan 2.7 i2v hands back for a clip to continue: the clip itself, then new frames that open on its
    last frame and drift to a colour of their own, `seconds` in all (the model's duration counts the clip)."""
    import io
    import tempfile

    import av
    from PIL import Image

    with av.open(io.BytesIO(clip)) as c:
        given = [frame.to_image() for frame in c.decode(c.streams.video[0])]
        rate = float(c.streams.video[0].average_rate or fps)
    kept = [given[min(len(given) - 1, int(i * rate / fps))] for i in range(round(len(given) * fps / rate))]
    width, height = kept[-1].size
    new = round(seconds * fps) - len(kept)
    colour = Image.new("RGB", (width, height), (30, 200, 90))
    frames = kept + [Image.blend(kept[-1], colour, i / max(new - 1, 1) * 0.5) for i in range(new)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "continued.mp4"
        with av.open(str(path), "w") as out:
            stream = out.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": "12"}
            for i, image in enumerate(frames):
                frame = av.VideoFrame.from_image(image)
                frame.pts = i
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        return path.read_bytes()


class Results:
    """Result videos by length, made once each: what an emulated host hands back for a job of that duration.
    With a tag (a host job id), the video carries it as its comment, so a harness can tell whose video it is."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._made: dict[tuple[float, str | None], bytes] = {}
        # An emulator serves downloads in threads: two first asking for one length at once wrote one file together,
        # and one was served it half-written (an unreadable video, downloaded again).
        self._making = threading.Lock()

    def __call__(self, seconds: float, tag: str | None = None) -> bytes:
        key = (float(seconds), tag)
        with self._making:
            if key not in self._made:
                size = (480, 270) if tag is None else (160, 96)
                self._made[key] = video(self.folder / f"result-{seconds:g}s-{tag or 'plain'}.mp4", *size,
                                        seconds=float(seconds), fps=10, comment=tag).read_bytes()
            return self._made[key]


def comment(path: Path) -> str | None:
    """The comment tag of a video file (see Results)."""
    import av

    with av.open(str(path)) as c:
        return c.metadata.get("comment")
