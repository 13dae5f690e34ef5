"""Agent-facing words: the mistakes agents make with each tool, replayed, and every answer scored.

Run it (a few seconds, offline, through an in-process MCP client to a server on the preview):

    .venv/bin/python tests/harness/words.py

Each mistake names the argument at fault. An answer scores 2 when it names that argument (`field:`), says what
is wrong, and gives a fix that uses only the tool's own argument names; 1 when it names the argument or gives a
fix, but not both; 0 otherwise (no error at all, the wrong argument, or a fix naming another tool's arguments).
Figures: the mean score, the zeros, and each answer under 2 with its words.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import media  # noqa: E402
from mcp import Client  # noqa: E402

from wan_r2v_mcp.config import Settings  # noqa: E402
from wan_r2v_mcp.server import build_server  # noqa: E402

URL_IMG, URL_VID, URL_WAV = ("https://cdn.example.com/a.png", "https://cdn.example.com/b.mp4",
                             "https://cdn.example.com/c.wav")


def mistakes(files: dict[str, str]) -> list[tuple[str, dict[str, Any], str]]:
    """(tool, arguments, the argument at fault)."""
    img, vid, wav, txt, short = files["img"], files["vid"], files["wav"], files["txt"], files["short"]
    r2v = {"prompt": "Image 1 waves", "reference_images": [img], "dry_run": True}
    t2v = {"prompt": "A fox runs", "dry_run": True}
    i2v = {"prompt": "She turns", "first_frame": img, "dry_run": True}
    edit = {"prompt": "Make it night", "video": vid, "dry_run": True}
    seq = {"shots": [{"prompt": "@hero walks"}], "characters": ["hero"], "dry_run": True}
    return [
        # generate_r2v
        ("generate_r2v", {**r2v, "prompt": ""}, "prompt"),
        ("generate_r2v", {**r2v, "prompt": "x" * 5001}, "prompt"),
        ("generate_r2v", {**r2v, "reference_images": []}, "reference_images + reference_videos"),
        ("generate_r2v", {**r2v, "reference_images": [img] * 6}, "reference_images + reference_videos"),
        ("generate_r2v", {**r2v, "reference_images": [str(Path(img).parent / "missing.png")]}, "reference_images[0]"),
        ("generate_r2v", {**r2v, "reference_images": [txt]}, "reference_images[0]"),
        ("generate_r2v", {**r2v, "reference_images": [vid]}, "reference_images[0]"),
        ("generate_r2v", {**r2v, "reference_videos": [img]}, "reference_videos[0]"),
        ("generate_r2v", {**r2v, "duration": 1}, "duration"),
        ("generate_r2v", {**r2v, "duration": 16}, "duration"),
        ("generate_r2v", {**r2v, "reference_videos": [vid], "duration": 12}, "duration"),
        ("generate_r2v", {**r2v, "resolution": "4k"}, "resolution"),
        ("generate_r2v", {**r2v, "aspect_ratio": "2:1"}, "aspect_ratio"),
        ("generate_r2v", {**r2v, "seed": -1}, "seed"),
        ("generate_r2v", {**r2v, "provider": "runway"}, "provider"),
        ("generate_r2v", {**r2v, "provider": "dashscope"}, "provider"),
        ("generate_r2v", {**r2v, "voices": [{"label": "Image 3", "audio": wav}]}, 'voices["Image 3"]'),
        ("generate_r2v", {**r2v, "voices": [{"label": "Image 1", "audio": img}]}, 'voices["Image 1"]'),
        ("generate_r2v", {**r2v, "characters": ["nobody"]}, "characters[0]"),
        ("generate_r2v", {**r2v, "prompt": "Character 1 waves"}, "prompt"),
        ("generate_r2v", {**r2v, "aspect": "16:9"}, "aspect"),
        ("generate_r2v", {**r2v, "wait_seconds": -5}, "wait_seconds"),
        ("generate_r2v", {**r2v, "negative_prompt": "n" * 501}, "negative_prompt"),
        ("generate_r2v", {**r2v, "shot_type": "many"}, "shot_type"),
        ("generate_r2v", {**r2v, "first_frame": txt}, "first_frame"),
        # generate_t2v
        ("generate_t2v", {**t2v, "prompt": ""}, "prompt"),
        ("generate_t2v", {**t2v, "audio": img}, "audio"),
        ("generate_t2v", {**t2v, "audio": short}, "audio"),
        ("generate_t2v", {**t2v, "duration": 20}, "duration"),
        ("generate_t2v", {**t2v, "reference_images": [img]}, "reference_images"),
        ("generate_t2v", {**t2v, "provider": "nowhere"}, "provider"),
        ("generate_t2v", {**t2v, "aspect_ratio": "21:9"}, "aspect_ratio"),
        ("generate_t2v", {**t2v, "audio": str(Path(img).parent / "none.wav")}, "audio"),
        # generate_i2v
        ("generate_i2v", {"prompt": "She turns", "dry_run": True}, "first_frame"),
        ("generate_i2v", {**i2v, "first_clip": vid}, "first_clip"),
        ("generate_i2v", {"prompt": "He walks", "first_clip": vid, "driving_audio": wav, "dry_run": True},
         "driving_audio"),
        ("generate_i2v", {"prompt": "Ends", "last_frame": img, "dry_run": True}, "first_frame"),
        ("generate_i2v", {**i2v, "first_frame": vid}, "first_frame"),
        ("generate_i2v", {"prompt": "He walks", "first_clip": img, "dry_run": True}, "first_clip"),
        ("generate_i2v", {"prompt": "He walks", "first_clip": vid, "duration": 2, "dry_run": True}, "duration"),
        ("generate_i2v", {**i2v, "driving_audio": short}, "driving_audio"),
        ("generate_i2v", {**i2v, "aspect_ratio": "16:9"}, "aspect_ratio"),
        ("generate_i2v", {**i2v, "character": "nobody"}, "character"),
        ("generate_i2v", {**i2v, "duration": 0}, "duration"),
        # edit_video
        ("edit_video", {"prompt": "Make it night", "dry_run": True}, "video"),
        ("edit_video", {**edit, "video": img}, "video"),
        ("edit_video", {**edit, "duration": 1}, "duration"),
        ("edit_video", {**edit, "duration": 8}, "duration"),
        ("edit_video", {**edit, "reference_images": [img] * 5}, "reference_images"),
        ("edit_video", {**edit, "audio_setting": "mute"}, "audio_setting"),
        ("edit_video", {**edit, "reference_images": [vid]}, "reference_images[0]"),
        ("edit_video", {**edit, "prompt": ""}, "prompt"),
        # generate_sequence, redo_shot, stitch
        ("generate_sequence", {**seq, "shots": []}, "shots"),
        ("generate_sequence", {**seq, "shots": [{"prompt": "x"}] * 13}, "shots"),
        ("generate_sequence", {**seq, "characters": ["nobody"], "shots": [{"prompt": "@nobody"}]}, "characters[0]"),
        ("generate_sequence", {**seq, "shots": [{"prompt": "@hero", "duration": 20}]}, "shots[0].duration"),
        ("generate_sequence", {**seq, "shots": [{"prompt": ""}]}, "shots[0].prompt"),
        ("generate_sequence", {**seq, "reference_images": [img]}, "reference_images"),
        ("generate_sequence", {**seq, "voices": []}, "voices"),
        ("redo_shot", {"task_id": "seq_nothere", "shot": 1}, "task_id"),
        ("redo_shot", {"task_id": "seq_nothere", "shot": 0}, "shot"),
        ("redo_shot", {"task_id": "seq_nothere"}, "shot"),
        ("stitch", {"task_ids": []}, "task_ids"),
        ("stitch", {"task_ids": ["r2v_nothere", "r2v_nothere_too"]}, "task_ids[0]"),
        # tasks and characters
        ("get_task", {"task_id": "r2v_nothere"}, "task_id"),
        ("get_task", {"task_id": "r2v_x", "wait_seconds": -1}, "wait_seconds"),
        ("get_task", {}, "task_id"),
        ("cancel_task", {"task_id": "r2v_nothere"}, "task_id"),
        ("list_tasks", {"status": "done"}, "status"),
        ("list_tasks", {"limit": 0}, "limit"),
        ("save_character", {"name": "bad name!", "reference": img}, "name"),
        ("save_character", {"name": "hero", "reference": img}, "name"),
        ("save_character", {"name": "ok", "reference": txt}, "reference"),
        ("save_character", {"name": "ok2", "reference": img, "voice": img}, "voice"),
        ("delete_character", {"name": "nobody"}, "name"),
        ("list_references", {"directory": str(Path(img).parent / "nowhere")}, "directory"),
    ]


@dataclass
class Figures:
    mistakes: int = 0
    mean: float = 0.0
    zeros: int = 0
    below_two: list[dict[str, Any]] = field(default_factory=list)


def score(text: str, is_error: bool, expected: str, own: set[str], all_names: set[str]) -> int:
    if not is_error:
        return 0
    named = f" {expected}:" in text or f"- {expected}:" in text or text.split("] ", 1)[-1].startswith(f"{expected}:")
    fixes = re.findall(r"Fix: ([^\n]*)", text)
    nouns = {"task_id"}  # what a tool returns: naming it is no other tool's argument
    foreign = {n for f in fixes for n in re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", f) if n in all_names - own - nouns}
    if foreign:
        return 0
    return int(named) + int(bool(fixes))


async def replay(folder: Path) -> Figures:
    refs = folder / "refs"
    files = {"img": str(media.image(refs / "a.png", 640, 480)), "vid": str(media.video(refs / "b.mp4", seconds=2.0)),
             "wav": str(media.wav(refs / "c.wav", seconds=2.0)), "short": str(media.wav(refs / "d.wav", seconds=1.0))}
    (refs / "notes.txt").write_text("not media")
    files["txt"] = str(refs / "notes.txt")
    settings = Settings(data_dir=folder / "data", output_dir=folder / "out", allowed_dirs=str(refs), time_scale=0.1)
    figures = Figures()
    scores = []
    async with Client(build_server(settings)) as client:
        tools = {t.name: set(t.input_schema.get("properties", {})) for t in (await client.list_tools()).tools}
        all_names = set().union(*tools.values())
        await client.call_tool("save_character", {"name": "hero", "reference": files["img"]})
        for tool, arguments, expected in mistakes(files):
            result = await client.call_tool(tool, arguments)
            text = "\n".join(getattr(c, "text", "") for c in result.content)
            got = score(text, bool(result.is_error), expected, tools[tool], all_names)
            scores.append(got)
            if got < 2:
                figures.below_two.append({"tool": tool, "field": expected, "score": got, "answer": text[:300]})
    figures.mistakes = len(scores)
    figures.mean = round(sum(scores) / len(scores), 3)
    figures.zeros = scores.count(0)
    return figures


def run(folder: Path | None = None) -> Figures:
    if folder is not None:
        return anyio.run(replay, folder)
    with tempfile.TemporaryDirectory() as tmp:
        return anyio.run(replay, Path(tmp))


def main() -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    figures = run()
    print(json.dumps(figures.__dict__, indent=2, ensure_ascii=False))
    return 0 if figures.zeros == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
