"""Preview render time for a 5 s clip at 720p and at 1080p, beside an anchor in the same run.

The anchor encodes the same number of frames of one solid image with the same encoder settings, so
the ratio shows what composing (camera motion, captions, reference decoding) costs on top of encoding.
Run: python bench/render.py [N]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import av  # noqa: E402
import media  # noqa: E402
from PIL import Image  # noqa: E402

from wan_r2v_mcp.providers.preview_render import Segment, render  # noqa: E402
from wan_r2v_mcp.schema import PIXEL_SIZES  # noqa: E402


def anchor(size: tuple[int, int], frames: int, out: Path) -> None:
    with av.open(str(out), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        s.options = {"preset": "veryfast", "crf": "23"}
        img = Image.new("RGB", size, (40, 90, 160))
        for i in range(frames):
            f = av.VideoFrame.from_image(img)
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        segments = [Segment("Image 1", "image", str(media.image(d / "a.png", 1600, 1200))),
                    Segment("Image 2", "image", str(media.image(d / "b.jpg", 1200, 1600))),
                    Segment("Video 1", "video", str(media.video(d / "v.mp4", 640, 360, seconds=3)))]
        for res in ("720p", "1080p"):
            size = PIXEL_SIZES[(res, "16:9")]
            ours, base = [], []
            for _ in range(runs):
                t = time.perf_counter()
                anchor(size, 150, d / "anchor.mp4")
                base.append(time.perf_counter() - t)
                t = time.perf_counter()
                render(segments, "Image 1 waves at Video 1 in the cafe of Image 2", size, 30, 5, d / "ours.mp4")
                ours.append(time.perf_counter() - t)
            o, a = statistics.median(ours), statistics.median(base)
            print(f"{res} 5 s ({size[0]}x{size[1]}, 150 frames): preview {o:.2f} s, anchor encode-only {a:.2f} s, "
                  f"ratio {o / a:.2f}x (median of {runs})")


if __name__ == "__main__":
    main()
