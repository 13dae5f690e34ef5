"""The command line as a user runs it, `python -m wan_r2v_mcp ...` in a process of its own, started quickly.

Each run is a new process with its own environment, folder, exit code and output files, as a subprocess is; it is
forked from a server process that imported the package and the SDK once (multiprocessing's forkserver, which forks
from a process with no other threads), so a run does not spend a second and a half of CPU importing them again:
the suite runs the command line some thirty times on two cores.
"""

from __future__ import annotations

import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

_forkserver = multiprocessing.get_context("forkserver")
_forkserver.set_forkserver_preload(["mcp", "wan_r2v_mcp.cli", "wan_r2v_mcp.server"])


def _command(args: list[str], cwd: str, env: dict[str, str], out: str, err: str) -> None:
    """In the new process: the folder, environment and output a subprocess would get, then `python -m wan_r2v_mcp`.
    Its SystemExit is the process's exit code (multiprocessing's own handling)."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    for path, fd in ((out, 1), (err, 2)):
        target = os.open(path, os.O_WRONLY)
        os.dup2(target, fd)
        os.close(target)
    sys.argv = ["wan_r2v_mcp", *args]
    runpy.run_module("wan_r2v_mcp", run_name="__main__", alter_sys=True)


def run(args: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """What `subprocess.run([sys.executable, "-m", "wan_r2v_mcp", *args], capture_output=True, text=True)` returns;
    stdin is empty (/dev/null)."""
    with tempfile.TemporaryDirectory(prefix="r2v-cli-") as folder:
        out, err = Path(folder, "stdout"), Path(folder, "stderr")
        out.touch()
        err.touch()
        process = _forkserver.Process(target=_command, args=(list(args), str(cwd), dict(env), str(out), str(err)))
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(["wan-r2v-mcp", *args], timeout, out.read_text(), err.read_text())
        return subprocess.CompletedProcess(["wan-r2v-mcp", *args], process.exitcode, out.read_text(), err.read_text())
