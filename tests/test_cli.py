"""The command line as a person uses it: in their own folder, relative paths, words of the command line, exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cli_runner
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
    """`python -m wan_r2v_mcp <args>` in the user's folder, in a process of its own (forked, see cli_runner)."""
    return cli_runner.run(list(args), cwd=home["folder"], env=home["env"], timeout=timeout)


@pytest.mark.long
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
    assert stitched.returncode == 0 and "succeeded on preview: 2 videos stitched" in stitched.stdout

    refused = run(home, "sequence", "-s", "@bob waves")
    assert refused.returncode == 1 and "names @bob, who is not in characters" in refused.stderr
    gone = run(home, "character", "delete", "alice")
    assert gone.returncode == 0 and gone.stdout.startswith("Deleted character @alice.")


def test_configuration_mistakes_are_one_line_each_in_doctor_and_when_starting(home, tmp_path):
    bad = {**home["env"], "WAN_R2V_MAX_COST_PER_TASK": "ten", "WAN_R2V_PRICES": "{bad"}
    doctor = run({**home, "env": bad}, "doctor")
    assert doctor.returncode == 1 and doctor.stderr == ""
    assert doctor.stdout.splitlines()[1:] == [
        "problem: WAN_R2V_MAX_COST_PER_TASK is 'ten', not a number: set a number (e.g. WAN_R2V_MAX_COST_PER_TASK=5) "
        "or unset it.",
        'problem: WAN_R2V_PRICES must be JSON like {"dashscope": {"1080p": 0.14}}.',
        "The server will not start until these are fixed."]
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    wrong = {**home["env"], "WAN_R2V_PROVIDER": "dashscop", "WAN_R2V_OUTPUT_DIR": str(blocked / "videos")}
    expected = ["WAN_R2V_PROVIDER is 'dashscop', which is not a provider: use one of preview, dashscope, replicate, "
                "inferencesh, fal, or unset it.",
                "WAN_R2V_OUTPUT_DIR cannot be created or written (Not a directory): point it at a folder you can write "
                "to."]
    doctor = run({**home, "env": wrong}, "doctor")
    assert doctor.returncode == 1 and [f"problem: {line}" for line in expected] == doctor.stdout.splitlines()[1:3]
    for command in (["serve"], [], ["tasks"], ["serve", "--transport", "http"]):
        started = run({**home, "env": wrong}, *command)  # stdin is empty
        assert started.returncode == 2 and started.stdout == ""
        assert started.stderr.splitlines() == [f"wan-r2v-mcp: {line}" for line in expected], command  # no traceback


def test_a_ready_config_for_each_client(home):
    env = {**home["env"], "DASHSCOPE_API_KEY": "sk-abcdef0123456789"}
    for client, key in (("claude-desktop", "mcpServers"), ("claude-code", "mcpServers"), ("cursor", "mcpServers"),
                        ("vscode", "servers"), ("windsurf", "mcpServers"), ("zed", "context_servers")):
        out = run({**home, "env": env}, "config", "--client", client)
        assert out.returncode == 0 and out.stderr.startswith("Add this to "), client
        config = json.loads(out.stdout)
        server = config[key]["wan-r2v"]
        assert Path(server["command"]).is_absolute()  # desktop apps do not see the shell's PATH
        assert "sk-abcdef" not in out.stdout  # a key is asked for, never printed
        assert list(server["env"]) == ["DASHSCOPE_API_KEY"], client
    vscode = json.loads(run({**home, "env": env}, "config", "--client", "vscode").stdout)
    assert vscode["inputs"] == [{"type": "promptString", "id": "dashscope-key", "password": True,
                                 "description": "DashScope (Alibaba Model Studio) API key"}]
    assert vscode["servers"]["wan-r2v"]["env"] == {"DASHSCOPE_API_KEY": "${input:dashscope-key}"}
    team = json.loads(run(home, "config", "--client", "windsurf", "--http", "https://r2v.example.com/mcp").stdout)
    assert team == {"mcpServers": {"wan-r2v": {"serverUrl": "https://r2v.example.com/mcp",
                                               "headers": {"Authorization": "Bearer ${env:R2V_TOKEN}"}}}}
    # The command it prints really starts this server.
    desktop = json.loads(run(home, "config", "--client", "claude-desktop").stdout)["mcpServers"]["wan-r2v"]
    started = subprocess.run([desktop["command"], *desktop["args"], "--version"], capture_output=True, text=True,
                             timeout=60)
    assert started.stdout.startswith("wan-r2v-mcp ")


