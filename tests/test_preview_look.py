"""The offline preview as a person watches it: captions in any script, badges apart, references whole, sound,
a first frame it opens on, and billable seconds that do not change between the dry run and the result."""

from __future__ import annotations

import os
from pathlib import Path

import cli_runner
import media
import pytest
from conftest import call, text
from mcp import Client
from PIL import Image, ImageChops, ImageDraw, ImageStat

from wan_r2v_mcp.providers import preview_text
from wan_r2v_mcp.schema import PIXEL_SIZES
from wan_r2v_mcp.server import build_server

pytestmark = pytest.mark.anyio


def frames(path: Path) -> list[Image.Image]:
    import av

    with av.open(str(path)) as c:
        return [f.to_image() for f in c.decode(c.streams.video[0])]


def streams(path: Path) -> dict[str, float]:
    import av

    with av.open(str(path)) as c:
        return {s.type: round(float(s.duration * s.time_base), 2) for s in c.streams}


def difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


def test_the_badges_never_overlap_at_any_size():
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    for (resolution, ratio), (width, height) in PIXEL_SIZES.items():
        band = preview_text.header_band("Voice of Video 1", width, height)
        font = preview_text.font_for(max(min(height, width * 16 // 9) // 40, 12))
        badge = draw.textlength(preview_text.BADGE, font=font)
        label = draw.textlength("Voice of Video 1", font=font)
        two_rows = band.height > font.size * 2 + 4 * max(height // 90, 6) - 2
        assert two_rows or badge + label < width, (resolution, ratio)  # side by side only where both fit
        assert band.width == width and band.height % 2 == 0


@pytest.mark.skipif(preview_text.cjk_font() is None, reason="no CJK font here: .ci/tools.sh installs one")
def test_a_chinese_caption_is_drawn_with_a_font_that_has_its_glyphs():
    font = preview_text.font_for(40, "图1")
    glyphs = [font.getmask(ch).getbbox() and bytes(font.getmask(ch)) for ch in "图视频"]
    assert len(set(glyphs)) == 3  # three different glyphs, not one "missing" box three times
    band = preview_text.caption_band("图1 把咖啡递给 视频1", 1280, 720)
    assert ImageStat.Stat(band.convert("L")).extrema[0][1] > 200  # white text drawn on the dark band


async def test_a_chinese_prompt_without_a_cjk_font_says_so_plainly(settings, refs, monkeypatch):
    monkeypatch.setenv("WAN_R2V_CJK_FONT", "none")
    preview_text.cjk_font.cache_clear()
    try:
        async with Client(build_server(settings)) as client:
            r = await call(client, "generate_r2v", {"prompt": "图1 挥手", "reference_images": [str(refs["img1"])],
                                                    "dry_run": True})
        assert any("cannot draw this prompt as its caption" in w for w in r["structuredContent"]["warnings"])
        assert "no font for Chinese, Japanese or Korean" in text(r)
        band = preview_text.caption_band("图1 挥手", 1280, 720)
        fallback = preview_text.caption_band(preview_text.NO_CJK_FONT, 1280, 720)
        assert difference(band, fallback) == 0  # the video says it in words anyone can read
    finally:
        preview_text.cjk_font.cache_clear()


async def test_a_reference_of_another_shape_is_fitted_whole_and_voices_make_a_sound_track(client, dirs):
    """A portrait photo with a red top edge and a blue bottom edge, in a 16:9 video: both edges stay in view in
    every frame of its segment (fitted over a blurred fill, never cropped); its voice becomes the video's sound."""
    portrait = Image.new("RGB", (480, 720), (200, 200, 200))
    draw = ImageDraw.Draw(portrait)
    draw.rectangle((0, 0, 479, 40), fill=(230, 20, 20))
    draw.rectangle((0, 679, 479, 719), fill=(20, 20, 230))
    path = dirs["refs"] / "tall.png"
    portrait.save(path)
    voice = media.wav(dirs["refs"] / "hello.wav", seconds=1.5)
    r = await call(client, "generate_r2v", {"prompt": "Image 1 says hello", "reference_images": [str(path)],
                                            "voices": [{"label": "Image 1", "audio": str(voice)}],
                                            "resolution": "720p", "duration": 2, "wait_seconds": 45})
    view = r["structuredContent"]
    assert view["status"] == "succeeded", text(r)
    video = Path(view["local_path"])
    assert streams(video) == {"video": 2.0, "audio": 2.0}
    for i, frame in enumerate(frames(video)):
        if i == 0:
            continue
        data = frame.resize((64, 36)).convert("RGB").tobytes()
        pixels = [data[k:k + 3] for k in range(0, len(data), 3)]
        reds = sum(1 for r, g, b in pixels if r > 180 and g < 80 and b < 80)
        blues = sum(1 for r, g, b in pixels if b > 180 and r < 80 and g < 80)
        assert reds and blues, i


async def test_no_sound_given_means_no_sound_track_and_billable_seconds_hold_from_dry_run_to_result(client, refs):
    args = {"prompt": "Image 1 waves", "reference_images": [str(refs["img1"])], "reference_videos": [str(refs["vid1"])],
            "resolution": "720p", "duration": 2}
    dry = await call(client, "generate_r2v", {**args, "dry_run": True})
    done = await call(client, "generate_r2v", {**args, "wait_seconds": 45})
    assert done["structuredContent"]["status"] == "succeeded"
    assert dry["structuredContent"]["billable_seconds"] == done["structuredContent"]["billable_seconds"] == 4.0
    assert streams(Path(done["structuredContent"]["local_path"])) == {"video": 2.0}  # the test clip has no sound


async def test_the_preview_opens_on_the_first_frame_and_takes_its_shape(client, dirs):
    first = Image.new("RGB", (1280, 720), (30, 90, 160))
    ImageDraw.Draw(first).ellipse((400, 160, 880, 560), fill=(250, 210, 40))
    path = dirs["refs"] / "first.png"
    first.save(path)
    r = await call(client, "generate_r2v", {"prompt": "Image 1 walks on", "reference_images": [str(path)],
                                            "first_frame": str(path), "aspect_ratio": "9:16", "resolution": "720p",
                                            "duration": 2, "wait_seconds": 45})
    video = Path(r["structuredContent"]["local_path"])
    opening = frames(video)[0]
    assert opening.size == (1280, 720)  # the first frame's shape, not 9:16
    assert difference(opening, first) < 3.0  # the clip opens on it, bare


def test_the_render_is_the_preview_command_lines_too(tmp_path):
    """The CLI's preview of a prompt in Chinese exits 0 and says whether its caption could be drawn."""
    image = media.image(tmp_path / "a.png", 640, 480)
    env = {**os.environ, "WAN_R2V_DATA_DIR": str(tmp_path / "d"), "WAN_R2V_OUTPUT_DIR": str(tmp_path / "o"),
           "WAN_R2V_CJK_FONT": "none"}
    out = cli_runner.run(["generate", "图1 挥手", "-i", str(image), "--duration", "2", "--resolution", "720p"],
                         cwd=tmp_path, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "cannot draw this prompt as its caption" in out.stdout
