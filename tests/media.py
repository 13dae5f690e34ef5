"""Small real media files, made on the spot (never downloaded)."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path


def image(path: Path, width: int = 640, height: int = 480, color=(40, 120, 200), fmt: str | None = None) -> Path:
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (width, height), color)
    draw = ImageDraw.Draw(im)
    draw.ellipse((width // 4, height // 4, width * 3 // 4, height * 3 // 4), fill=(240, 200, 60))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format=fmt)
    return path


def video(path: Path, width: int = 320, height: int = 240, seconds: float = 2.0, fps: int = 15,
          audio: bool = False, comment: str | None = None) -> Path:
    import av
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        if comment:
            out.metadata["comment"] = comment
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_image(Image.new("RGB", (width, height), ((i * 9) % 255, 80, 160)))
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


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


class Results:
    """Result videos by length, made once each: what an emulated host hands back for a job of that duration.
    With a tag (a host job id), the video carries it as its comment, so a harness can tell whose video it is."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._made: dict[tuple[float, str | None], bytes] = {}

    def __call__(self, seconds: float, tag: str | None = None) -> bytes:
        key = (float(seconds), tag)
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
