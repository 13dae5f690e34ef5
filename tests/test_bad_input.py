"""Every bad argument is a tool error naming the field, the limit and the fix; nothing is recorded or rendered."""

from __future__ import annotations

from pathlib import Path

import media
import pytest
from conftest import call, text

pytestmark = pytest.mark.anyio

PREFIX = "Error executing tool generate_r2v: [invalid_input] "


def _args(refs, **over):
    args = {"prompt": "Image 1 waves", "reference_images": [str(refs["img1"])]}
    args.update(over)
    return args


async def _refused(client, dirs, args) -> str:
    result = await call(client, "generate_r2v", args)
    assert result["isError"] is True, result
    assert "structuredContent" not in result
    listed = await call(client, "list_tasks", {})
    assert listed["structuredContent"]["total"] == 0, "a refused call must write nothing to the ledger"
    assert list(dirs["out"].iterdir()) == [], "a refused call must render nothing"
    assert not (dirs["data"] / "preview").exists() or not any((dirs["data"] / "preview").iterdir())
    return text(result)


async def test_a_prompt_over_5000_characters(client, refs, dirs):
    msg = await _refused(client, dirs, _args(refs, prompt="Image 1 " + "a" * 5000))
    assert msg == PREFIX + "prompt: is 5008 characters. Limit: at most 5000 characters. Fix: shorten it."


async def test_no_references_at_all(client, refs, dirs):
    msg = await _refused(client, dirs, {"prompt": "a cat"})
    assert msg == PREFIX + ("reference_images + reference_videos: 0 references given (0 images, 0 videos). "
                            "Limit: 1 to 5 images and videos together (first_frame not counted). "
                            "Fix: add at least one reference image or video.")


async def test_six_references(client, refs, dirs):
    images = [str(media.image(dirs["refs"] / f"p{i}.png")) for i in range(4)]
    videos = [str(refs["vid1"]), str(refs["vid1"])]
    msg = await _refused(client, dirs, {"prompt": "Image 1 and Video 1", "reference_images": images,
                                        "reference_videos": videos})
    assert msg.startswith(PREFIX + "reference_images + reference_videos: 6 references given (4 images, 2 videos). "
                          "Limit: 1 to 5 images and videos together (first_frame not counted). "
                          "Fix: keep the 5 that matter most.")


async def test_duration_12_with_a_reference_video(client, refs, dirs):
    msg = await _refused(client, dirs, _args(refs, prompt="Video 1 runs", reference_images=[],
                                             reference_videos=[str(refs["vid1"])], duration=12))
    assert msg == PREFIX + ("duration: is 12 s, but Wan 2.7 makes at most 10 s when any reference video is given. "
                            "Limit: 2-10 s when any reference video is given. "
                            "Fix: ask for 10 s or less, or drop the reference videos, or model=\"wan3.0-video\" (up to "
                            "30 s, on dashscope or fal).")


async def test_duration_out_of_range(client, refs, dirs):
    msg = await _refused(client, dirs, _args(refs, duration=16))
    assert msg == PREFIX + ("duration: is 16 s, but Wan 2.7 makes at most 15 s. Limit: 2-15 s. Fix: ask for 15 s or "
                            "less, or model=\"wan3.0-video\" (up to 30 s, on dashscope or fal).")
    msg = await _refused(client, dirs, _args(refs, duration=31))
    assert msg == PREFIX + "duration: is 31. Limit: 2 to 30. Fix: use a value from 2 to 30."


async def test_an_unknown_aspect_ratio(client, refs, dirs):
    msg = await _refused(client, dirs, _args(refs, aspect_ratio="21:9"))
    assert msg == PREFIX + ("aspect_ratio: '21:9' is not an accepted value. "
                            "Limit: one of '16:9', '9:16', '1:1', '4:3' or '3:4'. "
                            "Fix: use one of '16:9', '9:16', '1:1', '4:3' or '3:4'.")


@pytest.mark.parametrize("seed", [-2, 2_147_483_648])  # -1 has its own answer (test_agent_surface.py)
async def test_a_seed_out_of_range(client, refs, dirs, seed):
    msg = await _refused(client, dirs, _args(refs, seed=seed))
    assert msg == PREFIX + f"seed: is {seed}. Limit: 0 to 2147483647. Fix: use a value from 0 to 2147483647."


