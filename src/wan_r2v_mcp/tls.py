"""The one verifying TLS context every HTTP client in the process shares (host APIs, results, fetched references).

Making a context reads the whole CA bundle (tens of ms of CPU), and a server makes a client per host and per
fetched reference. This is the context httpx makes by default (`httpx.create_ssl_context`, honouring
SSL_CERT_FILE and SSL_CERT_DIR), made once: one context may serve many connections at once
(https://docs.python.org/3/library/ssl.html#ssl-contexts).
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
