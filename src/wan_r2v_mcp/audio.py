"""Sound for the videos this server writes itself (a preview's track, a join that is encoded again).

Everything is handled as 16-bit stereo PCM at 48 kHz, cut or padded to exact lengths, so a track is as
long as its picture at every cut, then encoded once to AAC.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

RATE = 48_000
BYTES_PER_SECOND = RATE * 4  # two channels of 16 bits


def silence(seconds: float) -> bytes:
    return bytes(round(seconds * RATE) * 4)


def fit(pcm: bytes | bytearray, seconds: float) -> bytes:
    """Exactly `seconds` of sound: cut, or padded with silence."""
    want = round(seconds * RATE) * 4
    return bytes(pcm[:want]) + bytes(max(0, want - len(pcm)))


def pcm(path: Path, seconds: float, *, start: float = 0.0) -> bytes:
    """`seconds` of a file's first audio stream from `start` (silence where it has none, or ends early)."""
    import av

    out = bytearray()
    want = round(seconds * RATE) * 4
    skip = round(start * RATE) * 4
    try:
        with av.open(str(path), options={"protocol_whitelist": "file"}) as container:
            if not container.streams.audio:
                return silence(seconds)
            resampler = av.AudioResampler(format="s16", layout="stereo", rate=RATE)
            for frame in container.decode(container.streams.audio[0]):
                for chunk in resampler.resample(frame):
                    out += bytes(chunk.planes[0])[: chunk.samples * 4]
                if len(out) >= skip + want:
                    break
    except Exception:  # unreadable sound is silence: the picture is what matters
        return silence(seconds)
    return fit(out[skip:], seconds)


class AacTrack:
    """An AAC stereo stream of a container being written, fed with PCM in any amounts."""

    def __init__(self, container: Any):
        import av

        self.container = container
        self.stream = container.add_stream("aac", rate=RATE)
        self.stream.layout = "stereo"
        self._to_aac = av.AudioResampler(format="fltp", layout="stereo", rate=RATE, frame_size=1024)
        self._samples = 0

    def write(self, pcm_bytes: bytes) -> None:
        self.container.mux(self.packets(pcm_bytes))

    def close(self) -> None:
        self.container.mux(self.packets(b"", last=True))

    def packets(self, pcm_bytes: bytes, *, last: bool = False) -> list[Any]:
        """Encode without muxing (the codec lets go of the GIL), so the sound can be made in a thread beside the
        picture once the container has started; `last` flushes the resampler and the encoder."""
        import av

        out: list[Any] = []
        for start in range(0, len(pcm_bytes), 4096 * 4):
            chunk = pcm_bytes[start:start + 4096 * 4]
            frame = av.AudioFrame(format="s16", layout="stereo", samples=len(chunk) // 4)
            frame.planes[0].update(chunk)
            frame.sample_rate = RATE
            frame.pts = self._samples
            self._samples += frame.samples
            for ready in self._to_aac.resample(frame):
                out += self.stream.encode(ready)
        if last:
            for ready in self._to_aac.resample(None):
                out += self.stream.encode(ready)
            out += self.stream.encode(None)
        return out
