"""list_references: labels, kinds and verdicts for what the agent means to send, and what a folder holds."""

from __future__ import annotations

import os

import media
import pytest
from conftest import call, text

pytestmark = pytest.mark.anyio


async def test_labels_are_per_type_in_list_order_and_every_file_is_judged(client, refs, dirs):
    notes = dirs["refs"] / "notes.png"
    notes.write_text("not an image")
    result = await call(client, "list_references", {
        "reference_videos": [str(refs["vid1"]), str(refs["vid1"])],
        "reference_images": [str(refs["img1"]), str(notes)],
        "first_frame": str(refs["img2"]),
        "voices": {"video 2": str(refs["voice"])},
        "prompt": "Video 2 gives Image 1 a cup while Video 1 watches",
    })
    report = result["structuredContent"]
    assert result["isError"] is False and report["ok"] is False
    assert [(r["label"], r["kind"], r["ok"]) for r in report["references"]] == [
        ("First frame", "image", True), ("Image 1", "image", True), ("Image 2", "unknown", False),
        ("Video 1", "video", True), ("Video 2", "video", True), ("Voice of Video 2", "audio", True)]
    img1 = report["references"][1]
    assert (img1["format"], img1["width"], img1["height"]) == ("png", 640, 480)
    vid = report["references"][3]
    assert (vid["format"], vid["width"], vid["height"], vid["duration_seconds"]) == ("mp4", 320, 240, 2.0)
    assert report["references"][5]["duration_seconds"] == 2.0
    assert report["prompt_findings"] == [{"severity": "warning", "message": "the prompt never names Image 2",
                                          "fix": "say in the prompt what each reference does, or drop the ones it does not need"}]
    lines = text(result).splitlines()
    assert lines[0] == "Some references need fixing:"
    assert lines[1] == f"First frame: {refs['img2']} (image, jpeg, 480x640) - ok"
    assert lines[3].startswith(f"Image 2: {notes} (unknown) - NOT OK: is not a media file")


async def test_a_prompt_naming_what_does_not_exist_is_reported_not_raised(client, refs):
    result = await call(client, "list_references", {"reference_images": [str(refs["img1"])],
                                                    "prompt": "Image 1 and Video 3 and 视频2 dance"})
    report = result["structuredContent"]
    assert report["ok"] is False
    assert [f["message"] for f in report["prompt_findings"]] == [
        'the prompt names "Video 3" but the request has no videos',
        'the prompt names "视频2" but the request has no videos']
    assert report["problems"][0].startswith('[invalid_input] prompt: the prompt names "Video 3"')


async def test_the_old_character_naming_is_flagged(client, refs):
    result = await call(client, "list_references", {"reference_images": [str(refs["img1"])],
                                                    "prompt": "character1 waves"})
    findings = result["structuredContent"]["prompt_findings"]
    assert findings[0] == {"severity": "error", "message": '"character1" is Wan 2.6 naming, which Wan 2.7 ignores',
                           "fix": 'write "Image 1" instead'}


async def test_a_folder_lists_its_media_acceptable_first(client, dirs):
    folder = dirs["refs"] / "shoot"
    media.image(folder / "small.png", 100, 100)  # too small
    media.image(folder / "hero.jpg", 800, 600)
    media.video(folder / "clip.mp4", 320, 240, seconds=1.5)
    media.wav(folder / "voice.wav", seconds=1.5)
    (folder / "readme.txt").write_text("hi")
    (folder / ".hidden.png").write_bytes((folder / "hero.jpg").read_bytes())
    result = await call(client, "list_references", {"directory": str(folder)})
    report = result["structuredContent"]
    assert report["directory"] == str(folder)
    assert [(os.path.basename(c["source"]), c["kind"], c["ok"]) for c in report["candidates"]] == [
        ("hero.jpg", "image", True), ("clip.mp4", "video", True), ("voice.wav", "audio", True),
        ("small.png", "image", False)]
    assert report["candidates"][3]["problems"] == ["is 100x100 px (limit: each side 240-8000 px)"]
    limited = await call(client, "list_references", {"directory": str(folder), "limit": 2})
    assert len(limited["structuredContent"]["candidates"]) == 2 and limited["structuredContent"]["more"] == 2


async def test_a_folder_that_does_not_exist(client, dirs):
    result = await call(client, "list_references", {"directory": str(dirs["refs"] / "nope")})
    assert result["isError"] is True
    assert text(result) == (f"Error executing tool list_references: [invalid_reference] directory: is not a folder: "
                            f"{dirs['refs'] / 'nope'}. Fix: give an existing folder's path.")
