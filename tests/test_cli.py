"""The command line as a person uses it: in their own folder, relative paths, words of the command line, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import media
import pytest


@pytest.fixture
def home(tmp_path: Path) -> dict:
    """A user's folder with their media, and the environment the command runs in (offline: the preview)."""
    folder = tmp_path / "project"
    media.image(folder / "alice.png", 640, 480)
    media.wav(folder / "alice.wav", seconds=2.0)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAN_R2V_", "DASHSCOPE_", "REPLICATE_", "FAL_",
                                                                    "INFERENCE_"))}
    env.update({"WAN_R2V_DATA_DIR": str(tmp_path / "data"), "WAN_R2V_OUTPUT_DIR": str(tmp_path / "out"),
                "WAN_R2V_TIME_SCALE": "0.1"})
    return {"folder": folder, "env": env, "out": tmp_path / "out"}


def run(home: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wan_r2v_mcp", *args], cwd=home["folder"], env=home["env"],
                          capture_output=True, text=True, timeout=timeout)


def test_characters_and_a_sequence_from_the_command_line_with_relative_paths(home):
    saved = run(home, "character", "save", "alice", "alice.png", "--voice", "./alice.wav", "--description", "barista")
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout == ("Saved character @alice (image 640x480, voice 2 s, not used yet - barista). The server "
                            'keeps its own copy. Use it with wan-r2v-mcp generate "@alice ..." -c alice or in '
                            "wan-r2v-mcp sequence.\n")  # command-line words, not a tool call
    again = run(home, "character", "save", "alice", "alice.png")
    assert again.returncode == 1
    assert again.stderr.strip() == ("save_character: [invalid_input] name: 'alice' is already a character. Fix: pick "
                                    "another name, or pass --replace to overwrite it.")
    listed = run(home, "character", "list", "--json")
    assert [c["name"] for c in json.loads(listed.stdout)["characters"]] == ["alice"]

    shots = home["folder"] / "shots.json"
    shots.write_text(json.dumps([{"prompt": "@alice bows", "duration": 2}]))
    made = run(home, "sequence", "-s", "@alice walks in", "--shots-file", "shots.json", "-c", "alice",
               "--duration", "2", "--resolution", "720p", "--json")
    assert made.returncode == 0, made.stderr
    view = json.loads(made.stdout)
    assert view["status"] == "succeeded" and [s["prompt"] for s in view["shots"]] == ["Image 1 walks in",
                                                                                      "Image 1 bows"]
    assert media.decode(Path(view["local_path"]))["frames"] == 120

    stitched = run(home, "stitch", view["shots"][0]["task_id"], view["shots"][1]["task_id"])
    assert stitched.returncode == 0 and "succeeded on preview: 2 shots joined" in stitched.stdout

    refused = run(home, "sequence", "-s", "@bob waves")
    assert refused.returncode == 1 and "names @bob, who is not in characters" in refused.stderr
    gone = run(home, "character", "delete", "alice")
    assert gone.returncode == 0 and gone.stdout.startswith("Deleted character @alice.")