def test_uvx_on_the_path_is_not_printed_unless_it_started_this_server(home, tmp_path):
    """Issue #19: with uv installed, the printed `uvx wan-r2v-mcp` failed ("not found in the package registry")."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "uvx"
    fake.write_text("#!/bin/sh\necho 'error: wan-r2v-mcp was not found in the package registry' >&2\nexit 2\n")
    fake.chmod(0o755)
    env = {**home["env"], "PATH": f"{bin_dir}{os.pathsep}{home['env'].get('PATH', '')}"}
    printed = json.loads(run({**home, "env": env}, "config", "--client", "claude-desktop").stdout)
    server = printed["mcpServers"]["wan-r2v"]
    assert Path(server["command"]).resolve() != fake.resolve()
    started = subprocess.run([server["command"], *server["args"], "--version"], capture_output=True, text=True,
                             timeout=60)
    assert started.returncode == 0 and started.stdout.startswith("wan-r2v-mcp "), started.stderr


def test_exit_codes_say_whether_the_command_did_its_job(home):
    made = run(home, "generate", "Image 1 waves", "-i", "alice.png", "--duration", "2", "--resolution", "720p",
               "--json")
    assert made.returncode == 0, made.stderr
    task = json.loads(made.stdout)["task_id"]
    assert run(home, "get", task).returncode == 0
    assert run(home, "cancel", task).returncode == 0  # nothing left to cancel is not a failure
    refused = run(home, "generate", "Image 1 waves", "-i", "nothere.png")
    assert refused.returncode == 1 and "reference_images[0]: file not found" in refused.stderr
    assert run(home, "get", "r2v_unknown").returncode == 1
    running = run(home, "generate", "Image 1 sleeps", "-i", "alice.png", "--duration", "15", "--wait", "0")
    assert running.returncode == 0
    assert "Follow it with: wan-r2v-mcp get r2v_" in running.stdout and "--wait 600" in running.stdout
    assert "get_task(" not in running.stdout
    task = running.stdout.split("wan-r2v-mcp get ")[1].split()[0]
    canceled = run(home, "cancel", task)
    assert canceled.returncode == 0 and "canceled" in canceled.stdout


def test_the_stdio_server_started_by_hand_says_once_what_it_waits_for(home):
    import pty
    import select
    import signal
    import time

    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "wan_r2v_mcp"], stdin=follower, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=home["env"], text=True)
    try:
        ready, _, _ = select.select([proc.stderr], [], [], 30)
        assert ready, "nothing on stderr"
        line = proc.stderr.readline()
        assert line.startswith("wan-r2v-mcp: an MCP server, waiting for an MCP client on stdin")
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)  # Ctrl+C stops it, though its stdin reader is blocked on the terminal
        assert proc.wait(timeout=30) == 130
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
        os.close(follower)


@pytest.mark.long
def test_at_a_terminal_one_progress_bar_fits_80_columns_through_a_long_wait(home):
    """stderr on a terminal: the bar redraws in place (carriage returns), never wider than 80 columns, and is not
    started again by each 50 s get_task call behind a long --wait (one newline at the end, not one per call)."""
    import pty
    import select

    leader, follower = pty.openpty()
    # a call ends every half second: a render of 5 s of video spans several
    env = {**home["env"], "WAN_R2V_WAIT_CAP": "0.5", "WAN_R2V_PROGRESS_INTERVAL": "0.1"}
    proc = subprocess.Popen([sys.executable, "-m", "wan_r2v_mcp", "generate", "Image 1 waves", "-i", "alice.png",
                             "--duration", "5", "--resolution", "720p"], cwd=home["folder"], env=env,
                            stdout=subprocess.PIPE, stderr=follower, text=True)
    os.close(follower)
    drawn = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the command ended and closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    out, _ = proc.communicate(timeout=60)
    os.close(leader)
    assert proc.returncode == 0 and "succeeded on preview" in out
    screen = drawn.decode().replace("\r\n", "\n")
    assert screen.count("\n") == 1 and screen.endswith("\n")  # one bar, ended once
    frames = [f for f in screen.rstrip("\n").split("\r") if f]
    assert len(frames) > 3 and all(len(f) <= 80 for f in frames)


def test_allowed_folders_as_a_json_list_work_with_relative_paths_and_a_broken_list_is_one_line(home):
    listed = run({**home, "env": {**home["env"], "WAN_R2V_ALLOWED_DIRS": json.dumps([str(home["out"])])}},
                 "references", "-i", "alice.png", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout)["ok"] is True
    broken = run({**home, "env": {**home["env"], "WAN_R2V_ALLOWED_DIRS": "[oops"}}, "tasks")
    assert broken.returncode == 2 and broken.stderr == (
        "wan-r2v-mcp: WAN_R2V_ALLOWED_DIRS starts with [ but is not a JSON list of folders: write "
        "[\"/path/one\", \"/path/two\"], or the folders separated by ':'.\n")


def test_doctor_live_checks_each_key_with_its_hosts_free_call_and_says_what_to_change(home, dashscope, replicate,
                                                                                      inferencesh, fal):
    from conftest import DASHSCOPE_KEY, FAL_KEY, INFERENCE_KEY, REPLICATE_KEY

    env = {**home["env"], "DASHSCOPE_API_KEY": DASHSCOPE_KEY, "DASHSCOPE_BASE_URL": dashscope.base_url,
           "REPLICATE_API_TOKEN": REPLICATE_KEY, "REPLICATE_BASE_URL": replicate.base_url,
           "INFERENCE_API_KEY": INFERENCE_KEY, "INFERENCE_BASE_URL": inferencesh.root, "FAL_KEY": FAL_KEY,
           "FAL_QUEUE_URL": fal.root, "FAL_REST_URL": fal.root}
    done = run({**home, "env": env}, "doctor", "--live")
    live = [line for line in done.stdout.splitlines() if line.startswith("live")]
    assert done.returncode == 0, done.stdout
    assert sorted(line.split(":")[1].strip() for line in live) == ["dashscope", "fal", "inferencesh", "preview", "replicate"]
    assert any(line.startswith("live: dashscope: the key works in singapore; temporary storage for local files "
                               "answers") for line in live)
    assert all(not line.startswith("live problem") for line in live)
    # Nothing was created or paid at any host.
    assert not dashscope.tasks and not dashscope.uploaded
    assert not replicate.calls(method="POST") or all("predictions" not in c.path for c in replicate.calls(method="POST"))
    assert not inferencesh.calls("/apps/run") and not fal.calls("/fal-ai/", "POST")

    wrong = run({**home, "env": {**env, "DASHSCOPE_API_KEY": "sk-wrong0123456789abcdef"}}, "doctor", "--live")
    assert wrong.returncode == 1
    line = next(line for line in wrong.stdout.splitlines() if line.startswith("live problem: dashscope"))
    assert "DashScope refused the API key" in line and "Fix: keys are bound to a region" in line
    assert "sk-wrong" not in wrong.stdout


def test_a_video_from_a_prompt_alone_from_the_command_line(home):
    made = run(home, "t2v", "A lighthouse at dusk", "--audio", "alice.wav", "--duration", "2", "--resolution", "720p",
               "--ratio", "1:1", "--json")
    assert made.returncode == 0, made.stderr
    view = json.loads(made.stdout)
    assert (view["status"], view["output"], view["request"]["prompt"]) == (
        "succeeded", {"width": 960, "height": 960, "seconds": 2.0}, "A lighthouse at dusk")
    assert [(r["label"], r["source"]) for r in view["references"]] == [("Audio", str(home["folder"] / "alice.wav"))]
    assert Path(view["local_path"]).parent == home["out"] and Path(view["local_path"]).stat().st_size > 0
    refused = run(home, "t2v", "A lighthouse", "--provider", "inferencesh", "--ratio", "9:16")
    assert refused.returncode == 1 and "INFERENCE_API_KEY is not set" in refused.stderr


def test_takes_from_the_command_line_name_their_contact_sheet_and_a_pick_changes_the_video(home):
    """Issue #23: --variants N, the contact sheet's path in the output, and `pick`."""
    made = run(home, "generate", "Image 1 waves", "-i", "alice.png", "--variants", "2", "--duration", "2",
               "--resolution", "720p", "--seed", "5")
    assert made.returncode == 0, made.stderr
    sheet = re.search(r"Contact sheet \(the takes side by side\): (\S+\.jpg)\.", made.stdout)
    assert sheet and Path(sheet.group(1)).parent == home["out"] and Path(sheet.group(1)).is_file()
    assert "take 1 (seed 5) succeeded" in made.stdout and "take 2 (seed 6) succeeded" in made.stdout
    assert "wan-r2v-mcp pick TASK_ID N makes another take the group's video." in made.stdout
    group = re.search(r"Group (tk_\S+) succeeded", made.stdout).group(1)
    picked = run(home, "pick", group, "2", "--json")
    assert picked.returncode == 0, picked.stderr
    view = json.loads(picked.stdout)
    assert [t["picked"] for t in view["takes"]] == [False, True] and view["local_path"] == view["takes"][1]["local_path"]
    wrong = run(home, "pick", group, "1", "2", "3")
    assert wrong.returncode == 2 and "pick takes SHOT TAKE for a sequence, or TAKE for a group" in wrong.stderr


