"""Preview render time for a 5 s clip at 720p and 1080p, beside the honest floor, in the same run.

The floor is the same frames through the same encoder at the same settings: every frame the preview
makes (composed beforehand, held in memory, not timed) encoded by `preview_render.encoder`. So the
ratio is what composing costs on top of the encoding no preview can skip. The references: a 1600x1200
image, a 1200x1600 image (another shape: fitted whole) and a 3 s clip with sound, with a voice sample
on the first image, so the sound track is made too.
Run: python bench/render.py [RUNS]
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

from wan_r2v_mcp.providers.preview_render import Segment, compose, encoder, render  # noqa: E402
from wan_r2v_mcp.schema import PIXEL_SIZES  # noqa: E402

PROMPT = "Image 1 waves at Video 1 in the cafe of Image 2"


def floor(frames: list, size: tuple[int, int], out: Path) -> None:
    with av.open(str(out), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = encoder(container, size, 30)
        for frame in frames:
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        segments = [Segment("Image 1", "image", str(media.image(d / "a.png", 1600, 1200)),
                            voice=str(media.wav(d / "a.wav", seconds=2.0))),
                    Segment("Image 2", "image", str(media.image(d / "b.jpg", 1200, 1600))),
                    Segment("Video 1", "video", str(media.video(d / "v.mp4", 640, 360, seconds=3, audio=True)))]
        for res in ("720p", "1080p"):
            size = PIXEL_SIZES[(res, "16:9")]
            frames = list(compose(segments, PROMPT, size, 30, 5))  # the floor's input: made once, not timed
            ours, base = [], []
            for _ in range(runs):
                t = time.perf_counter()
                floor(frames, size, d / "floor.mp4")
                base.append(time.perf_counter() - t)
                t = time.perf_counter()
                render(segments, PROMPT, size, 30, 5, d / "ours.mp4")
                ours.append(time.perf_counter() - t)
            o, a = statistics.median(ours), statistics.median(base)
            print(f"{res} 5 s ({size[0]}x{size[1]}, {len(frames)} frames, with sound): preview {o:.2f} s, "
                  f"floor (same frames, same encoder) {a:.2f} s, ratio {o / a:.2f}x (median of {runs})")


if __name__ == "__main__":
    main()
