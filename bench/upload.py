"""Uploading a 100 MB reference video to the DashScope emulator: peak memory and throughput.

The emulator runs in its own process. Each measurement runs in a fresh child process and reports its
peak RSS growth during the upload (against the file size) and the upload's wall time. The anchor is a
bare httpx streaming multipart POST of the same file to the same emulator, in the same kind of process.
Run: python bench/upload.py [MB] [N]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EMULATOR = f"""
import sys, time
sys.path.insert(0, {str(ROOT / "tests")!r})
from emulators.dashscope import DashScopeEmulator
with DashScopeEmulator("sk-bench0000000000000000", lambda seconds: b"") as e:
    print(e.base_url, flush=True)
    sys.stdin.read()
"""

MEASURE = """
import json, resource, sys, time, anyio
kind, base_url, path, data_dir = sys.argv[1:5]

def rss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

async def ours():
    from pathlib import Path
    from wan_r2v_mcp.config import Settings
    from wan_r2v_mcp.providers.dashscope import DashScopeProvider
    from wan_r2v_mcp.references.intake import Reference
    from wan_r2v_mcp.references.opened import OpenedFile
    from wan_r2v_mcp.references.sources import Source
    settings = Settings(data_dir=data_dir, output_dir=data_dir,
                        hosts={"dashscope": {"api_key": "sk-bench0000000000000000", "base_url": base_url}})
    provider = DashScopeProvider(settings)
    ref = Reference("Video 1", "reference_video", "reference_videos[0]", path,
                    source=Source(path, "local", path=Path(path)), opened=OpenedFile(Path(path)))
    before = rss_kb(); t = time.perf_counter()
    await provider.upload(ref, provider.route("wan2.7-r2v"))
    return time.perf_counter() - t, rss_kb() - before

async def anchor():
    import httpx
    fields = {"OSSAccessKeyId": "x", "Signature": "x", "policy": "x", "key": "dir/ref-bench.mp4",
              "x-oss-object-acl": "private", "x-oss-forbid-overwrite": "true", "success_action_status": "200"}
    async with httpx.AsyncClient(timeout=120) as http:
        await http.get(base_url.replace("/api/v1", "/oss"))  # warm the same imports and a connection pool
        before = rss_kb(); t = time.perf_counter()
        with open(path, "rb") as fh:
            r = await http.post(base_url.replace("/api/v1", "/oss"), data=fields,
                                files={"file": ("ref-bench.mp4", fh, "video/mp4")})
        assert r.status_code == 200, r.status_code
        return time.perf_counter() - t, rss_kb() - before

seconds, grew_kb = anyio.run(ours if kind == "ours" else anchor)
print(json.dumps({"seconds": seconds, "rss_growth_mb": grew_kb / 1024}))
"""


def main() -> None:
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "big.mp4"
        with open(video, "wb") as fh:  # an mp4 header, then incompressible bytes: the upload never looks inside
            fh.write(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
            for _ in range(size_mb):
                fh.write(os.urandom(1024 * 1024))
        emu = subprocess.Popen([sys.executable, "-c", EMULATOR], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        base_url = emu.stdout.readline().strip()
        try:
            results: dict[str, list[dict]] = {"ours": [], "anchor": []}
            for i in range(runs):
                for kind in ("anchor", "ours"):
                    data_dir = Path(tmp) / f"data-{kind}-{i}"  # a fresh upload cache each run
                    data_dir.mkdir()
                    out = subprocess.run([sys.executable, "-c", MEASURE, kind, base_url, str(video), str(data_dir)],
                                         check=True, capture_output=True, text=True).stdout
                    results[kind].append(json.loads(out))
        finally:
            emu.stdin.close()
            emu.wait(timeout=10)
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("seconds", "rss_growth_mb")} for k, v in results.items()}
    size = size_mb
    print(f"file: {size} MB; median of {runs} runs each")
    for kind in ("anchor", "ours"):
        s, g = med[kind]["seconds"], med[kind]["rss_growth_mb"]
        print(f"{kind:>6}: {s:.2f} s ({size / s:.0f} MB/s), peak RSS growth {g:.1f} MB "
              f"({g / size:.1%} of the file)")
    print(f"throughput ratio (ours / bare httpx): {med['anchor']['seconds'] / med['ours']['seconds']:.2f}x "
          f"(ours includes hashing the file for the upload cache and the getPolicy call)")


if __name__ == "__main__":
    main()
