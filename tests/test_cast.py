"""Characters kept by name: saved once, used as @name, uploaded once, and every bad input refused by name."""

from __future__ import annotations

import hashlib
import shutil

import media
import pytest
from conftest import call, text
from mcp import Client

from wan_r2v_mcp.server import build_server

pytestmark = pytest.mark.anyio


async def test_a_character_is_used_by_name_in_two_generations_and_its_files_are_uploaded_once(ds_settings, dashscope,
                                                                                            refs, dirs):
    own = dirs["refs"] / "mine"
    image = media.image(own / "alice.png", 640, 480)
    voice = media.wav(own / "alice.wav", seconds=2.0)
    async with Client(build_server(ds_settings)) as client:
        saved = await call(client, "save_character", {"name": "Alice", "reference": str(image), "voice": str(voice),
                                                       "description": "the barista"})
        assert saved["isError"] is False
        assert {k: saved["structuredContent"][k] for k in ("name", "kind", "format", "width", "height", "voice",
                                                           "voice_seconds", "uses")} == {
            "name": "Alice", "kind": "image", "format": "png", "width": 640, "height": 480, "voice": True,
            "voice_seconds": 2.0, "uses": 0}
        assert saved["content"][1]["type"] == "image"  # its thumbnail
        image_sha = hashlib.sha256(image.read_bytes()).hexdigest()
        shutil.rmtree(own)  # the server keeps its own copy: the original may go

        first = await call(client, "generate_r2v", {"prompt": "@alice hands Video 1 a cup; @ALICE smiles",
                                                    "characters": ["alice"], "reference_videos": [str(refs["vid1"])],
                                                    "provider": "dashscope", "wait_seconds": 30})
        second = await call(client, "generate_r2v", {"prompt": "@Alice waves", "characters": ["Alice"],
                                                     "provider": "dashscope", "wait_seconds": 30})
        for result in (first, second):
            assert result["structuredContent"]["status"] == "succeeded", text(result)
        assert first["structuredContent"]["request"]["characters"] == {"Alice": "Image 1"}
        assert 'the prompt as sent: "Image 1 hands Video 1 a cup; Image 1 smiles"' in text(first)
        assert [(r["label"], r["source"]) for r in first["structuredContent"]["references"]] == [
            ("Image 1", "@Alice"), ("Voice of Image 1", "@Alice (voice)"), ("Video 1", str(refs["vid1"]))]

        creates = [c.json for c in dashscope.calls(method="POST") if dashscope.name_of(c) == "create"]
        assert [c["input"]["prompt"] for c in creates] == ["Image 1 hands Video 1 a cup; Image 1 smiles",
                                                           "Image 1 waves"]
        image_urls = [next(m for m in c["input"]["media"] if m["type"] == "reference_image") for c in creates]
        assert image_urls[0] == image_urls[1]  # the same upload, reused
        assert dashscope.uploaded[image_urls[0]["url"][6:]]["sha256"] == image_sha  # the bytes of the original
        posted = [c for c in dashscope.calls(method="POST") if dashscope.name_of(c) == "upload"]
        assert len(posted) == 3  # alice, her voice and Video 1: each once, though alice was used twice

        listed = await call(client, "list_characters", {})
        (alice,) = listed["structuredContent"]["characters"]
        assert alice["uses"] == 2 and alice["last_used_at"] and alice["description"] == "the barista"
        assert text(listed).splitlines()[1].startswith("- @Alice: image 640x480, voice 2 s, used 2x")
        resource = await client.read_resource("r2v://characters")
        assert '"name": "Alice"' in resource.contents[0].text


