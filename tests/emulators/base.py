"""A loopback HTTP server in a thread, recording what it receives, with switches for faults.

Real sockets on 127.0.0.1, so the server under test goes through its real HTTP stack: timeouts,
dropped connections and streamed bodies behave as they would against a host.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    body_size: int = 0


@dataclass
class Fault:
    status: int | None = None  # answer with this status
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering
    delay: float = 0.0  # wait this long before answering
    hold: float = 0.0  # let the host act, then wait this long before answering (or, with partial, mid-body)
    partial: int | None = None  # send only this many body bytes, hold, then hang up
    times: int = 1
    acts: bool | None = None  # does the host act before the fault? default: not with `status`, yes otherwise
    raw: bytes | None = None  # answer with these bytes instead (a malformed body, HTML), after acting
    drip: float = 0.0  # send the body 1 KB at a time, this many seconds apart
    declare_length: int | None = None  # a Content-Length other than the body's (an oversized result)
    gate: threading.Event | None = None  # let the host act, then answer only once this is set (at most 60 s)


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON, bytes -> as is
    headers: dict[str, str] = field(default_factory=dict)


class Emulator:
    """Subclasses name each request's route (`name_of`) and answer it (`handle`); faults are keyed by route.

    A status fault answers instead of the host, so nothing happens at the host (as with a real 429); a
    drop fault lets the host act, then closes the connection unanswered (the "sent, outcome unknown" case).
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._faults: dict[str, list[Fault]] = {}
        self._lock = threading.Lock()
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                emulator._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # a host takes many connections at once; the default backlog of 5 resets them

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that hang up (as the fault switches make them) are expected here

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # shutdown() waits for the serving loop to look up: every 0.05 s, not the default 0.5 s a test would wait
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Emulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- switches

    def fault(self, route: str, **kw: Any) -> None:
        with self._lock:
            self._faults.setdefault(route, []).append(Fault(**kw))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, route: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(route) or []
            if not queue:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            return fault

    def calls(self, route_prefix: str = "", method: str | None = None) -> list[Received]:
        return [r for r in self.received if r.path.startswith(route_prefix) and (method is None or r.method == method)]

    # -- serving

    def name_of(self, req: Received) -> str:
        raise NotImplementedError

    def handle(self, req: Received) -> Reply:
        raise NotImplementedError

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        url = urlparse(h.path)
        req = Received(method=h.command, path=url.path, query={k: v[0] for k, v in parse_qs(url.query).items()},
                       headers={k.lower(): v for k, v in h.headers.items()})
        length = int(h.headers.get("content-length") or 0)
        req.body_size = length
        ctype = h.headers.get("content-type", "")
        if length and ctype.startswith("multipart/form-data"):
            boundary = ctype.split("boundary=", 1)[1].strip('"').encode()
            req.form, req.files = _read_multipart(h.rfile, length, boundary)
        elif length:
            raw = h.rfile.read(length)
            try:
                req.json = json.loads(raw)
            except ValueError:
                req.json = None
                req.files["body"] = {"size": len(raw), "sha256": hashlib.sha256(raw).hexdigest(),
                                     "content": raw if len(raw) <= 4 << 20 else None}  # kept whole, as multipart
        with self._lock:
            self.received.append(req)
        fault = self._take_fault(self.name_of(req))
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        acts = fault is None or (fault.acts if fault.acts is not None else fault.status is None)
        reply = self.handle(req) if acts else Reply(502)
        if fault is not None and fault.status is not None:
            reply = Reply(fault.status, fault.body, fault.headers)
        if fault is not None and fault.raw is not None:
            reply = Reply(reply.status if fault.status is None else fault.status, fault.raw,
                          {**{k: v for k, v in reply.headers.items() if k.lower() != "content-type"}, **fault.headers})
        elif fault is not None and fault.headers and fault.status is None:
            reply = Reply(reply.status, reply.body, {**reply.headers, **fault.headers})
        if fault is not None and fault.hold and fault.partial is None:
            time.sleep(fault.hold)
        if fault is not None and fault.gate is not None:
            fault.gate.wait(60)
        if fault is not None and fault.drop:
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        body = reply.body
        data = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
        h.send_response(reply.status)
        if not isinstance(body, bytes) and body is not None:
            h.send_header("Content-Type", "application/json")
        for k, v in reply.headers.items():
            h.send_header(k, v)
        declared = fault.declare_length if fault is not None and fault.declare_length is not None else len(data)
        h.send_header("Content-Length", str(declared))
        h.end_headers()
        if fault is not None and fault.partial is not None:
            h.wfile.write(data[:fault.partial])
            h.wfile.flush()
            time.sleep(fault.hold)
            h.close_connection = True
            return
        if h.command == "HEAD":
            return
        if fault is not None and fault.drip:
            for i in range(0, len(data), 1024):
                h.wfile.write(data[i:i + 1024])
                h.wfile.flush()
                time.sleep(fault.drip)
            return
        h.wfile.write(data)
        if declared != len(data):
            h.close_connection = True


def _read_multipart(rfile: Any, length: int, boundary: bytes) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Parse a multipart body without holding it in memory: spool to disk, then scan it with mmap."""
    form: dict[str, str] = {}
    files: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryFile() as spool:
        left = length
        while left:
            chunk = rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            spool.write(chunk)
            left -= len(chunk)
        spool.flush()
        with mmap.mmap(spool.fileno(), 0, access=mmap.ACCESS_READ) as body:
            delim = b"--" + boundary
            pos = body.find(delim)
            while pos != -1:
                start = pos + len(delim)
                if body[start:start + 2] == b"--":
                    break
                head_end = body.find(b"\r\n\r\n", start)
                nxt = body.find(b"\r\n" + delim, head_end)
                headers = body[start:head_end].decode("utf-8", "replace")
                disp = next((line for line in headers.split("\r\n") if line.lower().startswith("content-disposition")), "")
                params = dict(p.strip().split("=", 1) for p in disp.split(";")[1:] if "=" in p)
                name = params.get("name", "").strip('"')
                content = memoryview(body)[head_end + 4:nxt]
                if "filename" in params:
                    ctype = next((line.split(":", 1)[1].strip() for line in headers.split("\r\n")
                                  if line.lower().startswith("content-type")), "")
                    files[name] = {"filename": params["filename"].strip('"'), "content_type": ctype,
                                   "size": len(content), "sha256": hashlib.sha256(content).hexdigest(),
                                   # small files are kept whole: a first frame the emulated model opens on
                                   "content": bytes(content) if len(content) <= 4 << 20 else None}
                else:
                    form[name] = bytes(content).decode("utf-8", "replace")
                content.release()
                pos = nxt + 2 if nxt != -1 else -1
    return form, files
