"""Command line: the MCP server, and the same jobs for a person at a terminal.

`wan-r2v-mcp` (or `wan-r2v-mcp serve`) runs the stdio server. `generate`, `get`, `tasks`, `cancel` and
`references` call the very same tools through an in-process MCP client, so the terminal and an agent
see the same validation, ledger and results.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from . import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wan-r2v-mcp", description="MCP server for Wan 2.7 reference-to-video.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the MCP server (the default: stdio)")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--host", default=None, help="address to listen on over HTTP (default WAN_R2V_HOST, else "
                       "127.0.0.1; anything but loopback needs WAN_R2V_HTTP_TOKENS or OAuth)")
    serve.add_argument("--port", type=int, default=None, help="default WAN_R2V_PORT or $PORT, else 8000")

    gen = sub.add_parser("generate", help="make a video from references")
    gen.add_argument("prompt", help='what happens, naming references "Image 1", "Video 1"')
    gen.add_argument("-i", "--image", action="append", default=[], help="a reference image (repeat for more)")
    gen.add_argument("-v", "--video", action="append", default=[], help="a reference video (repeat for more)")
    gen.add_argument("--first-frame")
    gen.add_argument("-c", "--character", action="append", default=[],
                     help="a saved character, named @name in the prompt (repeat for more)")
    gen.add_argument("--voice", action="append", default=[], metavar="LABEL=AUDIO",
                     help='a voice for a reference, e.g. "Video 1=alice.wav"')
    gen.add_argument("--shot-type", choices=["single", "multi"])
    gen.add_argument("--model", help="wan3.0-video: Wan 3.0's reference mode (preview; up to 30 s, 10 images); "
                                     "default wan2.7-r2v")
    t2v = sub.add_parser("t2v", help="make a video from a prompt alone (text-to-video)")
    t2v.add_argument("prompt", help="what happens")
    t2v.add_argument("--audio", help="a wav or mp3 the video follows (2-30 s)")
    i2v = sub.add_parser("i2v", help="animate an image, or continue a clip (image-to-video)")
    i2v.add_argument("prompt", help="what happens")
    i2v.add_argument("--first-frame", help="the image it opens on")
    i2v.add_argument("--last-frame", help="an image it ends on")
    i2v.add_argument("--first-clip", help="a clip to continue (2-10 s), instead of --first-frame")
    i2v.add_argument("--driving-audio", help="a wav or mp3 that speech and motion follow (with --first-frame)")
    i2v.add_argument("-c", "--character", help="a saved character: its image opens the video, its voice drives it")
    vedit = sub.add_parser("edit", help="restyle or change a clip (video editing)")
    vedit.add_argument("prompt", help='what to change, e.g. "make it a watercolour"')
    vedit.add_argument("video", help="the clip to edit (2-10 s)")
    vedit.add_argument("-i", "--image", action="append", default=[], help="a reference image (up to 4)")
    vedit.add_argument("--audio-setting", choices=["auto", "origin"], help="origin keeps the clip's sound")
    for made in (gen, t2v, i2v, vedit):  # what every generation takes alike
        made.add_argument("--negative-prompt")
        made.add_argument("--resolution", choices=["720p", "1080p"])
        if made is not i2v:  # image-to-video takes its shape from the frame or clip
            made.add_argument("--ratio", dest="aspect_ratio", choices=["16:9", "9:16", "1:1", "4:3", "3:4"])
        made.add_argument("--duration", type=int, help="0 keeps the whole clip" if made is vedit else None)
        made.add_argument("--seed", type=int)
        made.add_argument("--watermark", action="store_true", default=None)
        made.add_argument("--prompt-extend", action=argparse.BooleanOptionalAction, default=None)
        made.add_argument("--provider")
        made.add_argument("--wait", type=float, default=None, help="seconds to wait (default: until it is done)")
        made.add_argument("--dry-run", action="store_true")
        made.add_argument("--allow-duplicate", action="store_true")
        made.add_argument("--variants", type=int, metavar="N",
                          help="make N takes (1-4), each with its own seed; the output names the contact sheet")
        made.add_argument("--json", action="store_true", help="print the task view as JSON")

    get = sub.add_parser("get", help="a task's state; waits for it with --wait")
    get.add_argument("task_id")
    get.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the end (default: do not wait)")
    get.add_argument("--json", action="store_true")

    tasks = sub.add_parser("tasks", help="recent tasks, newest first")
    tasks.add_argument("--limit", type=int, default=20)
    tasks.add_argument("--status", choices=["queued", "running", "succeeded", "failed", "canceled"])
    tasks.add_argument("--json", action="store_true")

    cancel = sub.add_parser("cancel", help="cancel a task")
    cancel.add_argument("task_id")
    cancel.add_argument("--json", action="store_true")

    character = sub.add_parser("character", help="saved characters: save, list, delete")
    csub = character.add_subparsers(dest="action", required=True)
    save = csub.add_parser("save", help="keep a character by name (an image or a clip, and a voice)")
    save.add_argument("name")
    save.add_argument("reference", help="an image or a clip of the character")
    save.add_argument("--voice", help="a voice sample (wav or mp3, 1-10 s)")
    save.add_argument("--description", default="")
    save.add_argument("--replace", action="store_true", help="overwrite a character of that name")
    save.add_argument("--json", action="store_true")
    listed = csub.add_parser("list", help="the saved characters")
    listed.add_argument("--json", action="store_true")
    delete = csub.add_parser("delete", help="forget a character")
    delete.add_argument("name")
    delete.add_argument("--json", action="store_true")

    seq = sub.add_parser("sequence", help="several shots joined into one video")
    seq.add_argument("-s", "--shot", action="append", default=[], metavar="PROMPT",
                     help='a shot, in order (repeat), naming characters as @name, e.g. -s "@alice walks in"')
    seq.add_argument("--shots-file", help='a JSON list of shots: [{"prompt": "...", "duration": 5}, ...]')
    seq.add_argument("--duration", type=int, help="seconds per shot given with -s (default 5)")
    seq.add_argument("-c", "--character", action="append", default=[], help="a saved character (repeat)")
    seq.add_argument("--continuity", choices=["auto", "frame", "clip", "none"], default="auto",
                     help="how each shot carries on from the one before: frame (opens on its last frame), clip "
                          "(continues its last 2 s with wan2.7-i2v, billed), auto (frame where the host can), none")
    seq.add_argument("--no-continuity", dest="continuity", action="store_const", const="none",
                     help="the same as --continuity none: hard cuts")
    seq.add_argument("--negative-prompt")
    seq.add_argument("--resolution", choices=["720p", "1080p"])
    seq.add_argument("--ratio", dest="aspect_ratio", choices=["16:9", "9:16", "1:1", "4:3", "3:4"])
    seq.add_argument("--seed", type=int)
    seq.add_argument("--provider")
    seq.add_argument("--wait", type=float, default=None, help="seconds to wait (default: until it is done)")
    seq.add_argument("--dry-run", action="store_true")
    seq.add_argument("--json", action="store_true")

    redo = sub.add_parser("redo", help="make one shot of a sequence again, and join it again")
    redo.add_argument("task_id", help="the sequence (seq_...)")
    redo.add_argument("shot", type=int, help="which shot, from 1")
    redo.add_argument("--prompt")
    redo.add_argument("--seed", type=int)
    redo.add_argument("--wait", type=float, default=None, help="seconds to wait (default: until it is done)")
    redo.add_argument("--json", action="store_true")

    pick = sub.add_parser("pick", help="choose the take a group of takes, or a sequence's shot, uses")
    pick.add_argument("task_id", help="a group of takes (tk_...) or a sequence (seq_...)")
    pick.add_argument("numbers", type=int, nargs="+", metavar="[SHOT] TAKE",
                      help="for a sequence, the shot and then the take; for a group, the take (each from 1)")
    pick.add_argument("--wait", type=float, default=None, help="seconds to wait for a sequence's join "
                      "(default: until it is done)")
    pick.add_argument("--json", action="store_true")

    stitch = sub.add_parser("stitch", help="join finished tasks' videos into one")
    stitch.add_argument("task_ids", nargs="+")
    stitch.add_argument("--json", action="store_true")

    doctor_ = sub.add_parser("doctor", help="what this server sees (keys, folders, media libraries) and any "
                                            "configuration mistake")
    doctor_.add_argument("--live", action="store_true", help="also check each configured key with its host's free "
                         "call (nothing is paid)")
    config = sub.add_parser("config", help="print a client's ready configuration block, and the file it goes in")
    config.add_argument("--client", required=True,
                        choices=["claude-desktop", "claude-code", "cursor", "vscode", "windsurf", "zed"])
    config.add_argument("--http", metavar="URL", help="a team server's /mcp address instead of a local process")

    refs = sub.add_parser("references", help="label and check references, or list a folder's media")
    refs.add_argument("-i", "--image", action="append", default=[])
    refs.add_argument("-v", "--video", action="append", default=[])
    refs.add_argument("--first-frame")
    refs.add_argument("--prompt")
    refs.add_argument("--directory")
    refs.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> None:
    given = sys.argv[1:] if argv is None else argv
    # No arguments is how every client launches the server: serve stdio without building the whole parser.
    args = argparse.Namespace(command=None) if not given else _parser().parse_args(given)
    logging.basicConfig(level=logging.INFO if args.command in (None, "serve") else logging.WARNING,
                        stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

    if args.command not in (None, "serve") and hasattr(__import__("signal"), "SIGPIPE"):
        import signal  # a command piped into `head` ends quietly, as command-line tools do

        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if args.command == "doctor":
        sys.exit(doctor(live=args.live))
    if args.command == "config":
        sys.exit(client_config(args.client, args.http))
    settings = _settings_or_exit()
    if args.command in (None, "serve"):
        from .server import build_server

        if getattr(args, "transport", "stdio") == "http":
            sys.exit(_serve_http(settings, args.host or settings.http_host, args.port or settings.port))
        announce = sys.stdin.isatty()  # started by hand: say what it is waiting for, once
        _run_stdio(lambda: build_server(settings), announce)
        return

    import anyio

    sys.exit(anyio.run(_run_command, args, settings))


def _run_stdio(make_server: Any, announce: bool) -> None:
    """Serve over stdio until the client leaves, or Ctrl+C / SIGTERM. The stdin reader is a thread blocked in read()
    that nothing can wake, so after a signal the process ends without waiting for it. The signals are taken before
    anything is said or built, so Ctrl+C works from the moment the words are on the screen."""
    import signal
    import threading

    stopped_by: list[int] = []

    def stop(signum: int, _frame: Any) -> None:
        # The server shuts down (tasks are cancelled, the ledger closed: every write is already durable); if the
        # stdin thread still holds the process a few seconds later, end it.
        stopped_by.append(signum)
        ender = threading.Timer(1.5, os._exit, args=(128 + signum,))
        ender.daemon = True
        ender.start()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        if announce:
            print("wan-r2v-mcp: an MCP server, waiting for an MCP client on stdin (add it to your client: "
                  "wan-r2v-mcp config --client NAME; or try wan-r2v-mcp generate --help). Ctrl+C stops it.",
                  file=sys.stderr)
        import anyio

        from .stdio import run_stdio

        anyio.run(run_stdio, make_server())
    except BaseException:
        # The interrupt is raised wherever the main thread was: during start-up it may come out of a task group
        # wrapped in an exception group. Whatever ends the run after our handler ran is that interruption.
        if not stopped_by:
            raise
    if stopped_by:  # the shell's convention: 128 + the signal's number (130 for Ctrl+C)
        sys.exit(128 + stopped_by[0])


def _settings_or_exit():  # -> Settings
    """The checked settings, or one line per mistake on stderr and exit code 2: never a traceback."""
    from .config import ConfigError, load_settings
    from .providers import setting_problems

    try:
        return load_settings(checks=(setting_problems,))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"wan-r2v-mcp: {problem}.", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _serve_http(settings: Any, host: str, port: int) -> int:
    """Streamable HTTP on /mcp, with /health and the signed /videos/ links."""
    import uvicorn

    from .http_guard import server_config
    from .server import http_app

    try:
        app = http_app(settings, host)
    except ValueError as exc:
        print(f"wan-r2v-mcp: {exc}", file=sys.stderr)
        return EXIT_USAGE
    uvicorn.Server(server_config(app, host, port, proxy_headers=True, forwarded_allow_ips="*")).run()
    return EXIT_OK


def doctor(live: bool = False) -> int:
    """What the server would use, without secrets; each configuration mistake in its own words, and exit 1 if any."""
    from .config import ConfigError, load_settings
    from .providers import api_key, available, default_provider, host_settings, provider_class, setting_problems

    print(f"wan-r2v-mcp {__version__}, Python {sys.version.split()[0]}")
    try:
        settings = load_settings(checks=(setting_problems,))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"problem: {problem}.")
        print("The server will not start until these are fixed.")
        return EXIT_FAILED
    problems = 0
    print(f"default provider: {default_provider(settings)}")
    for name in available():
        caps = provider_class(name).capabilities
        if caps.key_env is None:
            print(f"  {name}: ready (offline, no key)")
        else:
            state = "key set" if api_key(settings, name) else f"no key ({caps.key_env} not set)"
            shown = host_settings(settings, name).summary()
            print(f"  {name}: {state}" + (f" ({shown})" if shown else ""))
    print(f"ledger folder: {settings.data.root} (writable)")
    print(f"output folder: {settings.videos_dir} (writable)")
    print("reference folders: " + ", ".join(str(r) for r in settings.folders().roots))
    try:
        import av
        import PIL

        print(f"media: PyAV {av.__version__}, Pillow {PIL.__version__}, H.264 encoder "
              f"{'present' if 'libx264' in av.codecs_available else 'MISSING'}")
    except ImportError as exc:
        problems += 1
        print(f"problem: a media library is missing ({exc}).")
    from .clients import launcher

    command, args = launcher()
    print(f"clients start it with: {' '.join([command, *args])}")
    print("a client's ready config: wan-r2v-mcp config --client claude-desktop (or claude-code, cursor, vscode, "
          "windsurf, zed)")
    if live:
        import anyio

        problems += anyio.run(_live_checks, settings)
    return EXIT_FAILED if problems else EXIT_OK


async def _live_checks(settings: Any) -> int:
    """Each host with a key: its free call, and what it showed or what to change. Returns the number of problems."""
    import anyio

    from .errors import R2VError
    from .providers import api_key, available, provider_class
    from .providers.registry import ProviderRegistry

    registry = ProviderRegistry(settings)
    problems = 0
    try:
        for name in available():
            caps = provider_class(name).capabilities
            if caps.key_env is not None and not api_key(settings, name):
                continue
            try:
                with anyio.fail_after(30):
                    said = await registry.get(name).check_access()
                print(f"live: {name}: {said}")
            except TimeoutError:
                problems += 1
                print(f"live problem: {name}: no answer within 30 s. Fix: check the network and the host's base URL.")
            except R2VError as exc:
                problems += 1
                print(f"live problem: {name}: {exc.message.rstrip('.')}." + (f" Fix: {exc.fix.rstrip('.')}."
                                                                           if exc.fix else ""))
    finally:
        await registry.aclose()
    return problems


def client_config(client: str, http_url: str | None) -> int:
    """Print a client's config block on stdout (ready to paste) and which file it goes in on stderr."""
    from .clients import block, host_keys, where

    keys = [var for var, _, _ in host_keys() if os.environ.get(var)]
    print(json.dumps(block(client, keys, http_url), indent=2))
    note = f"Add this to {where(client)}, merged with what is there."
    if not keys and not http_url:
        note += (" No host key is set here, so it starts with the free offline preview; add one to \"env\" "
                 "(e.g. DASHSCOPE_API_KEY) for the real model.")
    print(note, file=sys.stderr)
    return EXIT_OK