async def test_a_dry_run_shows_the_rewritten_prompt_and_mixes_characters_with_explicit_references(client, refs):
    await call(client, "save_character", {"name": "bob", "reference": str(refs["vid1"])})
    await call(client, "save_character", {"name": "cafe", "reference": str(refs["img2"])})
    result = await call(client, "generate_r2v", {
        "prompt": "@bob walks into @cafe and meets Image 1", "reference_images": [str(refs["img1"])],
        "characters": ["bob", "cafe"], "dry_run": True})
    view = result["structuredContent"]
    assert view["request"]["prompt"] == "Video 1 walks into Image 2 and meets Image 1"
    assert view["request"]["characters"] == {"bob": "Video 1", "cafe": "Image 2"}
    assert [(r["label"], r["source"]) for r in view["references"]] == [
        ("Image 1", str(refs["img1"])), ("Image 2", "@cafe"), ("Video 1", "@bob")]
    assert [m["label"] for m in view["payload"]["media"]] == ["Image 1", "Image 2", "Video 1"]
    assert "Characters: @bob = Video 1, @cafe = Image 2" in text(result)
    # A dry run does not count as a use.
    listed = await call(client, "list_characters", {})
    assert [c["uses"] for c in listed["structuredContent"]["characters"]] == [0, 0]


PREFIX = "Error executing tool save_character: "


async def test_every_bad_character_input_is_refused_by_name_with_the_fix(client, refs, dirs):
    async def save(**args):
        return text(await call(client, "save_character", {"reference": str(refs["img1"]), **args}))

    assert await save(name="") == f"{PREFIX}[invalid_input] name: is empty. Limit: at least 1 character. Fix: give " \
                                  "a value."
    assert await save(name="a" * 41) == f"{PREFIX}[invalid_input] name: is 41 characters long. Limit: at most 40. " \
        "Fix: use letters, digits, _ and -, starting with a letter or digit, e.g. alice or old_sailor."
    assert await save(name="../etc/passwd") == f"{PREFIX}[invalid_input] name: contains '.' '/', a path character. " \
        "Fix: use letters, digits, _ and -, starting with a letter or digit, e.g. alice or old_sailor."
    assert await save(name="old sailor") == f"{PREFIX}[invalid_input] name: contains a space. Fix: join the words, " \
        "e.g. old_sailor."
    assert (await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])}))["isError"] is False
    assert await save(name="ALICE") == f"{PREFIX}[invalid_input] name: 'ALICE' is already a character. Fix: pick " \
        "another name, or pass replace=true to overwrite it."
    replaced = await call(client, "save_character", {"name": "alice", "reference": str(refs["vid1"]), "replace": True})
    assert text(replaced).startswith("Replaced character @alice (video 320x240, 2 s, no voice")
    assert await save(name="v", reference=str(refs["voice"])) == f"{PREFIX}[invalid_reference] reference: is audio " \
        "(wav), but a character's reference is an image or a clip. Fix: pass it as voice instead."
    assert await save(name="v", voice=str(refs["img2"])) == f"{PREFIX}[invalid_reference] voice: is image (jpeg), " \
        "but a character's voice is a voice sample (wav or mp3). Fix: pass it as reference instead."
    assert "voice: lasts 12.0 s. Limit: 1-10 s. Fix: trim it to at most 10 s." in await save(
        name="v", voice=str(media.wav(dirs["refs"] / "long.wav", seconds=12)))
    assert "outside the folders this server may read" in await save(name="v", reference="/etc/hosts")
    assert "non-public address" in await save(name="v", reference="https://127.0.0.1/alice.png")
    assert "is not an argument of save_character; did you mean reference?" in await save(name="v", image="x.png")
    listed = await call(client, "list_characters", {})
    assert [c["name"] for c in listed["structuredContent"]["characters"]] == ["alice"]  # nothing half-saved

    gen = "Error executing tool generate_r2v: "
    r = await call(client, "generate_r2v", {"prompt": "@zed runs", "characters": ["zed"]})
    assert text(r) == f"{gen}[invalid_input] characters[0]: no character is named 'zed'. Limit: saved: alice. Fix: " \
        "save it first with save_character(name, reference), or use one of the saved names."
    r = await call(client, "generate_r2v", {"prompt": "@alice meets Image 1", "reference_images": [str(refs["img1"])]})
    assert text(r) == f"{gen}[invalid_input] prompt: names @alice, who is not in characters. Fix: add \"alice\" to " \
        "characters."
    r = await call(client, "generate_r2v", {"prompt": "@alice and Image 1", "characters": ["alice"],
                                            "reference_images": [str(refs["img1"])] * 3,
                                            "reference_videos": [str(refs["vid1"])] * 2})
    assert "6 references given (3 images, 3 videos). Limit: 1 to 5 images and videos together" in text(r)
    for kept in (dirs["data"] / "cast").glob("*.mp4"):
        kept.unlink()  # the cast folder damaged by hand
    r = await call(client, "generate_r2v", {"prompt": "@alice", "characters": ["alice"]})
    assert text(r).startswith(f"{gen}[invalid_input] characters[0]: character 'alice' has lost its file(s) from the "
                              "server's cast folder")
    assert text(r).endswith("Fix: save it again: save_character(name=\"alice\", reference=..., replace=true).")
    r = await call(client, "delete_character", {"name": "nobody"})
    assert text(r) == "Error executing tool delete_character: [not_found] name: no character is named 'nobody'. " \
        "Limit: saved: alice. Fix: list_characters shows the cast."
    r = await call(client, "delete_character", {"name": "@alice"})
    assert text(r).startswith("Deleted character @alice.")
    assert not [p for p in (dirs["data"] / "cast").iterdir() if not p.name.startswith(".")]  # its files went too


