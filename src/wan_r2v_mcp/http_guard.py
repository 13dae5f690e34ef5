"""The HTTP server's outer guards: Host and Origin compared whole (and CORS for the allowed origins), a deadline on
request headers, and a bound on each client's connections.

The Host and Origin checks stop DNS rebinding and cross-site requests (MCP transports spec, "Security
Warning"). They parse each value into scheme, host and port and compare those whole: a value that only starts
like an allowed one (`127.0.0.1:8000@evil.example`, `127.0.0.1:8000.evil.example`) is refused. The connection
guards answer slowloris: a client that sends its headers slowly is cut off after `HEADER_SECONDS`, and one
address holds at most `CONNECTIONS_PER_CLIENT` connections; idle keep-alive connections close after uvicorn's
`timeout_keep_alive`.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

HEADER_SECONDS = 10.0
# Per peer address. Behind a reverse proxy every connection comes from the proxy, so this is generous; the
# deadline on heads is what frees the slots a slow client holds.
CONNECTIONS_PER_CLIENT = 256
IDLE_SECONDS = 5.0

_HOST = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)(?::(?P<port>[0-9]{1,5}))?")
_ORIGIN = re.compile(r"(?P<scheme>https?)://" + _HOST.pattern)
_DEFAULT_PORTS = {"http": 80, "https": 443}
CORS_METHODS = b"GET, POST, DELETE, OPTIONS"
CORS_HEADERS = b"Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID"
CORS_EXPOSED = b"Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate"


@dataclass(frozen=True)
class Place:
    """A host and port, with a scheme for an origin; `port` None means any port."""

    scheme: str | None
    host: str
    port: int | None


def parse_host(value: str, scheme: str | None = None) -> Place | None:
    """`host[:port]` exactly (a DNS name, an IPv4 address or a bracketed IPv6 one), else None."""
    match = _HOST.fullmatch(value.strip())
    if match is None:
        return None
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        return None
    default = _DEFAULT_PORTS.get(scheme or "", None)
    return Place(scheme, match.group("host").lower().rstrip("."), int(port) if port else default)


def parse_origin(value: str) -> Place | None:
    """`scheme://host[:port]` exactly (no path, no user), else None."""
    match = _ORIGIN.fullmatch(value.strip())
    if match is None:
        return None
    return parse_host(value.strip().split("://", 1)[1], match.group("scheme"))


def _pattern(value: str, *, origin: bool) -> Place | None:
    """An allowed value as configured: the same shapes, with `:*` for any port."""
    text = value.strip()
    any_port = text.endswith(":*")
    if any_port:
        text = text[:-2]
    place = parse_origin(text) if origin else parse_host(text)
    if place is None:
        return None
    return Place(place.scheme, place.host, None) if any_port else place


class HostGuard:
    """ASGI middleware: refuse a request whose Host, or Origin when it has one, is not one of the allowed ones.
    A GET or HEAD under one of the `embeddable` paths (the signed links to finished files) is exempt from the
    Origin check: its signature is its authority, and the page that embeds it may be anyone's. A sandboxed view in
    an MCP Apps host has an opaque origin, and Chromium sends `Origin: null` with its video's range requests."""

    def __init__(self, app: Callable[..., Awaitable[None]], hosts: list[str], origins: list[str],
                 embeddable: tuple[str, ...] = ()):
        self.app = app
        self.embeddable = embeddable
        self.any_host = "*" in hosts
        self.hosts = [p for p in (_pattern(h, origin=False) for h in hosts if h != "*") if p]
        self.origins = [p for p in (_pattern(o, origin=True) for o in origins) if p]

    @staticmethod
    def _allowed(place: Place | None, patterns: list[Place]) -> bool:
        if place is None:
            return False
        for p in patterns:
            if p.host == place.host and (p.scheme is None or p.scheme == place.scheme) and (
                    p.port is None or p.port == place.port or (p.port in (80, 443) and place.port is None)):
                return True
        return False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers: dict[bytes, list[bytes]] = {}
        for name, value in scope.get("headers") or []:
            headers.setdefault(name.lower(), []).append(value)
        host = headers.get(b"host", [])
        origin = headers.get(b"origin", [])
        if not self.any_host and (len(host) != 1 or not self._allowed(parse_host(_text(host[0])), self.hosts)):
            return await _refuse(send, 421, "Invalid Host header")
        if origin and scope.get("method") in ("GET", "HEAD") and scope.get("path", "").startswith(self.embeddable):
            return await self.app(scope, receive, send)  # a signed file, embedded by a page of any origin
        if origin and (len(origin) != 1 or not self._allowed(parse_origin(_text(origin[0])), self.origins)):
            return await _refuse(send, 403, "Invalid Origin header")
        if not origin:
            return await self.app(scope, receive, send)
        # A browser-based host (an allowed origin): answer its preflight, and let it read the answers (Fetch
        # standard, CORS protocol). The token is still checked on the request itself.
        allowed = origin[0]
        if scope.get("method") == "OPTIONS" and headers.get(b"access-control-request-method"):
            asked = b", ".join(headers.get(b"access-control-request-headers", [])) or CORS_HEADERS
            await send({"type": "http.response.start", "status": 204, "headers": [
                (b"access-control-allow-origin", allowed), (b"access-control-allow-methods", CORS_METHODS),
                (b"access-control-allow-headers", asked), (b"access-control-max-age", b"600"),
                (b"vary", b"Origin")]})
            return await send({"type": "http.response.body", "body": b""})

        async def send_readable(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"access-control-allow-origin", allowed),
                                                  (b"access-control-expose-headers", CORS_EXPOSED), (b"vary", b"Origin")]}
            await send(message)

        await self.app(scope, receive, send_readable)


def _text(raw: bytes) -> str:
    return raw.decode("latin-1")


async def _refuse(send: Any, status: int, message: str) -> None:
    body = message.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def guarded_protocol() -> type:
    """uvicorn's h11 protocol with a deadline on each request's headers and a bound on connections per address."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        open_by_client: Counter[str] = Counter()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._deadline: asyncio.TimerHandle | None = None
            self._address = self.client[0] if self.client else ""
            self.open_by_client[self._address] += 1
            if self.open_by_client[self._address] > CONNECTIONS_PER_CLIENT:
                transport.close()
                return
            self._arm()

        def _arm(self) -> None:
            if self._deadline is None:
                self._deadline = self.loop.call_later(HEADER_SECONDS, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if self.conn.their_state is h11.IDLE:  # still no whole request head: cut it off
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.IDLE:  # between requests, or in the middle of a head
                self._arm()
            else:
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            self.open_by_client[self._address] -= 1
            if self.open_by_client[self._address] <= 0:
                del self.open_by_client[self._address]
            super().connection_lost(exc)

    return GuardedH11Protocol


def server_config(app: Any, host: str, port: int, **extra: Any):  # -> uvicorn.Config
    """The one way this server is served over HTTP (the command line and the tests)."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, http=guarded_protocol(), timeout_keep_alive=IDLE_SECONDS,
                          h11_max_incomplete_event_size=32 * 1024, log_level="warning", **extra)