def test_every_request_that_arrived_is_answered_when_the_client_closes_stdin_right_after(home):
    """Requests piped in and stdin closed at once (issue #24): the SDK cancels what is still running at the end of
    input; a preview generation that waits a moment is certainly still running then, and is answered all the same,
    with every other request, before the server exits."""
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "pipe", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "generate_t2v", "arguments": {
            "prompt": "A lighthouse at dusk", "duration": 2, "resolution": "720p", "wait_seconds": 1}}},
    ]
    served = subprocess.run([sys.executable, "-m", "wan_r2v_mcp"], input="".join(json.dumps(m) + "\n" for m in messages),
                            cwd=home["folder"], env=home["env"], capture_output=True, text=True, timeout=120)
    answers = {a["id"]: a for a in map(json.loads, served.stdout.splitlines())}
    assert served.returncode == 0, served.stderr
    assert sorted(answers) == [1, 2, 3]
    assert "generate_t2v" in [t["name"] for t in answers[2]["result"]["tools"]]
    made = answers[3]["result"]
    assert made["isError"] is False and made["structuredContent"]["task_id"].startswith("r2v_")


def test_wan3_from_the_command_line_is_drafted_with_its_own_length_and_a_wrong_model_is_named(home):
    made = run(home, "generate", "Image 1 waves", "-i", "alice.png", "--model", "wan3.0-video", "--duration", "20",
               "--resolution", "720p", "--dry-run", "--json")
    assert made.returncode == 0, made.stderr
    view = json.loads(made.stdout)
    assert (view["request"]["model"], view["payload"]["model"], view["payload"]["duration"]) == (
        "wan3.0-video", "wan3.0-video (offline preview)", 20)
    wrong = run(home, "generate", "Image 1 waves", "-i", "alice.png", "--model", "wan4", "--dry-run")
    assert wrong.returncode == 1 and "model: 'wan4' is not an accepted value. Limit: one of 'wan2.7-r2v' or " \
        "'wan3.0-video'" in wrong.stderr, wrong.stderr
