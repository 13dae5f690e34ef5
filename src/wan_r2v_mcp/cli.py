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
import sys
from typing import Any

from . import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wan-r2v-mcp", description="MCP server for Wan 2.7 reference-to-video.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the MCP server (the default: stdio)")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"),
                       help="address to listen on over HTTP (anything but loopback needs WAN_R2V_HTTP_TOKENS or OAuth)")
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))

    gen = sub.add_parser("generate", help="make a video from references")
    gen.add_argument("prompt", help='what happens, naming references "Image 1", "Video 1"')
    gen.add_argument("-i", "--image", action="append", default=[], help="a reference image (repeat for more)")
    gen.add_argument("-v", "--video", action="append", default=[], help="a reference video (repeat for more)")
    gen.add_argument("--first-frame")
    gen.add_argument("--voice", action="append", default=[], metavar="LABEL=AUDIO",
                     help='a voice for a reference, e.g. "Video 1=alice.wav"')
    gen.add_argument("--negative-prompt")
    gen.add_argument("--resolution", choices=["720p", "1080p"])
    gen.add_argument("--ratio", dest="aspect_ratio", choices=["16:9", "9:16", "1:1", "4:3", "3:4"])
    gen.add_argument("--duration", type=int)
    gen.add_argument("--shot-type", choices=["single", "multi"])
    gen.add_argument("--seed", type=int)
    gen.add_argument("--watermark", action="store_true", default=None)
    gen.add_argument("--prompt-extend", action=argparse.BooleanOptionalAction, default=None)
    gen.add_argument("--provider")
    gen.add_argument("--wait", type=float, default=None, help="seconds to wait (default: until it is done)")
    gen.add_argument("--dry-run", action="store_true")
    gen.add_argument("--allow-duplicate", action="store_true")
    gen.add_argument("--json", action="store_true", help="print the task view as JSON")

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

    sub.add_parser("doctor", help="what this server sees: keys, folders, ledger, media libraries, a client config")

    refs = sub.add_parser("references", help="label and check references, or list a folder's media")
    refs.add_argument("-i", "--image", action="append", default=[])
    refs.add_argument("-v", "--video", action="append", default=[])
    refs.add_argument("--first-frame")
    refs.add_argument("--prompt")
    refs.add_argument("--directory")
    refs.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.command in (None, "serve") else logging.WARNING,
                        stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

    if args.command in (None, "serve"):
        from .config import Settings
        from .server import build_server

        if getattr(args, "transport", "stdio") == "http":
            sys.exit(_serve_http(args.host, args.port))
        build_server(Settings()).run()
        return

    if args.command == "doctor":
        sys.exit(doctor())

    import anyio

    sys.exit(anyio.run(_run_command, args))


def _serve_http(host: str, port: int) -> int:
    """Streamable HTTP on /mcp, with /health and the signed /videos/ links."""
    import uvicorn
    from pydantic import ValidationError

    from .config import Settings
    from .server import http_app

    try:
        app = http_app(Settings(), host)
    except (ValueError, ValidationError) as exc:
        message = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        print(f"wan-r2v-mcp: {message.removeprefix('Value error, ')}", file=sys.stderr)
        return EXIT_USAGE
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=True, forwarded_allow_ips="*")
    return EXIT_OK


def doctor() -> int:
    """Print what the server would use, without secrets, and a client config that avoids `spawn uvx ENOENT`."""
    import shutil

    from .config import PROVIDER_KEYS, Settings
    from .providers import available, provider_class

    settings = Settings()
    problems = 0
    print(f"wan-r2v-mcp {__version__}, Python {sys.version.split()[0]}")
    print(f"default provider: {settings.default_provider}")
    for name in available():
        caps = provider_class(name).capabilities
        if caps.key_env is None:
            print(f"  {name}: ready (offline, no key)")
        else:
            state = "key set" if settings.api_key(name) else f"no key ({caps.key_env} not set)"
            print(f"  {name}: {state}")
    print(f"dashscope region: {settings.dashscope_region}" +
          (f", base URL {settings.dashscope_base_url}" if settings.dashscope_base_url else ""))
    for label, folder in (("ledger", settings.ledger_path.parent), ("output", settings.videos_dir)):
        writable = os.access(folder, os.W_OK)
        problems += not writable
        print(f"{label} folder: {folder} ({'writable' if writable else 'NOT WRITABLE'})")
    print("reference folders: " + ", ".join(str(r) for r in settings.folders().roots))
    try:
        import av
        import PIL

        print(f"media: PyAV {av.__version__}, Pillow {PIL.__version__}, H.264 encoder "
              f"{'present' if 'libx264' in av.codecs_available else 'MISSING'}")
    except ImportError as exc:
        problems += 1
        print(f"media: MISSING ({exc})")
    uvx = shutil.which("uvx")
    env = {provider_class(n).capabilities.key_env: "..." for n in PROVIDER_KEYS if settings.api_key(n)}
    config = {"mcpServers": {"wan-r2v": {"command": uvx or "uvx", "args": ["wan-r2v-mcp"], **({"env": env} if env else {})}}}
    print("Claude Desktop config (absolute uvx path, so desktop apps find it):")
    print(json.dumps(config, indent=2))
    if not uvx:
        print("note: uvx is not on PATH here; install uv, or point \"command\" at this environment's wan-r2v-mcp: "
              f"{shutil.which('wan-r2v-mcp') or sys.executable + ' -m wan_r2v_mcp'}")
    return EXIT_FAILED if problems else EXIT_OK



