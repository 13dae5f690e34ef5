"""Local files stay local: allowed folders by resolved path and component, real media only, limits checked.

Each refusal happens before any network request: the DashScope emulator must record nothing.
Guards against a prefix escape (CVE-2025-53110), a symlink escape (CVE-2025-53109), exfiltration by
"uploading a reference", remote mode exposing the server's disk, and huge media.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import media
import pytest
from conftest import call, text
from mcp import Client

from wan_r2v_mcp.config import Settings
from wan_r2v_mcp.server import build_server

pytestmark = pytest.mark.anyio


async def _refused_without_network(ds_settings, dashscope, reference: str) -> str:
    async with Client(build_server(ds_settings)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1 waves", "provider": "dashscope",
                                                "reference_images": [reference]})
    assert r["isError"] is True, r
    assert dashscope.received == [], "a refused reference must cause no request at all"
    return text(r)


@pytest.fixture
def secret(dirs) -> Path:
    outside = dirs["refs"].parent / "refs_secret"
    outside.mkdir()
    return media.image(outside / "id.png")


async def test_a_sibling_folder_sharing_the_prefix_is_outside(ds_settings, dashscope, secret, dirs):
    msg = await _refused_without_network(ds_settings, dashscope, str(secret))
    assert f"reference_images[0]: {secret} is outside the folders this server may read." in msg
    assert f"Limit: allowed: {dirs['refs'].resolve()}, {dirs['out'].resolve()}" in msg
    assert "add its folder to WAN_R2V_ALLOWED_DIRS" in msg


@pytest.mark.parametrize("escape", ["{refs}/../refs_secret/id.png", "{refs}//../refs_secret/id.png",
                                    "{refs}/sub/../../refs_secret/id.png"])
async def test_relative_escapes_are_outside(ds_settings, dashscope, secret, dirs, escape):
    (dirs["refs"] / "sub").mkdir()
    msg = await _refused_without_network(ds_settings, dashscope, escape.format(refs=dirs["refs"]))
    assert "is outside the folders this server may read" in msg


async def test_a_symlink_pointing_out_is_outside(ds_settings, dashscope, secret, dirs):
    link = dirs["refs"] / "innocent.png"
    link.symlink_to(secret)
    msg = await _refused_without_network(ds_settings, dashscope, str(link))
    assert f"{link} is outside the folders this server may read" in msg


async def test_a_symlink_pointing_in_is_accepted(settings, dirs, refs):
    link = dirs["refs"] / "alias.png"
    link.symlink_to(refs["img1"])
    async with Client(build_server(settings)) as client:
        r = await call(client, "list_references", {"reference_images": [str(link)]})
    assert r["structuredContent"]["ok"] is True


async def test_a_symlinked_allowed_folder_works_in_both_forms(dirs, refs):
    alias = dirs["refs"].parent / "refs-alias"
    alias.symlink_to(dirs["refs"], target_is_directory=True)
    settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"], allowed_dirs=str(alias))
    async with Client(build_server(settings)) as client:
        for form in (alias / "alice.png", refs["img1"]):
            r = await call(client, "list_references", {"reference_images": [str(form)]})
            assert r["structuredContent"]["ok"] is True, form


async def test_dotfiles_and_dot_folders_are_refused(ds_settings, dashscope, dirs):
    hidden = media.image(dirs["refs"] / ".cache" / "a.png")
    msg = await _refused_without_network(ds_settings, dashscope, str(hidden))
    assert f"reference_images[0]: {hidden} is a hidden file or lies in a hidden folder (.cache)." in msg
    dotfile = media.image(dirs["refs"] / ".me.png")
    msg = await _refused_without_network(ds_settings, dashscope, str(dotfile))
    assert "hidden file" in msg


async def test_a_nul_byte_is_refused(ds_settings, dashscope, dirs):
    msg = await _refused_without_network(ds_settings, dashscope, str(dirs["refs"] / "a.png\x00.txt"))
    assert "reference_images[0]: contains a NUL character." in msg


async def test_a_text_file_named_png_never_leaves_the_machine(ds_settings, dashscope, dirs):
    fake = dirs["refs"] / "environ.png"
    fake.write_text("AWS_SECRET_ACCESS_KEY=abc\n")
    msg = await _refused_without_network(ds_settings, dashscope, str(fake))
    assert "is not a media file" in msg


async def test_proc_and_home_secrets_are_outside(ds_settings, dashscope):
    for path in ("/proc/self/environ", "~/.ssh/id_rsa", "/etc/passwd"):
        if Path(path).expanduser().exists():
            msg = await _refused_without_network(ds_settings, dashscope, path)
            assert "is outside the folders this server may read" in msg or "hidden" in msg, msg


async def test_over_http_local_files_are_off_unless_folders_are_configured(dirs, refs):
    remote = Settings(data_dir=dirs["data"], output_dir=dirs["out"], remote=True)
    async with Client(build_server(remote)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": [str(refs["img1"])]})
        listing = await call(client, "list_references", {"directory": str(dirs["refs"])})
    assert "local files are off on this server" in text(r)
    assert "local files are off on this server" in text(listing)
    configured = Settings(data_dir=dirs["data"], output_dir=dirs["out"], remote=True, allowed_dirs=str(dirs["refs"]))
    async with Client(build_server(configured)) as client:
        r = await call(client, "generate_r2v", {"prompt": "Image 1", "reference_images": [str(refs["img1"])],
                                                "dry_run": True})
    assert r["isError"] is False


async def test_a_folder_the_client_offers_as_a_root_is_allowed(dirs):
    offered = dirs["refs"].parent / "project"
    image = media.image(offered / "hero.png")
    settings = Settings(data_dir=dirs["data"], output_dir=dirs["out"])

    async def roots(_ctx):
        from mcp.types import ListRootsResult, Root
        return ListRootsResult(roots=[Root(uri=offered.as_uri(), name="project")])

    async with Client(build_server(settings), mode="legacy", list_roots_callback=roots) as client:
        r = await call(client, "list_references", {"reference_images": [str(image)]})
    assert r["structuredContent"]["ok"] is True
    async with Client(build_server(settings), mode="legacy") as client:  # no roots offered: outside
        r = await call(client, "list_references", {"reference_images": [str(image)]})
    assert "is outside the folders" in r["structuredContent"]["references"][0]["problems"][0]


async def test_paths_are_normalised(settings, refs):
    home = Path.home()
    async with Client(build_server(settings)) as client:
        r = await call(client, "list_references", {"reference_images": [refs["img1"].as_uri()]})
        assert r["structuredContent"]["ok"] is True
        win = await call(client, "list_references", {"reference_images": ["C:\\Users\\me\\cat.png"]})
    problem = win["structuredContent"]["references"][0]["problems"][0]
    if Path("/mnt/c").is_dir():
        assert "/mnt/c/Users/me/cat.png" in problem
    else:
        assert problem.startswith("'C:\\Users\\me\\cat.png' is a Windows path, but this server runs on ")
    assert home.is_absolute()


# ------------------------------------------------------------------ media at and just past each limit

def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


async def test_a_20000_px_png_is_refused_from_its_header_without_decoding(client, dirs):
    bomb = dirs["refs"] / "bomb.png"
    bomb.write_bytes(_png_header(20000, 20000))  # a header only: decoding it would fail, so a verdict proves none ran
    r = await call(client, "list_references", {"reference_images": [str(bomb)]})
    assert r["structuredContent"]["references"][0]["problems"] == [
        "is 20000x20000 px. Limit: each side 240-8000 px. Fix: downscale it."]


async def test_an_oversized_file_is_refused_before_it_is_read(client, dirs):
    big = dirs["refs"] / "big.png"
    with open(big, "wb") as fh:
        fh.write(_png_header(1000, 1000))
        fh.truncate(20 * 1024 * 1024 + 1)
    r = await call(client, "list_references", {"reference_images": [str(big)]})
    assert r["structuredContent"]["references"][0]["problems"] == [
        "is 20,971,521 bytes. Limit: at most 20 MB (20,971,520 bytes). Fix: downscale or re-encode it as JPEG."]


@pytest.mark.parametrize("size,ok", [((240, 240), True), ((239, 400), False), ((8000, 1000), True),
                                     ((8001, 1100), False), ((240, 1920), True), ((240, 1921), False)])
async def test_image_sides_and_aspect(client, dirs, size, ok):
    path = dirs["refs"] / f"i{size[0]}x{size[1]}.png"
    path.write_bytes(_png_header(*size))
    r = await call(client, "list_references", {"reference_images": [str(path)]})
    assert r["structuredContent"]["references"][0]["ok"] is ok, r["structuredContent"]["references"][0]


async def test_a_gif_is_named_as_such(client, dirs):
    from PIL import Image
    gif = dirs["refs"] / "anim.gif"
    Image.new("RGB", (300, 300)).save(gif)
    r = await call(client, "list_references", {"reference_images": [str(gif)]})
    assert r["structuredContent"]["references"][0]["problems"] == [
        "is gif, which Wan 2.7 does not take. Limit: image formats jpeg, png, bmp, webp. Fix: convert it to jpeg."]


@pytest.mark.parametrize("seconds,ok", [(1.0, True), (0.6, False), (30.0, True), (31.0, False)])
async def test_video_length(client, dirs, seconds, ok):
    path = media.video(dirs["refs"] / f"v{seconds}.mp4", 240, 240, seconds=seconds, fps=10)
    r = await call(client, "list_references", {"reference_videos": [str(path)]})
    ref = r["structuredContent"]["references"][0]
    assert ref["ok"] is ok, ref
    if not ok:
        assert ref["problems"][0].startswith(f"lasts {seconds:.1f} s. Limit: 1-30 s.")


async def test_a_small_video_side_is_refused(client, dirs):
    path = media.video(dirs["refs"] / "tiny.mp4", 200, 240, seconds=1.0, fps=10)
    r = await call(client, "list_references", {"reference_videos": [str(path)]})
    assert r["structuredContent"]["references"][0]["problems"] == [
        "is 200x240 px. Limit: each side 240-4096 px. Fix: upscale it."]


@pytest.mark.parametrize("seconds,ok", [(1.0, True), (10.0, True), (10.5, False), (0.5, False)])
async def test_voice_length(client, refs, dirs, seconds, ok):
    voice = media.wav(dirs["refs"] / f"voice{seconds}.wav", seconds=seconds)
    r = await call(client, "list_references", {"reference_images": [str(refs["img1"])],
                                               "voices": {"Image 1": str(voice)}})
    assert r["structuredContent"]["references"][1]["ok"] is ok


async def test_billable_seconds_share_the_5_second_cap_among_videos(client, dirs):
    videos = [str(media.video(dirs["refs"] / f"c{i}.mp4", 240, 240, seconds=s, fps=10))
              for i, s in enumerate((4.0, 1.0, 6.0))]
    r = await call(client, "list_references", {"reference_videos": videos})
    assert r["structuredContent"]["billable_input_seconds"] == round(5 / 3 + 1.0 + 5 / 3, 3)


async def test_a_folder_of_1000_files_is_listed_with_a_limit_and_a_count_of_the_rest(client, dirs):
    folder = dirs["refs"] / "many"
    folder.mkdir()
    png = media.image(dirs["refs"] / "seed.png", 320, 240).read_bytes()
    for i in range(1000):
        (folder / f"shot{i:04d}.png").write_bytes(png)
        os.utime(folder / f"shot{i:04d}.png", (1_700_000_000 + i, 1_700_000_000 + i))
    r = await call(client, "list_references", {"directory": str(folder), "limit": 50})
    report = r["structuredContent"]
    assert len(report["candidates"]) == 50 and report["more"] == 950
    assert os.path.basename(report["candidates"][0]["source"]) == "shot0999.png"  # newest first


# ------------------------------------------------------------------ probing remote URLs, only when asked

@pytest.mark.parametrize("url", [
    "https://127.0.0.1:{port}/a.png", "https://127.1:{port}/a.png", "https://2130706433:{port}/a.png",
    "https://0x7f.1:{port}/a.png", "https://[::ffff:127.0.0.1]:{port}/a.png", "https://localhost:{port}/a.png",
    "https://100.64.0.1/a.png", "https://169.254.169.254/latest/meta-data", "https://10.0.0.1/a.png",
    "https://[::1]:{port}/a.png",
])
async def test_probing_refuses_non_public_addresses_before_connecting(client, dashscope, url):
    port = dashscope.root.rsplit(":", 1)[1]
    r = await call(client, "list_references", {"reference_images": [url.format(port=port)], "probe_urls": True})
    problem = r["structuredContent"]["references"][0]["problems"][0]
    assert "resolves to a non-public address" in problem, problem
    assert "the server fetches only public https URLs" in problem
    assert dashscope.received == []


async def test_urls_are_not_fetched_unless_asked(client, dashscope):
    port = dashscope.root.rsplit(":", 1)[1]
    r = await call(client, "list_references", {"reference_images": [f"https://127.0.0.1:{port}/a.png"]})
    assert r["structuredContent"]["references"][0]["ok"] is True
    assert r["structuredContent"]["references"][0]["location"] == "url"
    assert dashscope.received == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://example.com/a.png"])
async def test_only_https_and_allowed_local_files(client, url):
    r = await call(client, "list_references", {"reference_images": [url], "probe_urls": True})
    assert r["structuredContent"]["references"][0]["ok"] is False
