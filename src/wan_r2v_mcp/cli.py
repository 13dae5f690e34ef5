"""Command line: `wan-r2v-mcp` (or `wan-r2v-mcp serve`) runs the stdio server."""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="wan-r2v-mcp", description="MCP server for Wan 2.7 reference-to-video.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the MCP server (default: stdio)")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry full URLs

    from .server import build_server

    server = build_server()
    if getattr(args, "transport", "stdio") == "http":
        server.run("streamable-http", host=args.host, port=args.port)
    else:
        server.run()
