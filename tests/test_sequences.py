"""Sequences of shots joined into one video, continuity through last frames, restarts, redoing a shot, stitch."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import cli_runner
import media
import pytest
from conftest import ONE_ERA, call, finish, text
from emulators.dashscope import Timing
from mcp import Client

from wan_r2v_mcp.providers.host_settings import with_host
from wan_r2v_mcp.server import build_server

pytestmark = pytest.mark.anyio

SHOTS = [{"prompt": "@alice walks into the cafe", "duration": 2},
         {"prompt": "@alice sits down by the window", "duration": 3},
         {"prompt": "@alice smiles at the camera", "duration": 2}]


def frames(path: Path) -> list:
    import av

    with av.open(str(path)) as c:
        return [f.to_image() for f in c.decode(c.streams.video[0])]


def difference(a, b) -> float:
    """Mean absolute difference per channel, 0-255."""
    from PIL import ImageChops, ImageStat

    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


def streams(path: Path) -> dict[str, float]:
    import av

    with av.open(str(path)) as c:
        return {s.type: round(float(s.duration * s.time_base), 3) for s in c.streams}


def creates(dashscope) -> list[dict]:
    return [c.json for c in dashscope.calls(method="POST") if dashscope.name_of(c) == "create"]


@pytest.mark.long
async def test_three_shots_with_continuity_on_dashscope_open_on_each_others_last_frames_and_join_exactly(
        ds_settings, dashscope, refs, dirs):
    dashscope.render_results = dashscope.with_audio = True
    async with Client(build_server(ds_settings)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        result = await call(client, "generate_sequence", {"shots": SHOTS, "characters": ["alice"],
                                                          "provider": "dashscope", "resolution": "720p"})
        done = await finish(client, result["structuredContent"]["task_id"])
    view = done["structuredContent"]
    assert view["status"] == "succeeded", text(done)
    shots = view["shots"]
    assert [(s["shot"], s["status"], s["prompt"]) for s in shots] == [
        (1, "succeeded", "Image 1 walks into the cafe"), (2, "succeeded", "Image 1 sits down by the window"),
        (3, "succeeded", "Image 1 smiles at the camera")]

    sent = creates(dashscope)
    assert len(sent) == 3
    assert [m["type"] for m in sent[0]["input"]["media"]] == ["reference_image"]
    for shot in (1, 2):  # shot N+1's create carries shot N's last frame: the host received exactly that picture
        import io

        from PIL import Image

        first = next(m for m in sent[shot]["input"]["media"] if m["type"] == "first_frame")
        received = Image.open(io.BytesIO(dashscope.uploaded[first["url"][6:]]["content"]))
        assert received.format == "PNG"
        assert difference(received, frames(Path(shots[shot - 1]["local_path"]))[-1]) < 1.0

    joined = Path(view["local_path"])
    assert joined == dirs["out"] / f"{view['task_id']}.mp4"
    parts = [media.decode(Path(s["local_path"])) for s in shots]
    whole = media.decode(joined)
    assert whole["frames"] == sum(p["frames"] for p in parts) == 70
    assert abs(whole["duration"] - sum(p["duration"] for p in parts)) <= 1 / 10
    assert streams(joined) == {"video": 7.0, "audio": 7.0}  # sound kept, as long as the picture
    assert view["output"] == {"width": 480.0, "height": 270.0, "seconds": 7.0}
    assert view["stage"] == "joined 3 shots (copy)"
    picture = frames(joined)
    for cut in (20, 50):  # shot 2 opens where shot 1 ended; shot 3 where shot 2 did
        assert difference(picture[cut], picture[cut - 1]) < 6.0, cut
    sidecar = json.loads(Path(view["sidecar_path"]).read_text())
    assert [(s["shot"], s["task_id"], s["start_seconds"]) for s in sidecar["shots"]] == [
        (1, shots[0]["task_id"], 0.0), (2, shots[1]["task_id"], 2.0), (3, shots[2]["task_id"], 5.0)]
    assert Path(view["poster_path"]).is_file()
    assert not list((dirs["data"] / "sequences").glob(f"{view['task_id']}-*"))  # carried frames cleared when done
    assert text(done).startswith(f"Sequence {view['task_id']} succeeded on dashscope: 3 shots joined into one video "
                                 f"(480x270, 7 s) saved to {joined}.")


async def test_a_story_carries_on_from_shot_to_shot_on_every_host_by_frame_or_by_clip(hosts_settings, dashscope, refs):
    """Issue #22: on Replicate and fal a sequence with continuity was refused (their R2V takes no first frame). Now
    each shot after the first continues the last 2 s of the one before with wan2.7-i2v there, and the dry run says
    which way each shot is made and what it costs; DashScope and inference.sh open on the last frame, or, asked,
    continue the clip too."""
    from conftest import DASHSCOPE_KEY
    from pydantic import SecretStr

    settings = with_host(hosts_settings, "dashscope", api_key=SecretStr(DASHSCOPE_KEY), base_url=dashscope.base_url)
    ways = {}
    async with Client(build_server(settings)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        for provider, continuity in (("dashscope", "auto"), ("inferencesh", "auto"), ("replicate", "auto"),
                                     ("fal", "auto"), ("dashscope", "clip"), ("inferencesh", "clip")):
            r = await call(client, "generate_sequence", {"shots": SHOTS, "characters": ["alice"], "provider": provider,
                                                         "continuity": continuity, "resolution": "720p",
                                                         "dry_run": True})
            view = r["structuredContent"]
            assert not r["isError"], text(r)
            ways[(provider, continuity)] = [(s["made_by"], s["cost_estimate_usd"]) for s in view["shots"]]
            payloads = view["shot_payloads"]
            if "clip" in ways[(provider, continuity)][1][0]:
                # shots 2 and 3 ask the host's i2v for their own seconds and the 2 s they continue, billed
                assert view["cost_estimate_usd"] == pytest.approx(sum(c for _, c in ways[(provider, continuity)]))
                assert "alice" in json.dumps(payloads[1]) and "@alice" not in json.dumps(payloads[1])
    r2v, frame = "wan2.7-r2v", "wan2.7-r2v, opening on shot {}'s last frame"
    clip = "wan2.7-i2v, continuing shot {}'s last 2 s (billed inside its {} s; characters carried by the clip)"
    framed = [r2v, frame.format(1), frame.format(2)]
    clipped = [r2v, clip.format(1, 5), clip.format(2, 4)]
    assert {k: [m for m, _ in v] for k, v in ways.items()} == {
        ("dashscope", "auto"): framed, ("inferencesh", "auto"): framed, ("replicate", "auto"): clipped,
        ("fal", "auto"): clipped, ("dashscope", "clip"): clipped, ("inferencesh", "clip"): clipped}
    # fal prices wan2.7-i2v at $0.10 a second at 720p: 5 s and 4 s; its R2V shot 1 at its own price for 2 s
    assert [c for _, c in ways[("fal", "auto")]][1:] == [pytest.approx(0.5), pytest.approx(0.4)]
    assert not [c for c in dashscope.calls(method="POST") if dashscope.name_of(c) == "create"]


@pytest.mark.long
@pytest.mark.parametrize("host", ["replicate", "fal"])
async def test_on_hosts_whose_r2v_takes_no_frame_a_story_continues_each_clip_and_joins_seamlessly(
        hosts_settings, replicate, fal, refs, host):
    """Issue #22's figure: 3 shots with continuity on the emulator of a host without R2V first frames. Shots 2 and 3
    are wan2.7-i2v continuing the last 2 s before (the host received exactly those seconds), the join keeps each
    shot's own seconds (its length is the sum of the shots), and at each cut the adjacent frames are within 6/255."""
    emulator = {"replicate": replicate, "fal": fal}[host]
    async with Client(build_server(hosts_settings)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        started = await call(client, "generate_sequence", {"shots": SHOTS, "characters": ["alice"], "provider": host,
                                                           "resolution": "720p", "wait_seconds": 0})
        done = await finish(client, started["structuredContent"]["task_id"])
    view = done["structuredContent"]
    assert view["status"] == "succeeded", text(done)
    creates = [c for c in emulator.calls(method="POST") if emulator.name_of(c) == "create"]
    bodies = [c.json.get("input", c.json) for c in creates]
    assert [c.path.rsplit("/", 2)[-2] if host == "replicate" else c.path.rsplit("/", 1)[-1] for c in creates] == (
        ["wan-2.7-r2v", "wan-2.7-i2v", "wan-2.7-i2v"] if host == "replicate" else
        ["reference-to-video", "image-to-video", "image-to-video"])
    assert [b["duration"] for b in bodies] == [2, 5, 4]  # each continuation counts the 2 s it continues
    assert [b["prompt"] for b in bodies[1:]] == ["alice sits down by the window", "alice smiles at the camera"]
    shots = view["shots"]
    joined = Path(view["local_path"])
    whole = media.decode(joined)
    assert view["output"]["seconds"] == 7.0 and whole["frames"] == 70  # 2 + 3 + 2 s at the emulator's 10 fps
    picture = frames(joined)
    before = [frames(Path(s["local_path"])) for s in shots]
    assert difference(picture[0], before[0][0]) < 6.0 and difference(picture[19], before[0][-1]) < 6.0
    for cut in (20, 50):  # each shot opens where the one before ended
        assert difference(picture[cut], picture[cut - 1]) < 6.0, cut
    assert view["stage"] == "joined 3 shots (encode)"
    assert [s["made_by"].split(",")[0] for s in shots] == ["wan2.7-r2v", "wan2.7-i2v", "wan2.7-i2v"]


async def test_a_dry_run_shows_every_shot_and_the_whole_cost_and_the_caps_apply_to_the_whole(ds_settings, dashscope,
                                                                                          refs, dirs):
    async with Client(build_server(ds_settings)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        dry = await call(client, "generate_sequence", {"shots": SHOTS, "characters": ["alice"],
                                                       "provider": "dashscope", "dry_run": True})
        view = dry["structuredContent"]
        assert view["dry_run"] is True and len(view["shot_payloads"]) == 3
        assert [s["prompt"] for s in view["shots"]] == ["Image 1 walks into the cafe",
                                                        "Image 1 sits down by the window", "Image 1 smiles at the camera"]
        assert [m["type"] for m in view["shot_payloads"][1]["input"]["media"]] == ["reference_image", "first_frame"]
        assert [r["source"] for r in view["references"] if r["role"] == "first_frame"] == [
            "last frame of shot 1", "last frame of shot 2"]
        each = [0.15 * s["duration"] for s in SHOTS]  # DashScope's 1080p price per second
        assert view["cost_estimate_usd"] == pytest.approx(sum(each))
        assert "for the whole" in text(dry) and "- Shot 2 (3 s): Image 1 sits down by the window" in text(dry)
        assert not creates(dashscope) and not dashscope.calls(method="POST")

    capped = ds_settings.model_copy(update={"max_cost_per_task_usd": 0.5})
    async with Client(build_server(capped)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        r = await call(client, "generate_sequence", {"shots": SHOTS, "characters": ["alice"], "provider": "dashscope"})
        assert text(r) == ("Error executing tool generate_sequence: [over_budget] for the whole sequence of 3 shots, "
                           "the estimated cost $1.05 is over the per-task cap. Limit: $0.50 per task, a sequence "
                           "or group of takes counting as one (WAN_R2V_MAX_COST_PER_TASK). Fix: ask for fewer seconds or 720p, or raise the cap.")
    assert not creates(dashscope)


async def test_bad_sequences_are_refused_before_anything_is_paid(hosts_settings, replicate, refs):
    prefix = "Error executing tool generate_sequence: "
    async with Client(build_server(hosts_settings)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        r = await call(client, "generate_sequence", {"shots": SHOTS, "characters": ["alice"], "provider": "replicate",
                                                     "continuity": "frame"})
        assert text(r) == (f"{prefix}[invalid_input] continuity: Replicate cannot open a shot on the last frame of the "
                           "one before (its wan2.7-r2v takes no first_frame). Fix: pass continuity=\"clip\" (each shot "
                           "continues the last 2 s before), use provider=dashscope or inferencesh, or pass "
                           "continuity=\"none\".")
        r = await call(client, "generate_sequence", {"shots": SHOTS, "continuity": "both"})
        assert text(r).startswith(f"{prefix}[invalid_input] continuity: 'both' is not an accepted value. Limit: one of "
                                  "'auto', 'frame', 'clip' or 'none'.")
        r = await call(client, "generate_sequence", {
            "shots": [{"prompt": "@alice", "duration": 14}, {"prompt": "@alice", "duration": 14}],
            "characters": ["alice"], "provider": "replicate", "continuity": "clip", "dry_run": True})
        assert text(r) == (f"{prefix}[invalid_input] 2 problems with the arguments:\n"
                           "- shots[0].duration: is 14 s, but Replicate makes at most 10 s. Limit: 2-10 s on replicate. "
                           "Fix: ask for 10 s or less.\n"
                           "- shots[1].duration: is 14 s; continuing the 2 s before makes it 16 s. Limit: at most 13 s "
                           "for a shot carried on by clip (wan2.7-i2v makes 2-15 s). Fix: ask for at most 13 s, or split "
                           "the shot in two.")
        r = await call(client, "generate_sequence", {"shots": []})
        assert text(r) == f"{prefix}[invalid_input] shots: has 0 items. Limit: at least 1. Fix: add one."
        r = await call(client, "generate_sequence", {"shots": [{"prompt": "@alice"}] * 13, "characters": ["alice"]})
        assert text(r) == (f"{prefix}[invalid_input] shots: has 13 items. Limit: at most 12. Fix: keep fewer; split a "
                           "longer story into sequences and stitch them.")
        r = await call(client, "generate_sequence", {"shots": [{"prompt": "@alice", "duration": 12}, {"prompt": "@bob"}],
                                                     "characters": ["alice"], "provider": "replicate",
                                                     "continuity": False})
        assert text(r) == (f"{prefix}[invalid_input] 2 problems with the arguments:\n"
                           "- shots[0].duration: is 12 s, but Replicate makes at most 10 s. Limit: 2-10 s on replicate. "
                           "Fix: ask for 10 s or less.\n"
                           "- shots[1].prompt: names @bob, who is not in characters. Fix: save_character(name=\"bob\", "
                           "...) and add it to characters, or remove @bob from the prompt.")
    assert not [c for c in replicate.calls(method="POST")]


@pytest.mark.long
async def test_a_sequence_is_taken_up_after_a_restart_and_no_shot_is_made_twice(ds_settings, dashscope, refs):
    dashscope.render_results = True
    dashscope.timing = Timing(pending=0.5, running=2.0)
    async with Client(build_server(ds_settings)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        started = await call(client, "generate_sequence", {"shots": SHOTS, "characters": ["alice"],
                                                           "provider": "dashscope", "wait_seconds": 0})
        sequence_id = started["structuredContent"]["task_id"]
        with anyio.fail_after(30):
            while len(creates(dashscope)) < 2:  # stopped while shot 2 runs at the host
                await anyio.sleep(0.1)
    # A new server process on the same ledger (the old one is gone).
    async with Client(build_server(ds_settings)) as client:
        done = await finish(client, sequence_id)
    assert done["structuredContent"]["status"] == "succeeded", text(done)
    assert len(creates(dashscope)) == 3  # each shot made once
    assert [s["earlier_task_ids"] for s in done["structuredContent"]["shots"]] == [[], [], []]


@pytest.mark.long
async def test_one_shot_is_made_again_and_the_sequence_joined_again_without_redoing_the_others(ds_settings, dashscope,
                                                                                              refs):
    dashscope.render_results = True
    async with Client(build_server(ds_settings)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        started = await call(client, "generate_sequence", {"shots": SHOTS, "characters": ["alice"],
                                                           "provider": "dashscope"})
        first = (await finish(client, started["structuredContent"]["task_id"]))["structuredContent"]
        joined_before = Path(first["local_path"]).read_bytes()
        redo = await call(client, "redo_shot", {"task_id": first["task_id"], "shot": 2,
                                                "prompt": "@alice stands up and leaves", "seed": 7})
        assert "shot 3 opens on the last frame of the old shot 2; redo it too" in text(redo)
        again = (await finish(client, first["task_id"]))["structuredContent"]
        r = await call(client, "redo_shot", {"task_id": first["task_id"], "shot": 4})
        assert text(r) == ("Error executing tool redo_shot: [invalid_input] shot: is 4, but the sequence has 3 shots. "
                           "Limit: 1-3. Fix: count shots from 1.")
    assert again["status"] == "succeeded"
    before, after = first["shots"], again["shots"]
    assert [after[0]["task_id"], after[2]["task_id"]] == [before[0]["task_id"], before[2]["task_id"]]
    assert after[1]["task_id"] != before[1]["task_id"] and after[1]["earlier_task_ids"] == [before[1]["task_id"]]
    assert after[1]["prompt"] == "Image 1 stands up and leaves"
    sent = creates(dashscope)
    assert len(sent) == 4 and sent[3]["input"]["prompt"] == "Image 1 stands up and leaves"
    assert sent[3]["parameters"]["seed"] == 7
    assert Path(again["local_path"]).read_bytes() != joined_before
    assert media.decode(Path(again["local_path"]))["frames"] == 70


async def test_canceling_a_sequence_stops_the_shots_not_yet_done(ds_settings, dashscope, refs):
    dashscope.timing = Timing(pending=5.0, running=5.0)
    async with Client(build_server(ds_settings)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        started = await call(client, "generate_sequence", {"shots": SHOTS, "characters": ["alice"],
                                                           "provider": "dashscope", "wait_seconds": 0})
        sequence_id = started["structuredContent"]["task_id"]
        with anyio.fail_after(20):  # shot 1 waits in the host's queue: the host has it (its id is stored)
            while True:
                shots = (await call(client, "get_task", {"task_id": sequence_id, "wait_seconds": 0}))[
                    "structuredContent"]["shots"]
                if shots[0]["task_id"] and (await call(client, "get_task", {"task_id": shots[0]["task_id"],
                                                                                  "wait_seconds": 0}))[
                        "structuredContent"].get("provider_task_id"):
                    break
                await anyio.sleep(0.05)  # "queued" alone may still be before the create was sent
        canceled = await call(client, "cancel_task", {"task_id": sequence_id})
        view = canceled["structuredContent"]
        assert view["status"] == "canceled"
        assert [s["status"] for s in view["shots"][1:]] == ["waiting", "waiting"]
        shot = await finish(client, view["shots"][0]["task_id"])  # its create may still be on its way: it ends too
        assert shot["structuredContent"]["status"] == "canceled"
        again = await call(client, "get_task", {"task_id": sequence_id})
        assert [s["status"] for s in again["structuredContent"]["shots"]] == ["canceled", "waiting", "waiting"]
    assert len(creates(dashscope)) == 1  # the server has stopped: the later shots were never made
    assert [c.path.endswith("/cancel") for c in dashscope.calls(method="POST")].count(True) == 1


@ONE_ERA
async def test_stitch_joins_finished_tasks_and_refuses_what_cannot_be_joined(client, refs):
    made = []
    for prompt, ratio in (("Image 1 waves", "16:9"), ("Image 1 bows", "16:9"), ("Image 1 jumps", "9:16")):
        r = await call(client, "generate_r2v", {"prompt": prompt, "reference_images": [str(refs["img1"])],
                                                "resolution": "720p", "aspect_ratio": ratio, "duration": 2})
        made.append((await finish(client, r["structuredContent"]["task_id"]))["structuredContent"])
    joined = await call(client, "stitch", {"task_ids": [made[0]["task_id"], made[1]["task_id"], made[0]["task_id"]]})
    view = joined["structuredContent"]
    assert view["status"] == "succeeded", text(joined)
    assert media.decode(Path(view["local_path"]))["frames"] == 180 and view["output"]["seconds"] == 6.0
    assert [s["task_id"] for s in view["shots"]] == [made[0]["task_id"], made[1]["task_id"], made[0]["task_id"]]

    prefix = "Error executing tool stitch: "
    r = await call(client, "stitch", {"task_ids": [made[0]["task_id"], made[2]["task_id"]]})
    assert text(r) == (f"{prefix}[invalid_input] task_ids[1]: is 720x1280, another aspect ratio than task_ids[0] "
                       "(1280x720). Limit: one aspect ratio for every part. Fix: stitch videos of one aspect ratio "
                       "(generate again with the same aspect_ratio).")
    r = await call(client, "stitch", {"task_ids": [made[0]["task_id"], "r2v_nobody"]})
    assert text(r) == (f"{prefix}[not_found] task_ids[1]: no task \"r2v_nobody\". Fix: use a task_id that "
                       "a generate tool or generate_sequence returned; list_tasks shows recent ones.")
    pending = await call(client, "generate_r2v", {"prompt": "Image 1 sleeps", "reference_images": [str(refs["img1"])],
                                                  "duration": 15, "wait_seconds": 0})
    r = await call(client, "stitch", {"task_ids": [made[0]["task_id"], pending["structuredContent"]["task_id"]]})
    assert "has not finished (" in text(r) and "Limit: only succeeded tasks can be joined." in text(r)
    r = await call(client, "stitch", {"task_ids": [made[0]["task_id"]]})
    assert text(r) == f"{prefix}[invalid_input] task_ids: has 1 item. Limit: at least 2. Fix: add one."
    # A stitch is a task of its own: get_task reads it, and it can be stitched again.
    again = await call(client, "stitch", {"task_ids": [view["task_id"], made[1]["task_id"]]})
    assert again["structuredContent"]["output"]["seconds"] == 8.0
    assert [(s["task_id"], s["status"]) for s in again["structuredContent"]["shots"]] == [
        (view["task_id"], "succeeded"), (made[1]["task_id"], "succeeded")]


@pytest.mark.long
@pytest.mark.parametrize("kill_when", ["shot 1 created", "shot 2 answer held"])
def test_killed_mid_sequence_then_taken_up_with_each_shot_made_once(kill_when, dirs, dashscope, refs):
    """kill -9 of the process making a sequence (between shots, or while a shot's create answer is on its way),
    then a new process finishes it: three creates at the host, three shots, one joined video."""
    import os
    import signal
    import time

    from conftest import DASHSCOPE_KEY

    dashscope.render_results = True
    dashscope.timing = Timing(pending=0.3, running=1.5)
    env = {**os.environ, "WAN_R2V_DATA_DIR": str(dirs["data"]), "WAN_R2V_OUTPUT_DIR": str(dirs["out"]),
           "DASHSCOPE_API_KEY": DASHSCOPE_KEY, "DASHSCOPE_BASE_URL": dashscope.base_url, "WAN_R2V_TIME_SCALE": "0.1",
           "WAN_R2V_ALLOWED_DIRS": str(dirs["refs"])}

    def cli(*args: str) -> cli_runner.Started:
        return cli_runner.start(list(args), env=env)  # a process of its own, to kill (see cli_runner)

    assert cli("character", "save", "alice", str(refs["img1"])).wait(timeout=60) == 0
    if kill_when == "shot 2 answer held":
        dashscope.fault("create")  # shot 1's create is answered as usual
        dashscope.fault("create", hold=30)  # the host makes shot 2's job; its answer is held back
    proc = cli("sequence", "-s", "@alice walks", "-s", "@alice sits", "-s", "@alice smiles", "-c", "alice",
               "--duration", "2", "--provider", "dashscope", "--wait", "120", "--json")
    deadline = time.monotonic() + 60
    while len(creates(dashscope)) < (1 if kill_when == "shot 1 created" else 2):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    import sqlite3

    with sqlite3.connect(dirs["data"] / "tasks.sqlite3") as db:
        (sequence_id,) = db.execute("SELECT sequence_id FROM sequences").fetchone()
    again = cli("get", sequence_id, "--wait", "120", "--json")
    out, _ = again.communicate(timeout=150)
    view = json.loads(out)
    assert view["status"] == "succeeded", view
    assert len(creates(dashscope)) == 3, "a shot must never be made twice"
    assert len({s["task_id"] for s in view["shots"]}) == 3 and all(not s["earlier_task_ids"] for s in view["shots"])
    assert media.decode(Path(view["local_path"]))["frames"] == 60
    with sqlite3.connect(dirs["data"] / "tasks.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@ONE_ERA
async def test_a_shot_that_could_not_be_made_stops_the_sequence_and_redo_makes_it(client, refs):
    """A character deleted while the sequence runs: the next shot cannot be made; the sequence says which and
    why, and once the character is back, redo_shot makes that shot and the sequence is joined."""
    await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
    await call(client, "save_character", {"name": "bob", "reference": str(refs["img2"])})
    started = await call(client, "generate_sequence", {
        "shots": [{"prompt": "@alice walks in", "duration": 2}, {"prompt": "@bob waves", "duration": 2,
                                                                  "characters": ["bob"]}],
        "characters": ["alice"], "resolution": "720p", "wait_seconds": 0})
    await call(client, "delete_character", {"name": "bob"})
    stopped = (await finish(client, started["structuredContent"]["task_id"]))["structuredContent"]
    assert stopped["status"] == "failed" and stopped["shots"][1]["status"] == "waiting"
    assert stopped["error"]["message"].startswith("[invalid_input] shots[1].characters[0]: no character is named "
                                                  "'bob'")
    assert stopped["stage"] == "shot 2 could not be made"
    await call(client, "save_character", {"name": "bob", "reference": str(refs["img2"])})
    await call(client, "redo_shot", {"task_id": stopped["task_id"], "shot": 2})
    done = (await finish(client, stopped["task_id"]))["structuredContent"]
    assert done["status"] == "succeeded" and media.decode(Path(done["local_path"]))["frames"] == 120


async def test_list_tasks_shows_sequences_beside_their_shots(client, refs):
    await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
    seq = await call(client, "generate_sequence", {"shots": [{"prompt": "@alice walks", "duration": 2}],
                                                   "characters": ["alice"], "resolution": "720p", "wait_seconds": 45})
    listed = (await call(client, "list_tasks", {}))["structuredContent"]
    assert listed["total"] == 2
    assert [t["task_id"] for t in listed["tasks"]] == [seq["structuredContent"]["shots"][0]["task_id"],
                                                       seq["structuredContent"]["task_id"]]  # newest first
    running = (await call(client, "list_tasks", {"status": "running"}))["structuredContent"]
    assert running == {"tasks": [], "total": 0}


async def test_a_shot_smaller_than_the_first_frame_minimum_is_carried_over_scaled_up(ds_settings, dashscope, refs):
    """A tiny clip (160x96) ends on a frame below Wan 2.7's 240 px minimum for a first frame: the carried frame is
    scaled up to the minimum, not refused."""
    dashscope.tag_results = True  # results of 160x96
    async with Client(build_server(ds_settings)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        started = await call(client, "generate_sequence", {"shots": SHOTS[:2], "characters": ["alice"],
                                                           "provider": "dashscope", "resolution": "720p"})
        done = (await finish(client, started["structuredContent"]["task_id"]))["structuredContent"]
    assert done["status"] == "succeeded", done["error"]
    import io

    from PIL import Image

    first = next(m for m in creates(dashscope)[1]["input"]["media"] if m["type"] == "first_frame")
    assert Image.open(io.BytesIO(dashscope.uploaded[first["url"][6:]]["content"])).size == (400, 240)


async def test_a_shot_whose_uploads_failed_is_made_again_on_its_own(ds_settings, dashscope, refs):
    """Nothing is made or paid when a shot's uploads fail: the sequence makes that shot again, a few times at most,
    instead of stopping."""
    dashscope.timing = Timing(pending=0.2, running=1.0)
    async with Client(build_server(ds_settings)) as client:
        await call(client, "save_character", {"name": "alice", "reference": str(refs["img1"])})
        started = await call(client, "generate_sequence", {"shots": SHOTS[:2], "characters": ["alice"],
                                                           "provider": "dashscope", "resolution": "720p",
                                                           "wait_seconds": 0})
        with anyio.fail_after(30):
            while not creates(dashscope):  # shot 1 is made (its uploads are behind it)
                await anyio.sleep(0.05)
        dashscope.fault("upload", status=503, body=b"<Error><Code>ServiceUnavailable</Code></Error>", times=3)
        done = (await finish(client, started["structuredContent"]["task_id"]))["structuredContent"]
    assert done["status"] == "succeeded", done["error"]
    assert len(done["shots"][1]["earlier_task_ids"]) == 1 and len(creates(dashscope)) == 2
