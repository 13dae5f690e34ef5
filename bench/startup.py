"""Time from process start to the initialize reply over stdio: wan-r2v-mcp beside a one-tool MCPServer.

Both are started the same way (`python -c ...` as a subprocess speaking JSON-RPC on stdin/stdout);
reports medians of N runs and their ratio. Our package is byte-compiled first, as an installed wheel is.
Run: python bench/startup.py [N]
"""

from __future__ import annotations

import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ANCHOR = """
from mcp.server.mcpserver import MCPServer
mcp = MCPServer("anchor")
@mcp.tool()
def ping() -> str:
    return "pong"
mcp.run()
"""
OURS = "from wan_r2v_mcp.cli import main; main([])"

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}


def time_to_initialize(code: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env)
    proc.stdin.write((json.dumps(INIT) + "\n").encode())
    proc.stdin.flush()
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    assert b'"result"' in line, line
    proc.stdin.close()
    proc.wait(timeout=10)
    return elapsed


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    # As an installed wheel is (pip compiles it): a source checkout's bytecode may be missing or stale, and with
    # PYTHONDONTWRITEBYTECODE set it would be compiled again at every start, which the anchor's never is.
    import wan_r2v_mcp

    compileall.compile_dir(os.path.dirname(wan_r2v_mcp.__file__), quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "WAN_R2V_DATA_DIR": tmp, "WAN_R2V_OUTPUT_DIR": tmp}
        ours, anchor = [], []
        for _ in range(runs):  # interleaved, so machine noise hits both alike
            anchor.append(time_to_initialize(ANCHOR, env))
            ours.append(time_to_initialize(OURS, env))
    a, o = statistics.median(anchor), statistics.median(ours)
    print(f"anchor (one-tool MCPServer): median {a * 1000:.0f} ms of {runs}")
    print(f"wan-r2v-mcp:                 median {o * 1000:.0f} ms of {runs}")
    print(f"ratio: {o / a:.2f}x")


if __name__ == "__main__":
    main()
