"""Takes on the DashScope emulator: a 3-take generate, and the contact sheet it ends with.

Run:

    .venv/bin/python bench/takes.py --rounds 3

Figures (medians over the rounds): the takes and their seeds as the host received them, the sheet's bytes and
pixels, and the seconds from the last take saved to the sheet on disk, beside the same run's anchor: decoding the
same twelve frames (three takes at four moments) with PyAV alone, which is the sheet's floor.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

KEY = "sk-bench0000000000000000"


def _anchor(videos: list[Path]) -> float:
    """Decode the frames the sheet shows (10, 37, 63 and 90 % of each take), nothing else."""
    import av

    start = time.perf_counter()
    for video in videos:
        with av.open(str(video)) as c:
            stream = c.streams.video[0]
            length = float(c.duration / 1_000_000)
            for fraction in (0.1, 0.37, 0.63, 0.9):
                c.seek(int(length * fraction * 1_000_000), backward=True)
                for frame in c.decode(stream):
                    if (frame.time or 0.0) >= length * fraction - 1e-6:
                        break
    return time.perf_counter() - start


async def one_round(folder: Path) -> dict:
    import media
    from emulators.dashscope import DashScopeEmulator

    from wan_r2v_mcp.config import Settings
    from wan_r2v_mcp.server import build_server

    emulator = DashScopeEmulator(KEY, media.Results(folder / "results"))
    emulator.render_results = True
    with emulator:
        settings = Settings(data_dir=folder / "data", output_dir=folder / "out", time_scale=0.1,
                            hosts={"dashscope": {"api_key": KEY, "base_url": emulator.base_url}})
        async with Client(build_server(settings)) as client:
            result = await client.call_tool("generate_r2v", {
                "prompt": "Image 1 waves", "reference_images": ["https://cdn.example.com/a.png"],
                "provider": "dashscope", "resolution": "720p", "duration": 5, "variants": 3, "seed": 11,
                "wait_seconds": 50})
            view = result.structured_content
            while view["status"] in ("queued", "running"):
                view = (await client.call_tool("get_task", {"task_id": view["task_id"]})).structured_content
        from PIL import Image

        sheet = Path(view["contact_sheet_path"])
        last_saved = max(Path(t["local_path"]).stat().st_mtime for t in view["takes"])
        with Image.open(sheet) as im:
            pixels = im.size
        seeds = sorted(c.json["parameters"]["seed"] for c in emulator.calls(method="POST")
                       if emulator.name_of(c) == "create")
        return {"takes": len(view["takes"]), "seeds_sent": seeds, "sheet_bytes": sheet.stat().st_size,
                "sheet_pixels": pixels, "last_take_to_sheet_s": sheet.stat().st_mtime - last_saved,
                "anchor_decode_s": _anchor([Path(t["local_path"]) for t in view["takes"]])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = []
    for _ in range(parser.parse_args().rounds):
        with tempfile.TemporaryDirectory() as folder:
            rounds.append(anyio.run(one_round, Path(folder)))
    sheet = statistics.median(r["last_take_to_sheet_s"] for r in rounds)
    anchor = statistics.median(r["anchor_decode_s"] for r in rounds)
    print(json.dumps({"rounds": rounds, "last_take_to_sheet_median_s": round(sheet, 3),
                      "anchor_decode_median_s": round(anchor, 3),
                      "sheet_vs_anchor": round(sheet / anchor, 2) if anchor else None}, indent=2, default=str))


if __name__ == "__main__":
    main()
