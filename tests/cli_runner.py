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
import signal
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


class Started:
    """A command line started with `start`: what the tests use of a `subprocess.Popen` (its pid, to signal it; its
    exit code; its output, once it ended, or what it wrote so far)."""

    def __init__(self, args: list[str], cwd: Path, env: Mapping[str, str]):
        self.args = ["wan-r2v-mcp", *args]
        self._folder = tempfile.TemporaryDirectory(prefix="r2v-cli-")
        self._out, self._err = Path(self._folder.name, "stdout"), Path(self._folder.name, "stderr")
        self._out.touch()
        self._err.touch()
        self._process = _forkserver.Process(target=_command, args=(list(args), str(cwd), dict(env), str(self._out),
                                                                   str(self._err)))
        self._process.start()
        self.pid = self._process.pid

    def poll(self) -> int | None:
        return self._process.exitcode

    def send_signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def kill(self) -> bool:
        """SIGKILL, as `Popen.kill`; False when it had already ended (the fork server reaps its children, so there
        is no zombie to signal)."""
        if self._process.exitcode is not None:
            return False
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def terminate(self) -> None:
        self._process.terminate()

    def stderr_so_far(self) -> str:
        return self._err.read_text()

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0, self._out.read_text(), self._err.read_text())
        return self._process.exitcode

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Its stdout and stderr once it ended (killed, with what it wrote so far, when it outlives `timeout`)."""
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.join()
            raise
        finally:
            out, err = self._out.read_text(), self._err.read_text()
            self._folder.cleanup()
        return out, err


def start(args: list[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Started:
    """`subprocess.Popen([sys.executable, "-m", "wan_r2v_mcp", *args], stdin=DEVNULL)`, output kept for
    `communicate`; the folder and environment are this process's unless given."""
    return Started(list(args), cwd or Path.cwd(), dict(os.environ if env is None else env))


def run(args: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """What `subprocess.run([sys.executable, "-m", "wan_r2v_mcp", *args], capture_output=True, text=True)` returns;
    stdin is empty (/dev/null)."""
    started = start(args, cwd=cwd, env=env)
    out, err = started.communicate(timeout)
    return subprocess.CompletedProcess(started.args, started.wait(), out, err)
