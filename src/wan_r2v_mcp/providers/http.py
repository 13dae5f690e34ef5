"""The one place that builds HTTP clients for hosts, reads their throttling hints and fetches results.

Timeouts are explicit; redirects are never followed blindly; results are fetched with a separate client
that carries no credentials, only from hosts the provider trusts, and streamed to disk.
"""

from __future__ import annotations

import email.utils
import ipaddress
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

import anyio
import httpx

from ..errors import ProviderError

TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=120.0, pool=10.0)
LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=10)
DOWNLOAD_MAX_BYTES = 2 * 1024**3


def client(base_url: str, headers: dict[str, str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=TIMEOUT, limits=LIMITS,
                             follow_redirects=False)


def retry_after(response: httpx.Response, default: float = 2.0, cap: float = 60.0) -> float:
    """Seconds a host asks us to wait (Retry-After as seconds or an HTTP date), bounded."""
    value = response.headers.get("retry-after")
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        seconds = parsed.timestamp() - time.time() if parsed else default
    return max(0.0, min(seconds, cap))


def host_matches(host: str, allowed: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == a or host.endswith("." + a) for a in allowed)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


ProgressFn = Callable[[float], Awaitable[None]]
ErrorOf = Callable[[httpx.Response], ProviderError]


async def call_json(http: httpx.AsyncClient, method: str, url: str, *, host: str, error_of: ErrorOf,
                    creates: bool = False, attempts: int = 3, **kwargs: Any) -> Any:
    """One JSON API call. Transient failures (connection refused, 429, 5xx, timeouts) are retried a few
    times, except that a create which may have reached the host is never sent again: a lost answer or a
    5xx there becomes `submit_unknown`, for the runner to reconcile."""
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            response = await http.request(method, url, **kwargs)
        except httpx.ConnectError:  # nothing was sent: safe to retry even a create
            if last:
                raise ProviderError(f"cannot reach {host}", code="host_unreachable", retryable=True,
                                    fix="check the network and the host's base URL setting") from None
            await anyio.sleep(1.0 * (attempt + 1))
            continue
        except httpx.TransportError as exc:
            if creates:
                raise ProviderError(f"the create request was sent to {host} but no answer came ({type(exc).__name__})",
                                    code="submit_unknown",
                                    fix=f"the job may exist at {host}; it is not resubmitted automatically") from None
            if last:
                raise ProviderError(f"{host} did not answer ({type(exc).__name__})", code="host_unreachable",
                                    retryable=True, fix="the server keeps trying; ask get_task again later") from None
            await anyio.sleep(1.0 * (attempt + 1))
            continue
        if response.status_code == 429 or (response.status_code >= 500 and not creates):
            wait = retry_after(response, default=2.0 * (attempt + 1))
            if not last and wait <= 10:  # a create refused with 429 was not created: safe to send again
                await anyio.sleep(wait)
                continue
        if response.status_code >= 400:
            if creates and response.status_code >= 500:
                # A 5xx on create does not prove nothing was created; never resend it on our own.
                raise ProviderError(f"{host} answered the create with HTTP {response.status_code}",
                                    code="submit_unknown",
                                    fix=f"the job may exist at {host}; it is not resubmitted automatically")
            raise error_of(response)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise ProviderError(f"{host} answered with something that is not JSON",
                                code="submit_unknown" if creates else "host_error", retryable=not creates,
                                fix="try again later") from None
    raise AssertionError("unreachable")


def problem_text(response: httpx.Response) -> str:
    """The host's own words from an error body (RFC 7807 `detail`, or `message`), for labelled display."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        for key in ("detail", "message", "title", "error"):
            if body.get(key):
                return str(body[key])
    return str(body)[:300]


async def file_chunks(path: Path, size: int = 1024 * 1024):
    """A file's bytes as an async stream, read off the event loop: for streamed PUT uploads."""
    with open(path, "rb") as fh:
        while chunk := await anyio.to_thread.run_sync(fh.read, size):
            yield chunk


async def download(url: str, dest: Path, *, allowed_hosts: tuple[str, ...], progress: ProgressFn | None = None) -> int:
    """Stream a result to `dest`; only https (or plain http to an allowed loopback emulator), only allowed hosts."""
    async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as http:
        for _ in range(5):
            parsed = urlparse(url)
            host = parsed.hostname or ""
            plain_ok = parsed.scheme == "http" and _is_loopback(host) and host_matches(host, allowed_hosts)
            if not (parsed.scheme == "https" or plain_ok) or not host_matches(host, allowed_hosts):
                raise ProviderError(f"the result URL's host {host!r} is not one this provider serves results from",
                                    code="result_url_rejected",
                                    fix=f"expected a host under {', '.join(allowed_hosts)}; report this if the host changed")
            async with http.stream("GET", url) as response:
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("location", ""))
                    continue
                if response.status_code in (403, 404, 410):
                    raise ProviderError("the result is no longer available at the host (its URL expired)",
                                        code="result_expired",
                                        fix="generate again; results are downloaded at once to avoid this")
                if response.status_code >= 400:
                    raise ProviderError(f"downloading the result failed with HTTP {response.status_code}",
                                        code="download_failed", retryable=response.status_code >= 500,
                                        fix="the server retries on its own; ask get_task again later")
                total = int(response.headers.get("content-length") or 0)
                written = 0
                with open(dest, "xb") as fh:
                    async for chunk in response.aiter_bytes():
                        written += len(chunk)
                        if written > DOWNLOAD_MAX_BYTES:
                            raise ProviderError("the result is larger than any video this model makes",
                                                code="download_failed", fix="report this; the download was stopped")
                        fh.write(chunk)
                        fh.flush()  # what arrived is on disk, so an interrupted download is visible as such
                        if progress is not None and total:
                            await progress(written / total)
                return written
    raise ProviderError("the result URL redirected too many times", code="download_failed", fix="report this")
