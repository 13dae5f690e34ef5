"""Joining finished videos into one MP4 (hard cuts, audio kept), and a video's last frame for the next shot.

When every part has the same video codec, size, frame rate and codec setup (and the same audio layout),
the packets are copied: nothing is re-encoded, so nothing is lost and a join of 3 x 10 s at 1080p takes
well under a second. Otherwise the parts are decoded and encoded once more at the first part's size and
rate. Either way the joined file is measured afterwards: its frame count and length must be the sum of
the parts (a join that drops a clip, a known failure of concat done by shelling out, is an error, never
a file).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..errors import JoinFailed
from ..memory import media_work
from ..schema import Limits
from ..store.files import atomic_write, commit, temp_beside


@dataclass(frozen=True)
class Part:
    path: Path
    codec: str
    width: int
    height: int
    rate: Fraction
    setup: bytes  # the codec's extradata (H.264: SPS/PPS): copied streams must share it
    frames: int
    seconds: float  # video span: first frame shown to the end of the last
    origin: float  # the first frame's presentation time
    audio: tuple[str, int, str, bytes] | None  # codec, sample rate, layout, extradata
    skip: float = 0.0  # seconds left out at its start (a continuation's copy of the clip it continued)
    read: bool = False  # measured by reading its packets (no index): its container is no longer at its start

    @property
    def copy_key(self) -> tuple[Any, ...]:
        return (self.codec, self.width, self.height, self.rate, self.setup, self.audio)

    @property
    def kept(self) -> float:
        """The seconds of it the join holds."""
        return self.seconds - self.skip


def inspect(path: Path) -> Part:
    """A part's shape and exact length: from the container's index (an MP4's sample tables: the count and durations
    of the frames it holds) when it has one, else from its packets. Nothing is decoded."""
    with _opened(path) as c:
        return _measure(path, c)


@contextmanager
def _opened(path: Path) -> Iterator[Any]:
    import av

    try:
        c = av.open(str(path), options={"protocol_whitelist": "file"})
    except Exception as exc:  # a file PyAV cannot read
        raise JoinFailed(f"{path.name} is not a readable video ({type(exc).__name__})",
                         fix="make that shot again") from None
    with c:
        yield c


def _measure(path: Path, c: Any) -> Part:
    """`inspect` of an open container; it is left at its start only when its index answered (`Part.read` False)."""
    try:
        if not c.streams.video:
            raise JoinFailed(f"{path.name} has no video stream", fix="join only finished generations' videos")
        v = c.streams.video[0]
        a = c.streams.audio[0] if c.streams.audio else None
        first: float | None = None
        end = 0.0
        frames = 0
        if v.frames and v.duration and v.time_base is not None:  # indexed: no need to read the packets
            frames = v.frames
            first = float((v.start_time or 0) * v.time_base)
            end = first + float(v.duration * v.time_base)
        read = not frames
        for packet in c.demux(v) if read else ():
            if packet.pts is None:
                continue
            frames += 1
            start = float(packet.pts * packet.time_base)
            first = start if first is None else min(first, start)
            end = max(end, start + float((packet.duration or 0) * packet.time_base))
        rate = Fraction(v.average_rate) if v.average_rate else Fraction(30)
        if first is None:
            raise JoinFailed(f"{path.name} has no video frames", fix="make that shot again")
        audio = None
        if a is not None:
            ctx = a.codec_context
            audio = (ctx.name, ctx.sample_rate, ctx.layout.name, bytes(ctx.extradata or b""))
        return Part(path, v.codec_context.name, v.codec_context.width, v.codec_context.height, rate,
                    bytes(v.codec_context.extradata or b""), frames, end - first, first, audio, read=read)
    except JoinFailed:
        raise
    except Exception as exc:  # a file PyAV cannot read
        raise JoinFailed(f"{path.name} is not a readable video ({type(exc).__name__})",
                         fix="make that shot again") from None


def join(paths: list[Path], dest: Path, keep_last: list[float | None] | None = None) -> dict[str, Any]:
    """Write the parts, in order, into `dest`; returns what was measured: width, height, seconds, frames, how it was
    joined (copy or encode), and where each part starts. `keep_last[i]`, when given, keeps only the last that many
    seconds of part i (a shot that continued a clip holds that clip first); cutting inside a part means encoding."""
    with media_work(), ExitStack() as stack:  # each part opened once: measured, then its packets copied
        opened = [stack.enter_context(_opened(p)) for p in paths]
        return _join([_measure(p, c) for p, c in zip(paths, opened)], opened, dest, keep_last)


def _join(parts: list[Part], opened: list[Any], dest: Path, keep_last: list[float | None] | None) -> dict[str, Any]:
    for i, seconds in enumerate(keep_last or []):
        if seconds is not None and parts[i].seconds - seconds > 0.5 / float(parts[i].rate):
            parts[i] = replace(parts[i], skip=round(float(parts[i].seconds - seconds) * float(parts[i].rate))
                               / float(parts[i].rate))  # on a frame boundary
    copy = len({p.copy_key for p in parts}) == 1 and not any(p.skip for p in parts)
    part_file = temp_beside(dest)
    try:
        if copy:
            _copy(parts, opened, part_file)
        else:
            _encode(parts, part_file)
        joined = inspect(part_file)
        expected = sum(p.kept for p in parts)
        frame = 1 / float(parts[0].rate)
        want_frames = sum(p.frames for p in parts) if copy else sum(round(p.kept * parts[0].rate) for p in parts)
        if abs(joined.seconds - expected) > frame + 1e-6 or joined.frames != want_frames:
            raise JoinFailed(f"the joined video lasts {joined.seconds:.3f} s in {joined.frames} frames, but its parts "
                             f"add up to {expected:.3f} s in {want_frames}", limit="within one frame of the sum",
                             fix="nothing was saved; report this with the parts' files")
        commit(part_file, dest)
    finally:
        part_file.unlink(missing_ok=True)
    starts, at = [], 0.0
    for p in parts:
        starts.append(round(at, 3))
        at += p.kept
    return {"width": joined.width, "height": joined.height, "seconds": round(joined.seconds, 3),
            "frames": joined.frames, "joined_by": "copy" if copy else "encode", "starts": starts}


def _copy(parts: list[Part], opened: list[Any], dest: Path) -> None:
    """Packets copied from the open parts, each part's timestamps moved to where the previous parts end; audio that
    runs past its part's last frame is dropped so sound and picture stay together at every cut."""
    import av

    with av.open(str(dest), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        template = opened[0]
        v_out = out.add_stream_from_template(template.streams.video[0])
        a_out = out.add_stream_from_template(template.streams.audio[0]) if parts[0].audio else None
        last_dts: dict[str, int] = {}
        offset = 0.0
        for part, container in zip(parts, opened):
            with _opened(part.path) if part.read else nullcontext(container) as c:
                streams = [c.streams.video[0]] + ([c.streams.audio[0]] if a_out is not None else [])
                for packet in c.demux(*streams):
                    if packet.dts is None or packet.pts is None:
                        continue
                    tb = packet.time_base
                    is_video = packet.stream.type == "video"
                    if not is_video and float(packet.pts * tb) - part.origin >= part.seconds:
                        continue
                    shift = round((offset - part.origin) / tb)
                    packet.pts += shift
                    packet.dts += shift
                    kind = "v" if is_video else "a"
                    floor = last_dts.get(kind)
                    if floor is not None and packet.dts <= floor:  # a cut must never step back in time
                        step = floor + 1 - packet.dts
                        packet.dts += step
                        packet.pts = max(packet.pts, packet.dts)
                    last_dts[kind] = packet.dts
                    packet.stream = v_out if is_video else a_out
                    out.mux(packet)
            offset += part.seconds


def _encode(parts: list[Part], dest: Path) -> None:
    """Decode every part and encode once at the first part's size and rate; parts without sound get silence."""
    import av

    from .. import audio

    first = parts[0]
    rate = first.rate
    with av.open(str(dest), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        v_out = out.add_stream("libx264", rate=rate)
        v_out.width, v_out.height, v_out.pix_fmt = first.width, first.height, "yuv420p"
        v_out.options = {"preset": "veryfast", "crf": "18"}
        sound = audio.AacTrack(out) if any(p.audio for p in parts) else None
        frame_index = 0
        for part in parts:
            slots = round(part.kept * rate)
            with av.open(str(part.path), options={"protocol_whitelist": "file"}) as c:
                slot, held = 0, None
                for frame in c.decode(c.streams.video[0]):
                    t = (frame.time or 0.0) - part.origin - part.skip
                    if t < -1e-6:
                        continue  # before the part's kept seconds
                    while slot < slots and slot / rate < t - 1e-6 and held is not None:
                        frame_index = _put_video(out, v_out, held, first, frame_index)
                        slot += 1
                    held = frame
                while slot < slots and held is not None:
                    frame_index = _put_video(out, v_out, held, first, frame_index)
                    slot += 1
            if sound is not None:  # each part's sound, cut or padded to its picture's length
                sound.write(audio.pcm(part.path, part.kept, start=part.skip) if part.audio
                            else audio.silence(part.kept))
        out.mux(v_out.encode(None))
        if sound is not None:
            sound.close()


def _put_video(out: Any, stream: Any, frame: Any, first: Part, index: int) -> int:
    shaped = frame.reformat(width=first.width, height=first.height, format="yuv420p")
    shaped.pts = index
    shaped.time_base = 1 / first.rate  # a decoded frame carries its source's time base
    out.mux(stream.encode(shaped))
    return index + 1


def last_frame(video: Path, dest: Path) -> Path:
    """The video's last frame as a PNG (lossless, so the next shot opens on exactly what this one ended on)."""
    import av

    with av.open(str(video), options={"protocol_whitelist": "file"}) as c:
        v = c.streams.video[0]
        if c.duration:
            c.seek(max(0, c.duration - 2_000_000), backward=True)  # near the end: decode only the last GOP or so
        image = None
        for frame in c.decode(v):
            image = frame
        if image is None:
            raise JoinFailed(f"{video.name} has no frame to carry over", fix="make that shot again")
        picture = image.to_image()
        if min(picture.size) < Limits.IMAGE_SIDE[0]:  # a first frame must be 240 px a side: scale up a tiny clip's
            scale = Limits.IMAGE_SIDE[0] / min(picture.size)
            picture = picture.resize((round(picture.width * scale), round(picture.height * scale)))
    return atomic_write(dest, lambda part: picture.save(part, format="PNG"))


def tail(video: Path, dest: Path, seconds: float) -> Path:
    """The video's last `seconds` as an MP4 of its own (picture only, at its size and rate): the clip the next shot
    continues. Encoded, since a cut inside a group of pictures cannot be copied."""
    import av

    part = inspect(video)
    start = max(0.0, part.seconds - seconds)

    def write(target: Path) -> None:
        with av.open(str(video), options={"protocol_whitelist": "file"}) as c, \
                av.open(str(target), "w", format="mp4", options={"movflags": "+faststart"}) as out:
            stream = out.add_stream("libx264", rate=part.rate)
            stream.width, stream.height, stream.pix_fmt = part.width, part.height, "yuv420p"
            stream.options = {"preset": "veryfast", "crf": "16"}
            c.seek(max(0, int((part.origin + start - 1.0) * 1_000_000)), backward=True)
            index = 0
            for frame in c.decode(c.streams.video[0]):
                if (frame.time or 0.0) - part.origin < start - 1e-6:
                    continue
                index = _put_video(out, stream, frame, part, index)
            out.mux(stream.encode(None))

    return atomic_write(dest, write)
