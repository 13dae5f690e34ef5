"""A long-lived server's memory over many offline previews at 1080p, beside the same server idle, in the same run.

The server runs as its own process over stdio (as a client starts it); its resident memory (VmRSS in /proc) is read
once it answered `initialize` (the anchor: idle), after each preview has landed on disk, and at the end. Each preview
is a 1080p storyboard of two images and a clip with sound, like the render bench's. The second anchor is what
loading the media stack costs at all (PyAV with FFmpeg and x264, Pillow, the render's code): a fresh interpreter's
memory grown by importing it and encoding one small frame, the share of a server that has rendered once which is
code and tables, not a render's buffers; what a render kept is then what lies above idle plus that.
Run: python bench/memory.py [--previews 20] [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import media  # noqa: E402
from mcp import Client, StdioServerParameters  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def server_pid(parent: int) -> int:
    """The server: the one child of this process running wan_r2v_mcp."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"wan_r2v_mcp" in cmdline:
                return int(entry.name)
    raise RuntimeError("the server process was not found")


MEDIA_STACK = """
import sys
from pathlib import Path
def rss():
    return next(int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmRSS:"))
before = rss()
import av, io
from wan_r2v_mcp.providers.preview_render import encoder, render
out = io.BytesIO()
with av.open(out, "w", format="mp4") as c:
    s = encoder(c, (64, 64), 30)
    c.mux(s.encode(av.VideoFrame(64, 64, "yuv420p")))
    c.mux(s.encode(None))
print((rss() - before) / 1024)
"""


def media_stack_mb() -> float:
    import subprocess

    return float(subprocess.run([sys.executable, "-c", MEDIA_STACK], capture_output=True, text=True,
                                check=True).stdout)


async def main(previews: int, seconds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        refs = [str(media.image(d / "a.png", 1600, 1200)), str(media.image(d / "b.jpg", 1200, 1600))]
        clip = str(media.video(d / "v.mp4", 640, 360, seconds=3, audio=True))
        env = {**os.environ, "WAN_R2V_DATA_DIR": str(d / "data"), "WAN_R2V_OUTPUT_DIR": str(d / "out"),
               "WAN_R2V_ALLOWED_DIRS": str(d)}
        params = StdioServerParameters(command=sys.executable, args=["-m", "wan_r2v_mcp"], env=env)
        async with Client(params, mode="legacy") as client:
            pid = server_pid(os.getpid())
            idle = rss_mb(pid)
            after = []
            for i in range(previews):
                args = {"prompt": f"Image 1 waves at Video 1 in the cafe of Image 2, take {i}",
                        "reference_images": refs, "reference_videos": [clip], "resolution": "1080p",
                        "duration": seconds, "wait_seconds": 50, "allow_duplicate": True}
                result = await client.call_tool("generate_r2v", args)
                view = result.structured_content
                while view["status"] in ("queued", "running"):
                    view = (await client.call_tool("get_task", {"task_id": view["task_id"],
                                                                "wait_seconds": 50})).structured_content
                assert view["status"] == "succeeded", view
                after.append(rss_mb(pid))
            end = rss_mb(pid)
    stack = media_stack_mb()
    print(json.dumps({"previews": previews, "seconds_each": seconds, "idle_mb": round(idle, 1),
                      "media_stack_mb": round(stack, 1),
                      "after_each_mb": [round(x, 1) for x in after], "peak_after_mb": round(max(after), 1),
                      "end_mb": round(end, 1), "end_vs_idle": round(end / idle, 2),
                      "end_vs_idle_with_media_stack": round(end / (idle + stack), 2),
                      "kept_beyond_both_mb": round(end - idle - stack, 1)}, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--previews", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=5)
    ns = parser.parse_args()
    anyio.run(main, ns.previews, ns.seconds)
