"""Probing a remote reference, only when asked: https only, public addresses only, a few KB at most.

Remote URLs normally go to the host untouched. When `list_references(probe_urls=true)` asks, the server
reads the first bytes itself, so it guards against being turned against its own network (OWASP's Server-Side Request Forgery prevention cheat sheet
B1): the name is resolved and every address must be public (no loopback, private, link-local, CGNAT,
multicast or reserved, IPv4-mapped IPv6 unwrapped); the connection goes to the checked address, not to a
second lookup; redirects are followed by hand and checked again at every hop.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import replace
from urllib.parse import urljoin, urlparse

import anyio
import httpx

from .. import tls
from ..errors import ReferenceError
from .intake import Intake, judge
from .probe import HEADER_BYTES, MediaInfo, sniff

MAX_BYTES = 256 * 1024
MAX_HOPS = 5
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif int(ip) >> 32 == 0:  # IPv4-compatible ::a.b.c.d
            ip = ipaddress.IPv4Address(int(ip))
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local)


async def _public_address(host: str, port: int, field: str) -> str:
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise ReferenceError(f"the host {host!r} cannot be resolved", field=field,
                             fix="check the URL, or pass the file by path") from None
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        if not is_public(address):
            raise ReferenceError(
                f"{host!r} resolves to a non-public address ({address}); the server fetches only public https URLs",
                field=field, fix="pass the file by path, or a URL on the public internet")
    return addresses[0]


async def fetch_head(url: str, field: str, limit: int = MAX_BYTES) -> tuple[bytes, int | None]:
    """The first `limit` bytes of a public https resource and its full size when told, following redirects by
    hand. `save_character` fetches a whole reference this way, with its kind's size cap as the limit."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0), follow_redirects=False, verify=tls.context()) as http:
        for _ in range(MAX_HOPS):
            try:
                parsed = urlparse(url)
                port = parsed.port or 443  # .port raises on one out of range, urlparse on a broken [IPv6]
            except ValueError:
                raise ReferenceError("is not a valid URL (or redirects to one that is not)", field=field,
                                     fix="give a full https:// URL") from None
            if parsed.scheme != "https" or not parsed.hostname:
                raise ReferenceError("leads to a URL that is not https", field=field,
                                     fix="pass an https URL, or the file by path")
            address = await _public_address(parsed.hostname, port, field)
            netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
            pinned = parsed._replace(netloc=netloc).geturl()  # connect to the address we checked, not a new lookup
            headers = {"Host": parsed.netloc.rsplit("@", 1)[-1], "Range": f"bytes=0-{limit - 1}"}
            try:
                async with http.stream("GET", pinned, headers=headers,
                                       extensions={"sni_hostname": parsed.hostname}) as response:
                    if response.is_redirect:
                        url = urljoin(url, response.headers.get("location", ""))
                        continue
                    if response.status_code >= 400:
                        raise ReferenceError(f"answered HTTP {response.status_code}", field=field,
                                             fix="check that the URL is public and still valid")
                    total = response.headers.get("content-range", "").rpartition("/")[2]
                    size = int(total) if total.isdigit() else None
                    if size is None and response.status_code == 200 and response.headers.get("content-length", "").isdigit():
                        size = int(response.headers["content-length"])
                    data = bytearray()
                    async for chunk in response.aiter_bytes():
                        data += chunk
                        if len(data) >= limit:
                            break
                    return bytes(data[:limit]), size
            except httpx.HTTPError as exc:
                raise ReferenceError(f"could not be fetched ({type(exc).__name__})", field=field,
                                     fix="check the URL; the host fetches it on its own when generating") from None
        raise ReferenceError("redirects too many times", field=field, fix="pass the final URL")


async def probe_remote(intake: Intake) -> None:
    """Probe every URL reference of an intake in place: kind and format, and an image's size when it fits."""
    for ref in intake.all_references:
        if ref.source is None or ref.source.url is None:
            continue
        try:
            head, size = await fetch_head(ref.source.url, ref.field)
        except ReferenceError as exc:
            ref.errors.append(exc)
            continue
        ref.media = _media_from_head(head, size)
        ref.errors.extend(judge(ref.media, ref.role, ref.field))


def _media_from_head(head: bytes, size: int | None) -> MediaInfo:
    kind, fmt = sniff(head[:HEADER_BYTES])
    info = MediaInfo(kind=kind, format=fmt, size_bytes=size if size is not None else len(head))
    if kind == "image":
        import io

        from PIL import Image

        try:
            with Image.open(io.BytesIO(head)) as im:
                return replace(info, width=im.width, height=im.height)
        except Exception:
            return info
    return info

