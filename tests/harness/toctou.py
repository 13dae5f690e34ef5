"""Planted-canary TOCTOU soak: references whose folder, or whose last path component, is swapped for a symlink
out of the allowed folders while the server checks and reads them.

Run it (under a minute for 1,000 tries):

    .venv/bin/python tests/harness/toctou.py --tries 1000

An allowed folder holds `inside/` (a harmless picture), swapped for a symlink to a folder outside (holding a
canary picture of the same name) and back, and `pic.png`, swapped between a real file and a symlink to the
canary. While a thread flips both as fast as it can, `save_character` and `generate_r2v` (on
the DashScope emulator, which keeps every uploaded file) are called on both paths. It counts escapes: the
canary's bytes in the cast folder or among the uploads. Must be 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import anyio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import media  # noqa: E402
from emulators.dashscope import DashScopeEmulator  # noqa: E402
from mcp import Client  # noqa: E402

from wan_r2v_mcp.config import Settings  # noqa: E402
from wan_r2v_mcp.server import build_server  # noqa: E402

KEY = "sk-toctou0123456789abcdef"


@dataclass
class Figures:
    swaps: int = 0
    calls: int = 0
    accepted: int = 0  # calls that kept or uploaded a file
    refused: int = 0  # calls refused (the path led outside, or changed under the check)
    escapes: int = 0  # the canary kept or uploaded: must be 0

    @property
    def ok(self) -> bool:
        return self.escapes == 0 and self.accepted > 0 and self.refused > 0


PACE = 0.0005  # at most this long between two swaps (a random part of it): as fast as the race needs


def _flip_folder(folder: Path, outside: Path, swaps: int, done: threading.Event, counter: list[int]) -> None:
    """Swap a real folder of the checked path for a symlink to the outside folder and back (two renames each)."""
    real, link = folder.with_name(f".{folder.name}.real"), folder.with_name(f".{folder.name}.link")
    link.symlink_to(outside)
    rng = random.Random(1)
    for i in range(swaps):
        if done.is_set():
            break
        time.sleep(rng.uniform(0, PACE))
        if i % 2 == 0:  # the real folder out, the symlink in
            os.rename(folder, real)
            os.rename(link, folder)
        else:
            os.rename(folder, link)
            os.rename(real, folder)
        counter[0] += 1
    if real.exists():  # leave the real folder in place
        os.rename(folder, link)
        os.rename(real, folder)


def _flip_file(path: Path, real: bytes, canary: Path, swaps: int, done: threading.Event, counter: list[int]) -> None:
    """Swap a file for a symlink to the canary and back."""
    tmp = path.with_name(f".{path.name}.flip")
    rng = random.Random(2)
    for i in range(swaps):
        if done.is_set():
            break
        time.sleep(rng.uniform(0, PACE))
        tmp.unlink(missing_ok=True)
        if i % 2:
            tmp.write_bytes(real)
        else:
            os.symlink(canary, tmp)
        os.replace(tmp, path)
        counter[0] += 1


async def run(tries: int = 1000, *, folder: Path | None = None) -> Figures:
    root = folder or Path(tempfile.mkdtemp(prefix="r2v-toctou-"))
    allowed, outside, data, out = (root / n for n in ("allowed", "outside", "data", "out"))
    for p in (allowed / "inside", outside, data, out):
        p.mkdir(parents=True, exist_ok=True)
    canary = media.image(outside / "ref.png", 330, 250, color=(250, 10, 10))
    harmless = media.image(allowed / "inside" / "ref.png", 320, 240, color=(10, 10, 250))
    canary_bytes = canary.read_bytes()
    pic = allowed / "pic.png"
    pic.write_bytes(harmless.read_bytes())
    figures = Figures()
    with DashScopeEmulator(KEY, media.Results(root / "results")) as host:
        settings = Settings(data_dir=data, output_dir=out, allowed_dirs=str(allowed),
                            hosts={"dashscope": {"api_key": KEY, "base_url": host.base_url}}, time_scale=0.05)
        done = threading.Event()
        counts = [[0], [0]]
        forever = 10**9  # until the tries are done
        flippers = [threading.Thread(target=_flip_folder, args=(allowed / "inside", outside, forever, done,
                                                                 counts[0]), daemon=True),
                    threading.Thread(target=_flip_file, args=(pic, harmless.read_bytes(), canary, forever, done,
                                                              counts[1]), daemon=True)]
        async with Client(build_server(settings)) as client:
            for t in flippers:
                t.start()
            i = 0
            while i < tries:
                path = str(allowed / "inside" / "ref.png") if i % 2 else str(pic)
                if i % 4 < 2:
                    result = await client.call_tool("save_character", {"name": f"c{i % 50}", "reference": path,
                                                                       "replace": True})
                else:
                    result = await client.call_tool("generate_r2v", {
                        "prompt": f"Image 1 waves {i}", "reference_images": [path], "provider": "dashscope",
                        "wait_seconds": 0, "allow_duplicate": True})
                figures.calls += 1
                figures.refused += bool(result.is_error)
                figures.accepted += not result.is_error
                i += 1
            done.set()
            for t in flippers:
                t.join()
        figures.swaps = counts[0][0] + counts[1][0]
        kept = [p.read_bytes() for p in (data / "cast").glob("*.png")] if (data / "cast").is_dir() else []
        sent = [u.get("content") for u in host.uploaded.values()]
        figures.escapes = sum(b == canary_bytes for b in kept) + sum(c == canary_bytes for c in sent if c)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=1000, help="calls made while the paths are swapped")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # refused calls are the point here, not news
    figures = anyio.run(run, args.tries)
    print(json.dumps({**asdict(figures), "ok": figures.ok}, indent=2))
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