async def test_characters_belong_to_their_caller(dirs, refs):
    """Over HTTP each caller has a cast of their own; a name another caller saved is unknown here."""
    from wan_r2v_mcp.cast.roster import Cast
    from wan_r2v_mcp.store.sqlite import SQLiteStore as Ledger

    ledger = Ledger(dirs["data"] / "tasks.sqlite3")
    cast = Cast(ledger, dirs["data"] / "cast")
    from wan_r2v_mcp.cast.save import save_character
    from wan_r2v_mcp.config import Settings
    from wan_r2v_mcp.schema import SaveCharacterArgs

    folders = Settings(data_dir=dirs["data"], output_dir=dirs["out"], allowed_dirs=str(dirs["refs"])).folders()
    await save_character(cast, "ann", SaveCharacterArgs(name="hero", reference=str(refs["img1"])), folders, dirs["data"])
    await save_character(cast, "ben", SaveCharacterArgs(name="hero", reference=str(refs["img2"])), folders, dirs["data"])
    assert [c.width for c in cast.list("ann")] == [640] and [c.width for c in cast.list("ben")] == [480]
    assert cast.get("carl", "hero") is None
    cast.delete("ann", "hero")
    assert cast.get("ben", "hero") is not None and (dirs["data"] / "cast" / cast.get("ben", "hero").media).is_file()
    ledger.close()


async def test_names_in_any_script_are_found_where_they_end(client, refs):
    """Chinese is written without spaces: "@小明走进咖啡馆" is 小明 walking into the cafe. A Latin name still ends
    where its word does, and an e-mail address is not a mention."""
    await call(client, "save_character", {"name": "小明", "reference": str(refs["img1"])})
    await call(client, "save_character", {"name": "al", "reference": str(refs["img2"])})
    await call(client, "save_character", {"name": "alice", "reference": str(refs["vid1"])})
    r = await call(client, "generate_r2v", {"prompt": "@小明走进咖啡馆，@Alice 和 @al 说话；写信给 me@alice.com",
                                            "characters": ["小明", "al", "alice"], "dry_run": True})
    assert r["structuredContent"]["request"]["prompt"] == "Image 1走进咖啡馆，Video 1 和 Image 2 说话；写信给 me@alice.com"
    r = await call(client, "generate_r2v", {"prompt": "@alice2 waves", "characters": ["alice"], "dry_run": True})
    assert "prompt: names @alice2, who is not in characters" in text(r)
