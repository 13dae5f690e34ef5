"""A throwaway PostgreSQL cluster for the tests: initdb and pg_ctl refuse to run as root, so as root they run as the
`postgres` user; a cluster of its own per test process, on a free loopback port, with a fresh database per test."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path


def binaries() -> Path | None:
    """Where initdb and pg_ctl are: `pg_config --bindir`, else Debian's /usr/lib/postgresql/<major>/bin."""
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0 and (Path(out.stdout.strip()) / "initdb").exists():
            return Path(out.stdout.strip())
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / "initdb").exists():
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def cluster() -> Iterator[str]:
    """Yields the URL of the cluster's maintenance database."""
    bindir = binaries()
    if bindir is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl): .ci/tools.sh installs them")
    as_root = os.geteuid() == 0
    user = "postgres" if as_root else None
    home = Path(tempfile.mkdtemp(prefix="r2v-pg-"))
    data = home / "data"
    if as_root:
        shutil.chown(home, "postgres")
    run = {"user": user, "capture_output": True, "text": True, "timeout": 120}
    made = subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                           "--locale=C", "--no-sync"], **run)
    if made.returncode != 0:
        raise RuntimeError(f"initdb failed: {made.stderr[-500:]}")
    for _ in range(5):  # a free port can be taken by another process before the server binds it: try another
        port = _free_port()
        started = subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(home / "log"), "start",
                                  "-o", f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off "
                                  "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"], **run)
        if started.returncode == 0:
            break
    else:
        raise RuntimeError(f"pg_ctl could not start: {(home / 'log').read_text()[-500:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], **run)
        shutil.rmtree(home, ignore_errors=True)


def fresh_database(maintenance_url: str) -> str:
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")
    return maintenance_url.rsplit("/", 1)[0] + f"/{name}"
