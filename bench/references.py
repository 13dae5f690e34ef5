"""list_references over a folder of 1,000 media files: cold (first listing) and warm (cached) times.

Anchor, in the same run: a bare os.scandir of the same folder that reads each file's first 64 bytes,
the least any listing that checks magic bytes must do. Run: python bench/references.py [FILES] [N]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import media  # noqa: E402

CHILD = """
import sys, time, os, anyio
from mcp import Client
from wan_r2v_mcp.config import Settings
from wan_r2v_mcp.server import build_server
folder, data = sys.argv[1], sys.argv[2]
settings = Settings(data_dir=data, output_dir=data, allowed_dirs=folder)

def anchor():
    t = time.perf_counter()
    for entry in os.scandir(folder):
        with open(entry.path, "rb") as fh:
            fh.read(64)
    return time.perf_counter() - t

async def main():
    async with Client(build_server(settings)) as client:
        a = anchor()
        t = time.perf_counter(); r = await client.call_tool("list_references", {"directory": folder, "limit": 1000})
        cold = time.perf_counter() - t
        assert len(r.structured_content["candidates"]) == int(sys.argv[3]), r.structured_content["more"]
        t = time.perf_counter(); await client.call_tool("list_references", {"directory": folder, "limit": 1000})
        warm = time.perf_counter() - t
        print(a, cold, warm)
anyio.run(main)
"""


def main() -> None:
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "media"
        folder.mkdir()
        kinds = [media.image(Path(tmp) / "a.png", 640, 480).read_bytes(),
                 media.image(Path(tmp) / "b.jpg", 800, 600).read_bytes(),
                 media.video(Path(tmp) / "c.mp4", 320, 240, seconds=1.0).read_bytes(),
                 media.wav(Path(tmp) / "d.wav", seconds=1.0).read_bytes()]
        exts = [".png", ".jpg", ".mp4", ".wav"]
        for i in range(files):
            (folder / f"f{i:04d}{exts[i % 4]}").write_bytes(kinds[i % 4])
        rows = []
        for i in range(runs):  # a fresh process each run, so "cold" really is cold for our caches
            out = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(Path(tmp) / f"d{i}"), str(files)],
                                 check=True, capture_output=True, text=True).stdout
            rows.append([float(x) for x in out.split()])
    anchor, cold, warm = (statistics.median(col) for col in zip(*rows))
    print(f"{files} files (a quarter each png, jpg, mp4, wav); median of {runs} fresh processes")
    print(f"anchor (scandir + read 64 bytes each): {anchor * 1000:.0f} ms")
    print(f"list_references cold: {cold * 1000:.0f} ms ({cold / anchor:.1f}x anchor); "
          f"warm: {warm * 1000:.0f} ms ({warm / anchor:.1f}x anchor)")


if __name__ == "__main__":
    main()
