"""Slowloris: many connections that send their request heads a byte at a time, while a real client calls.

Run it (about fifteen seconds):

    .venv/bin/python tests/harness/slowloris.py --connections 200

It serves the real HTTP app on loopback (bearer tokens, the guarded h11 protocol), opens the slow connections,
then times `/health` on new connections from a normal client while they hang on, and counts how many slow
connections the server had cut off once its head deadline passed. Figures: the normal client's latencies
(median, max) under the attack, and the slow connections still open after the deadline (must be 0).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from wan_r2v_mcp import http_guard  # noqa: E402
from wan_r2v_mcp.config import Settings  # noqa: E402
from wan_r2v_mcp.server import http_app  # noqa: E402

TOKEN = "slowloris-token-0123456789abcdef"


def _serve(settings: Settings, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(http_guard.server_config(http_app(settings, "127.0.0.1"), "127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    return server, thread


def run(connections: int = 200, *, head_seconds: float = 5.0) -> dict:
    http_guard.HEADER_SECONDS = head_seconds
    folder = Path(tempfile.mkdtemp(prefix="r2v-slowloris-"))
    settings = Settings(data_dir=folder / "data", output_dir=folder / "out", http_tokens=json.dumps({TOKEN: "ops"}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server, thread = _serve(settings, port)
    slow: list[socket.socket] = []
    try:
        for _ in range(connections):
            c = socket.create_connection(("127.0.0.1", port), timeout=30)
            c.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
            slow.append(c)
        times = []
        with httpx.Client(timeout=30) as http:
            for _ in range(20):  # a new connection each time: the slow ones must not starve new clients
                t0 = time.monotonic()
                r = http.get(f"http://127.0.0.1:{port}/health", headers={"Connection": "close"})
                assert r.status_code == 200, r.status_code
                times.append(time.monotonic() - t0)
        time.sleep(head_seconds + 1.0)  # the deadline passes for every slow head
        still_open = 0
        for c in slow:
            c.settimeout(0.5)
            try:
                still_open += c.recv(1) != b""
            except (ConnectionResetError, BrokenPipeError):
                pass
            except TimeoutError:
                still_open += 1
        return {"slow_connections": connections, "normal_calls": len(times),
                "normal_median_seconds": round(statistics.median(times), 3), "normal_max_seconds": round(max(times), 3),
                "head_deadline_seconds": head_seconds, "slow_still_open_after_deadline": still_open,
                "ok": still_open == 0 and max(times) < 1.0}
    finally:
        for c in slow:
            with contextlib.suppress(OSError):
                c.close()
        server.should_exit = True
        thread.join(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=200)
    args = parser.parse_args()
    figures = run(args.connections)
    print(json.dumps(figures, indent=2))
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