async def test_a_prompt_naming_image_3_when_two_images_were_given(client, refs, dirs):
    msg = await _refused(client, dirs, _args(refs, prompt="Image 3 hugs Image 1",
                                             reference_images=[str(refs["img1"]), str(refs["img2"])]))
    assert msg == PREFIX + ('prompt: the prompt names "Image 3" but the request has 2 images. '
                            "Fix: name them Image 1, Image 2.")


async def test_counting_across_both_lists_is_explained(client, refs, dirs):
    msg = await _refused(client, dirs, _args(refs, prompt="Video 1 holds Image 2",
                                             reference_videos=[str(refs["vid1"])]))
    assert msg == PREFIX + ('prompt: the prompt names "Image 2" but the request has 1 image. Fix: name them Image 1 '
                            "(images and videos are numbered separately, not across both lists).")


async def test_a_voices_key_naming_a_reference_that_does_not_exist(client, refs, dirs):
    msg = await _refused(client, dirs, _args(refs, voices={"Video 1": str(refs["voice"])}))
    assert msg == PREFIX + ('voices["Video 1"]: names "Video 1", which is not a reference of this request. '
                            "Limit: keys must be existing labels: Image 1. "
                            "Fix: key the voice by the label of the image or video whose character speaks with it.")


async def test_a_missing_file(client, refs, dirs):
    missing = dirs["refs"] / "nope.png"
    msg = await _refused(client, dirs, _args(refs, reference_images=[str(missing)]))
    assert msg == PREFIX.replace("invalid_input", "invalid_reference") + (
        f"reference_images[0]: file not found: {missing}. "
        "Fix: check the path; list_references(directory=...) lists the media files in a folder.")


async def test_a_file_that_is_not_media(client, refs, dirs):
    fake = dirs["refs"] / "notes.png"
    fake.write_text("these are my passwords\n")
    msg = await _refused(client, dirs, _args(refs, reference_images=[str(fake)]))
    assert msg == PREFIX.replace("invalid_input", "invalid_reference") + (
        "reference_images[0]: is not a media file: its first bytes match no image, video or audio format. "
        "Limit: image formats jpeg, png, bmp, webp. Fix: pass an image file (jpeg, png, bmp, webp).")


async def test_a_video_in_the_image_list(client, refs, dirs):
    msg = await _refused(client, dirs, _args(refs, reference_images=[str(refs["vid1"])]))
    assert msg == PREFIX.replace("invalid_input", "invalid_reference") + (
        "reference_images[0]: is a video (mp4), but reference_images takes images. "
        "Fix: pass it in reference_videos instead, or give an image here.")


async def test_several_problems_come_back_together(client, refs, dirs):
    msg = await _refused(client, dirs, _args(refs, prompt="Image 2 waves", seed=-5, aspect_ratio="2:1"))
    assert msg.startswith(PREFIX + "2 problems with the arguments:\n- aspect_ratio: ")
    assert "\n- seed: is -5." in msg


async def test_a_relative_path_is_refused_with_the_reason(client, refs, dirs):
    msg = await _refused(client, dirs, _args(refs, reference_images=["photos/me.png"]))
    assert "reference_images[0]: 'photos/me.png' is a relative path, and the server's working folder is not yours." in msg
    assert "Fix: give an absolute path (or one starting with ~/)." in msg


async def test_an_unknown_provider(client, refs, dirs):
    msg = await _refused(client, dirs, _args(refs, provider="runway"))
    assert msg == PREFIX.replace("invalid_input", "provider_unavailable") + ('provider: "runway" is not a provider of this server. Limit: one of preview, dashscope, replicate, inferencesh, fal. '
                            "Fix: leave provider out for the configured default, or pick one of those.")


async def test_unknown_task_ids_are_reported_plainly(client):
    result = await call(client, "get_task", {"task_id": "r2v_nope"})
    assert result["isError"] is True
    assert text(result) == ('Error executing tool get_task: [not_found] task_id: no task "r2v_nope". '
                            "Fix: use a task_id returned by a generate tool; list_tasks shows recent ones.")


async def test_lists_sent_as_json_strings_are_accepted(client, refs, dirs):
    # Some clients send list arguments as JSON text; that must not be an error.
    result = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "dry_run": True,
                                                 "reference_images": f'["{refs["img1"]}"]'})
    assert result["isError"] is False
    assert result["structuredContent"]["references"][0]["label"] == "Image 1"
    assert isinstance(Path(result["structuredContent"]["references"][0]["source"]), Path)
