"""Joining a 3 x 10 s 1080p sequence, beside the same join done by a bare PyAV stream copy, in the same run.

The parts are real H.264 + AAC MP4s of 1920x1080 at 30 fps made here once (300 frames of moving grain each, so
their size is a real clip's, and a tone track).
The anchor copies the same packets of the same files into one MP4 with PyAV and nothing else; ours
(`jobs.join.join`) does that from each part opened once (measured from its index), measures the result (frame
count and length against the sum of the parts) and makes it durable (fsync, rename, fsync of the folder); a second
anchor adds only that last step to the bare copy. Both outputs hold the same 900 frames.
Run: python bench/join.py [RUNS]
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

from wan_r2v_mcp.jobs.join import join  # noqa: E402
from wan_r2v_mcp.store.files import commit  # noqa: E402


def stream_copy(parts: list[Path], dest: Path) -> None:
    """The floor: packets copied with their timestamps shifted by the length of the parts before (the header's
    stream length, no measuring), kept increasing as an MP4 muxer demands, nothing checked afterwards. The index
    goes at the front (faststart) as ours does, so a player can start before the whole file has arrived."""
    with av.open(str(dest), "w", format="mp4", options={"movflags": "+faststart"}) as out, \
            av.open(str(parts[0])) as first:
        v_out = out.add_stream_from_template(first.streams.video[0])
        a_out = out.add_stream_from_template(first.streams.audio[0])
        offset = 0.0
        last: dict[str, int] = {}
        for part in parts:
            with av.open(str(part)) as c:
                v, a = c.streams.video[0], c.streams.audio[0]
                length = float(v.duration * v.time_base)
                for packet in c.demux(v, a):
                    if packet.dts is None:
                        continue
                    shift = round(offset / packet.time_base)
                    packet.pts += shift
                    packet.dts += shift
                    kind = packet.stream.type
                    if kind in last and packet.dts <= last[kind]:
                        packet.dts = last[kind] + 1
                        packet.pts = max(packet.pts, packet.dts)
                    last[kind] = packet.dts
                    packet.stream = v_out if kind == "video" else a_out
                    out.mux(packet)
            offset += length


def part(path: Path, index: int) -> Path:
    """10 s of 1080p30 H.264 with moving grain (so its bitrate is a real clip's, not a flat colour's) and AAC."""
    from PIL import Image

    grain = [Image.effect_noise((1920, 1080), 40).convert("RGB") for _ in range(12)]
    base = Image.new("RGB", (1920, 1080), (60 + 50 * index, 110, 160))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "28"}
        for i in range(300):
            frame = av.VideoFrame.from_image(Image.blend(base, grain[i % len(grain)], 0.25))
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    media._add_tone(path, 10.0)
    return path


def frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for p in c.demux(c.streams.video[0]) if p.dts is not None)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        t = time.perf_counter()
        parts = [part(d / f"shot{i}.mp4", i) for i in range(3)]
        print(f"made 3 x 10 s 1080p parts in {time.perf_counter() - t:.1f} s "
              f"({sum(p.stat().st_size for p in parts) / 1e6:.1f} MB)")
        ours, floor, durable = [], [], []
        for _ in range(runs):
            t = time.perf_counter()
            stream_copy(parts, d / "anchor.mp4")
            floor.append(time.perf_counter() - t)
            commit(d / "anchor.mp4", d / "anchor-kept.mp4")  # what ours adds to be kept across a crash
            durable.append(time.perf_counter() - t)
            t = time.perf_counter()
            facts = join(parts, d / "ours.mp4")
            ours.append(time.perf_counter() - t)
        assert frames(d / "ours.mp4") == frames(d / "anchor-kept.mp4") == 900, "the two joins differ"
        o, a, k = statistics.median(ours), statistics.median(floor), statistics.median(durable)
        print(f"join 3 x 10 s 1080p ({facts['joined_by']}, {facts['frames']} frames, {facts['seconds']} s): "
              f"ours {o * 1000:.0f} ms, PyAV stream copy {a * 1000:.0f} ms, ratio {o / a:.2f}x (median of {runs}); "
              f"the copy then fsynced and renamed as ours is {k * 1000:.0f} ms, ratio {o / k:.2f}x")


if __name__ == "__main__":
    main()