async def _run_command(args: argparse.Namespace) -> int:
    from mcp import Client

    from .server import build_server

    async with Client(build_server()) as client:
        if args.command == "generate":
            voices = {}
            for item in args.voice:
                label, sep, path = item.partition("=")
                if not sep:
                    print(f'--voice takes LABEL=AUDIO, e.g. "Video 1=alice.wav" (got {item!r})', file=sys.stderr)
                    return EXIT_USAGE
                voices[label.strip()] = path.strip()
            call: dict[str, Any] = {
                "prompt": args.prompt, "reference_images": args.image, "reference_videos": args.video,
                "first_frame": args.first_frame, "voices": voices, "negative_prompt": args.negative_prompt,
                "resolution": args.resolution, "aspect_ratio": args.aspect_ratio, "duration": args.duration,
                "shot_type": args.shot_type, "seed": args.seed, "watermark": args.watermark,
                "prompt_extend": args.prompt_extend, "provider": args.provider, "dry_run": args.dry_run,
                "allow_duplicate": args.allow_duplicate,
            }
            call = {k: v for k, v in call.items() if v not in (None, [], {})}
            wait = float("inf") if args.wait is None else args.wait
            call["wait_seconds"] = min(wait, 50.0)
            result = await _tool(client, "generate_r2v", call)
            return await _follow(client, result, wait - call["wait_seconds"], args.json)
        if args.command == "get":
            result = await _tool(client, "get_task", {"task_id": args.task_id, "wait_seconds": min(args.wait, 50.0)})
            return await _follow(client, result, args.wait - min(args.wait, 50.0), args.json)
        if args.command == "cancel":
            return _print(await _tool(client, "cancel_task", {"task_id": args.task_id}), args.json)
        if args.command == "tasks":
            call = {"limit": args.limit} | ({"status": args.status} if args.status else {})
            return _print(await _tool(client, "list_tasks", call), args.json)
        call = {"reference_images": args.image, "reference_videos": args.video, "first_frame": args.first_frame,
                "prompt": args.prompt, "directory": args.directory}
        return _print(await _tool(client, "list_references", {k: v for k, v in call.items() if v}), args.json)


async def _tool(client: Any, name: str, arguments: dict[str, Any]) -> Any:
    bar = _ProgressBar()
    try:
        return await client.call_tool(name, arguments, progress_callback=bar.update)
    finally:
        bar.close()


async def _follow(client: Any, result: Any, more_seconds: float, as_json: bool) -> int:
    """Keep asking get_task (50 s at a time) while the task runs and the caller wants to wait."""
    view = result.structured_content or {}
    while not result.is_error and view.get("status") in ("queued", "running") and more_seconds > 0 \
            and not view.get("dry_run"):
        step = min(more_seconds, 50.0)
        more_seconds -= step
        result = await _tool(client, "get_task", {"task_id": view["task_id"], "wait_seconds": step})
        view = result.structured_content or {}
    return _print(result, as_json)


def _print(result: Any, as_json: bool) -> int:
    if as_json and result.structured_content is not None:
        print(json.dumps(result.structured_content, indent=2, ensure_ascii=False))
    else:
        for block in result.content:
            if getattr(block, "type", "") == "text":
                print(block.text.removeprefix("Error executing tool "))
    status = (result.structured_content or {}).get("status")
    return EXIT_FAILED if result.is_error or status in ("failed", "canceled") else EXIT_OK


class _ProgressBar:
    """Progress on stderr: a bar on a terminal, a line per update otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.drawn = False

    async def update(self, progress: float, total: float | None, message: str | None) -> None:
        fraction = progress / total if total else 0.0
        if self.tty:
            filled = int(fraction * 30)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%} {(message or '')[:70]:<70}")
            self.drawn = True
        else:
            sys.stderr.write(f"{fraction:.0%} {message or ''}\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
