"""The one place that builds HTTP clients for hosts, reads their throttling hints and fetches results.

Timeouts are explicit, and every request also runs under an overall deadline: httpx's read timeout
applies per chunk, so a host that drip-feeds bytes would never trip it (a read timeout is per read, not per response). Redirects
are never followed blindly. Credentials are added per request, never set on the client, so the same
client can fetch results and put files in storage without sending a key there.
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

from .. import tls
from ..errors import (
    DownloadInterrupted,
    HostAnswerMalformed,
    HostUnreachable,
    ProviderError,
    ResultExpired,
    ResultInvalid,
    ResultRejected,
    SubmitUnknown,
    Throttled,
    UploadRetryable,
)

TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=60.0, pool=10.0)
LIMITS = httpx.Limits(max_connections=50, max_keepalive_connections=20)
VIDEO_MAX_BYTES = 1024**3  # Wan 2.7 makes at most 15 s of 1080p: a few tens of MB


def client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT, limits=LIMITS, follow_redirects=False,
                             verify=tls.context())


def retry_after(response: httpx.Response, default: float = 2.0, cap: float = 60.0) -> float:
    """Seconds a host asks us to wait (Retry-After as seconds or an HTTP date), bounded."""
    value = response.headers.get("retry-after")
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return default
        seconds = parsed.timestamp() - time.time()
    return max(0.0, min(seconds, cap))


def host_matches(host: str, allowed: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    return any(a and (host == a or host.endswith("." + a)) for a in allowed)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


ProgressFn = Callable[[float], Awaitable[None]]
ErrorOf = Callable[[httpx.Response], ProviderError]


async def call_json(http: httpx.AsyncClient, method: str, url: str, *, host: str, error_of: ErrorOf,
                    deadline: float, creates: bool = False, attempts: int = 3, time_scale: float = 1.0,
                    **kwargs: Any) -> Any:
    """One JSON API call, each attempt under `deadline` seconds in all.

    Transient failures (refused connections, 429, 5xx, timeouts) are tried again a few times, except that a
    create which may have reached the host is never sent again: a lost answer or a 5xx there raises
    `SubmitUnknown`, for the follower to reconcile. A 429 or a refused connection proves nothing was made.
    `time_scale` shrinks the pauses between attempts (compressed test timings only)."""
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            with anyio.fail_after(deadline):
                response = await http.request(method, url, **kwargs)
        except httpx.ConnectError:  # nothing was sent: safe to try again, even a create
            if last:
                raise HostUnreachable(f"cannot reach {host}",
                                      fix="check the network and the host's base URL setting") from None
            await anyio.sleep(1.0 * (attempt + 1) * time_scale)
            continue
        except (httpx.TransportError, TimeoutError) as exc:
            if creates:
                raise SubmitUnknown(f"the create request was sent to {host} but no answer came "
                                    f"({type(exc).__name__})",
                                    fix=f"the job may exist at {host}; it is looked for, never sent again") from None
            if last:
                raise HostUnreachable(f"{host} did not answer ({type(exc).__name__})",
                                      fix="the server keeps trying; ask get_task again later") from None
            await anyio.sleep(1.0 * (attempt + 1) * time_scale)
            continue
        status = response.status_code
        if status == 429 or (status >= 500 and not creates):
            wait = retry_after(response, default=2.0 * (attempt + 1))
            if not last and wait <= 10:
                await anyio.sleep(wait * time_scale)
                continue
            if status == 429:
                raise Throttled(f"{host} is throttling requests", fix=f"wait {wait:.0f} s and try again",
                                host_message=problem_text(response))
        if status >= 400:
            if creates and status >= 500:  # a 5xx on create does not prove nothing was created
                raise SubmitUnknown(f"{host} answered the create with HTTP {status}",
                                    fix=f"the job may exist at {host}; it is looked for, never sent again")
            raise error_of(response)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            if creates:
                raise SubmitUnknown(f"{host} answered the create with something that is not JSON",
                                    fix=f"the job may exist at {host}; it is looked for, never sent again") from None
            if last:
                raise HostAnswerMalformed(f"{host} answered with something that is not JSON",
                                          fix="the server keeps trying; ask get_task again later") from None
            await anyio.sleep(1.0 * (attempt + 1) * time_scale)
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


def check_result_url(url: str, allowed_hosts: tuple[str, ...]) -> None:
    try:
        parsed = urlparse(url)
        host = parsed.hostname or ""
    except ValueError:
        raise ResultRejected("the result URL is malformed", fix="report this; the host sent an unusable URL") from None
    plain_ok = parsed.scheme == "http" and _is_loopback(host)  # the loopback test emulators
    if not (parsed.scheme == "https" or plain_ok) or not host_matches(host, allowed_hosts):
        raise ResultRejected(f"the result URL's host {host!r} is not one this provider serves results from",
                             fix=f"expected a host under {', '.join(a for a in allowed_hosts if a)}; "
                                 "report this if the host changed")


async def download(http: httpx.AsyncClient, url: str, dest: Path, *, allowed_hosts: tuple[str, ...],
                   deadline: float, max_bytes: int = VIDEO_MAX_BYTES, progress: ProgressFn | None = None) -> int:
    """One attempt at streaming a result to `dest`, with no credentials, only from allowed hosts, under an overall
    deadline. Raises `DownloadInterrupted` for what may pass, `ResultExpired` / `ResultRejected` / `ResultInvalid`
    for what will not."""
    try:
        with anyio.fail_after(deadline):
            return await _download(http, url, dest, allowed_hosts, max_bytes, progress)
    except TimeoutError:
        raise DownloadInterrupted(f"the download did not finish within {deadline:.0f} s",
                                  fix="the server tries again on its own; ask get_task again later") from None
    except httpx.TransportError as exc:
        raise DownloadInterrupted(f"the download was interrupted ({type(exc).__name__})",
                                  fix="the server tries again on its own; ask get_task again later") from None


async def _download(http: httpx.AsyncClient, url: str, dest: Path, allowed_hosts: tuple[str, ...], max_bytes: int,
                    progress: ProgressFn | None) -> int:
    for _ in range(5):
        check_result_url(url, allowed_hosts)
        async with http.stream("GET", url) as response:
            if response.is_redirect:
                url = urljoin(url, response.headers.get("location", ""))
                continue
            status = response.status_code
            if status >= 500 or status in (408, 429):
                raise DownloadInterrupted(f"the result's host answered HTTP {status}",
                                          fix="the server tries again on its own; ask get_task again later")
            if status >= 400:
                raise ResultExpired(f"the host refuses the result (HTTP {status}): its URL expired or was revoked",
                                    fix="generate again; the server downloads results as soon as they are ready, "
                                        "so this happens only when it could not reach the host in time")
            declared = response.headers.get("content-length")
            total = int(declared) if declared and declared.isdigit() else None
            if total is not None and total > max_bytes:
                raise ResultInvalid(f"the result is {total:,} bytes, more than any video this model makes",
                                    limit=f"{max_bytes:,} bytes", fix="report this; nothing was downloaded")
            ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype.startswith(("text/", "application/json", "application/xml")):
                raise DownloadInterrupted(f"the result's host sent {ctype}, not a video",
                                          fix="the server tries again on its own; ask get_task again later")
            written = 0
            with open(dest, "xb") as fh:
                async for chunk in response.aiter_bytes():
                    written += len(chunk)
                    if written > max_bytes:
                        raise ResultInvalid("the result is larger than any video this model makes",
                                            limit=f"{max_bytes:,} bytes", fix="report this; the download was stopped")
                    fh.write(chunk)
                    if progress is not None and total:
                        await progress(written / total)
            if total is not None and written != total:
                raise DownloadInterrupted(f"the result arrived cut short ({written:,} of {total:,} bytes)",
                                          fix="the server tries again on its own; ask get_task again later")
            return written
    raise ResultRejected("the result URL redirected too many times", fix="report this")


async def put_bytes(http: httpx.AsyncClient, url: str, chunks: Any, *, size: int, content_type: str,
                    deadline: float, what: str) -> httpx.Response:
    """PUT a reference's bytes to a storage URL the host signed (no key goes there), under a deadline."""
    try:
        with anyio.fail_after(deadline):
            return await http.put(url, content=chunks, headers={"Content-Type": content_type,
                                                                "Content-Length": str(size)})
    except (httpx.TransportError, TimeoutError) as exc:
        raise UploadRetryable(f"uploading {what} failed ({type(exc).__name__})",
                              fix="try again; or pass the reference as an https URL") from None