async def _run_command(args: argparse.Namespace, settings: Any) -> int:
    from mcp import Client

    from .server import build_server

    # At a terminal the folder the command runs in is the user's own: its files may be references.
    folders = [str(p) for p in settings.allowed_folders] + [os.getcwd()]  # as a JSON list: any separator in names
    settings = settings.model_copy(update={"allowed_dirs": json.dumps(folders)})
    async with Client(build_server(settings)) as client:
        if args.command in ("generate", "t2v", "i2v", "edit"):
            return await _generate(client, args)
        if args.command == "get":
            return await _follow(client, "get_task", {"task_id": args.task_id, "wait_seconds": min(args.wait, 50.0)},
                                 args.wait - min(args.wait, 50.0), args.json)
        if args.command == "cancel":
            result = await _tool(client, "cancel_task", {"task_id": args.task_id})
            _print(result, args.json)
            return EXIT_FAILED if result.is_error else EXIT_OK  # canceled, or had already ended: the job is done
        if args.command == "character":
            if args.action == "save":
                call = {"name": args.name, "reference": _local(args.reference), "voice": _local(args.voice),
                        "description": args.description, "replace": args.replace}
                return _print(await _tool(client, "save_character", {k: v for k, v in call.items() if v}), args.json)
            if args.action == "list":
                return _print(await _tool(client, "list_characters", {}), args.json)
            return _print(await _tool(client, "delete_character", {"name": args.name}), args.json)
        if args.command == "sequence":
            shots: list[Any] = [{"prompt": p} | ({"duration": args.duration} if args.duration else {}) for p in args.shot]
            if args.shots_file:
                try:
                    shots += json.loads(Path(args.shots_file).read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    print(f"--shots-file: cannot be read as a JSON list of shots ({type(exc).__name__}). Fix: "
                          '[{"prompt": "@alice walks in", "duration": 5}, ...]', file=sys.stderr)
                    return EXIT_USAGE
            call = {"shots": shots, "characters": args.character, "continuity": args.continuity,
                    "negative_prompt": args.negative_prompt, "resolution": args.resolution,
                    "aspect_ratio": args.aspect_ratio, "seed": args.seed, "provider": args.provider,
                    "dry_run": args.dry_run}
            call = {k: v for k, v in call.items() if v not in (None, [], {}, False) or k in ("shots", "continuity")}
            wait = float("inf") if args.wait is None else args.wait
            call["wait_seconds"] = min(wait, 50.0)
            return await _follow(client, "generate_sequence", call, wait - call["wait_seconds"], args.json)
        if args.command == "redo":
            wait = float("inf") if args.wait is None else args.wait
            call = {"task_id": args.task_id, "shot": args.shot, "prompt": args.prompt, "seed": args.seed,
                    "wait_seconds": min(wait, 50.0)}
            return await _follow(client, "redo_shot", {k: v for k, v in call.items() if v is not None},
                                 wait - min(wait, 50.0), args.json)
        if args.command == "pick":
            if len(args.numbers) > 2:
                print("pick takes SHOT TAKE for a sequence, or TAKE for a group of takes", file=sys.stderr)
                return EXIT_USAGE
            call = {"task_id": args.task_id, "take": args.numbers[-1]}
            if len(args.numbers) == 2:
                call["shot"] = args.numbers[0]
            wait = float("inf") if args.wait is None else args.wait
            return await _follow(client, "pick_take", call, wait, args.json)
        if args.command == "stitch":
            return _print(await _tool(client, "stitch", {"task_ids": args.task_ids}), args.json)
        if args.command == "tasks":
            call = {"limit": args.limit} | ({"status": args.status} if args.status else {})
            return _print(await _tool(client, "list_tasks", call), args.json)
        call = {"reference_images": [_local(p) for p in args.image], "reference_videos": [_local(p) for p in args.video],
                "first_frame": _local(args.first_frame), "prompt": args.prompt, "directory": _local(args.directory)}
        return _print(await _tool(client, "list_references", {k: v for k, v in call.items() if v}), args.json)


async def _generate(client: Any, args: argparse.Namespace) -> int:
    """`generate` (reference-to-video), `t2v`, `i2v` or `edit`, each through its model's tool."""
    if args.command == "t2v":
        tool, call = "generate_t2v", {"prompt": args.prompt, "audio": _local(args.audio)}
    elif args.command == "edit":
        tool, call = "edit_video", {"prompt": args.prompt, "video": _local(args.video),
                                    "reference_images": [_local(p) for p in args.image],
                                    "audio_setting": args.audio_setting}
    elif args.command == "i2v":
        tool, call = "generate_i2v", {"prompt": args.prompt, "first_frame": _local(args.first_frame),
                                      "last_frame": _local(args.last_frame), "first_clip": _local(args.first_clip),
                                      "driving_audio": _local(args.driving_audio), "character": args.character}
    else:
        voices = {}
        for item in args.voice:
            label, sep, path = item.partition("=")
            if not sep:
                print(f'--voice takes LABEL=AUDIO, e.g. "Video 1=alice.wav" (got {item!r})', file=sys.stderr)
                return EXIT_USAGE
            voices[label.strip()] = path.strip()
        tool, call = "generate_r2v", {
            "prompt": args.prompt, "reference_images": [_local(p) for p in args.image],
            "reference_videos": [_local(p) for p in args.video], "first_frame": _local(args.first_frame),
            "voices": {k: _local(v) for k, v in voices.items()}, "shot_type": args.shot_type,
            "characters": args.character, "model": args.model}
    call.update(negative_prompt=args.negative_prompt, resolution=args.resolution,
                aspect_ratio=getattr(args, "aspect_ratio", None),
                duration=args.duration, seed=args.seed, watermark=args.watermark, prompt_extend=args.prompt_extend,
                provider=args.provider, dry_run=args.dry_run, allow_duplicate=args.allow_duplicate,
                variants=args.variants)
    call = {k: v for k, v in call.items() if v not in (None, [], {})}
    wait = float("inf") if args.wait is None else args.wait
    call["wait_seconds"] = min(wait, 50.0)
    return await _follow(client, tool, call, wait - call["wait_seconds"], args.json)


def _local(path: str | None) -> str | None:
    """At a terminal a relative path means the folder the command runs in (the server's tools want absolute ones)."""
    if not path or path.lower().startswith(("https://", "http://", "data:", "file://", "~")):
        return path
    return str(Path(path).resolve()) if not Path(path).is_absolute() else path


async def _tool(client: Any, name: str, arguments: dict[str, Any], bar: _ProgressBar | None = None) -> Any:
    own = bar is None
    bar = bar or _ProgressBar()
    try:
        return await client.call_tool(name, arguments, progress_callback=bar.update)
    finally:
        if own:
            bar.close()


async def _follow(client: Any, tool: str, arguments: dict[str, Any], more_seconds: float, as_json: bool) -> int:
    """Call the tool, then keep asking get_task (50 s at a time) while the task runs and the caller wants to wait:
    one progress bar throughout, not one per call."""
    bar = _ProgressBar()
    try:
        result = await _tool(client, tool, arguments, bar)
        view = result.structured_content or {}
        while not result.is_error and view.get("status") in ("queued", "running") and more_seconds > 0 \
                and not view.get("dry_run"):
            step = min(more_seconds, 50.0)
            more_seconds -= step
            result = await _tool(client, "get_task", {"task_id": view["task_id"], "wait_seconds": step}, bar)
            view = result.structured_content or {}
    finally:
        bar.close()
    return _print(result, as_json)


# Tool-call wording in the server's texts, and what a person types instead.
_CLI_WORDS = [
    (re.compile(r'[Cc]all get_task\(task_id="([^"]+)", wait_seconds=50\) now'),
     r"Follow it with: wan-r2v-mcp get \1 --wait 600"),
    (re.compile(r"get_task\(task_id, wait_seconds=50\)"), "wan-r2v-mcp get TASK_ID --wait 600"),
    (re.compile(r"redo_shot\(task_id, shot=(\w+)\)"), r"wan-r2v-mcp redo TASK_ID \1"),
    (re.compile(r'generate_r2v\(characters=\["([^"]+)"\], prompt="@[^"]+ \.\.\."\)'),
     r'wan-r2v-mcp generate "@\1 ..." -c \1'),
    (re.compile(r'save_character\(name="([^"]+)", reference=\.\.\., replace=true\)'),
     r"wan-r2v-mcp character save \1 FILE --replace"),
    (re.compile(r"pass replace=true"), "pass --replace"),
    (re.compile(r"allow_duplicate=true"), "--allow-duplicate"),
    (re.compile(r"pick_take\(task_id, take=N\)"), "wan-r2v-mcp pick TASK_ID N"),
    (re.compile(r"dry_run=true"), "--dry-run"),
    (re.compile(r"in generate_sequence"), "in wan-r2v-mcp sequence"),
    (re.compile(r'provider="?([a-z]+)"?(?: or (?:provider=)?"?([a-z]+)"?)?'),
     lambda m: f"--provider {m.group(1)}" + (f" or --provider {m.group(2)}" if m.group(2) else "")),
    (re.compile(r"list_references\(directory=\.\.\.\)"), "wan-r2v-mcp references --directory FOLDER"),
]


def cli_words(text: str) -> str:
    for pattern, replacement in _CLI_WORDS:
        text = pattern.sub(replacement, text)
    return text


def _print(result: Any, as_json: bool) -> int:
    """Print a tool's result for a person (or as JSON); the exit code says whether it did its job."""
    if as_json and result.structured_content is not None:
        print(json.dumps(result.structured_content, indent=2, ensure_ascii=False))
    else:
        for block in result.content:
            if getattr(block, "type", "") == "text":
                print(cli_words(block.text.removeprefix("Error executing tool ")),
                      file=sys.stderr if result.is_error else sys.stdout)
    body = result.structured_content or {}
    status = body.get("status")
    refused = body.get("ok") is False  # a references check that found something to fix
    return EXIT_FAILED if result.is_error or refused or status in ("failed", "canceled") else EXIT_OK


class _ProgressBar:
    """Progress on stderr: a bar on a terminal, a line per update otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.drawn = False

    async def update(self, progress: float, total: float | None, message: str | None) -> None:
        fraction = progress / total if total else 0.0
        if self.tty:  # 80 columns: a 20-cell bar, the percentage, and the message cut to fit
            filled = int(fraction * 20)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (20 - filled)}] {fraction:4.0%} {(message or '')[:52]:<52}")
            self.drawn = True
        else:
            sys.stderr.write(f"{fraction:.0%} {message or ''}\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
