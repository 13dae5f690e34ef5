"""Who is calling over HTTP, and with which host keys: bearer tokens, OAuth access tokens, per-caller keys.

Every HTTP request carries `Authorization: Bearer <token>`. A token is either one the operator listed
(`WAN_R2V_HTTP_TOKENS`, compared in constant time) or a JWT from the configured OAuth issuer, checked
against the issuer's JWKS for signature, issuer, audience, expiry and scopes; the caller is the listed
name or the token's subject. On stdio there is one caller, the local user (""). A caller may also bring
its own host keys in request headers (or Smithery's per-connection query parameters); they are held in
memory for that caller's tasks only, and never written anywhere.
"""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.auth.provider import AccessToken

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger(__name__)

MAX_TOKEN_CHARS = 8192  # longer bearer values are refused unread
MAX_KEY_CHARS = 1024  # a host key a caller brings in a header
OAUTH_PREFIX = "oauth:"  # OAuth subjects are callers of their own kind: "oauth:alice" is not the token caller "alice"
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class CallerVerifier:
    """The SDK's token verifier: operator-listed tokens first, then OAuth JWTs when an issuer is configured."""

    def __init__(self, settings: Settings):
        self._tokens = [(t.encode(), caller) for t, caller in settings.callers.items()]
        self._scopes = (settings.oauth_scopes or "").split()
        self._jwt = _JwtChecker(settings) if settings.oauth_issuer else None

    async def verify_token(self, token: str) -> AccessToken | None:
        if len(token) > MAX_TOKEN_CHARS:  # never read further: a listed token or a JWT is far shorter
            return None
        given = token.encode()
        found = None
        for known, caller in self._tokens:  # every entry is compared, so the time says nothing about which matched
            if hmac.compare_digest(given, known):
                found = caller
        if found is not None:
            return AccessToken(token=token, client_id=found, scopes=self._scopes, subject=found)
        if self._jwt is not None:
            return await self._jwt.check(token)
        return None


class _JwtChecker:
    def __init__(self, settings: Settings):
        import jwt

        issuer = (settings.oauth_issuer or "").rstrip("/")
        self.issuer = settings.oauth_issuer or ""
        self.audience = settings.oauth_audience or settings.public_url
        jwks_url = settings.oauth_jwks_url or f"{issuer}/.well-known/jwks.json"
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=600, timeout=10)

    async def check(self, token: str) -> AccessToken | None:
        import jwt

        try:
            key = await anyio.to_thread.run_sync(self._jwks.get_signing_key_from_jwt, token)
            # Only the algorithm the issuer's key is for (a token signed another way is refused, not an error).
            algorithms = [key.algorithm_name] if getattr(key, "algorithm_name", None) else list(ALGORITHMS)
            claims = jwt.decode(token, key.key, algorithms=[a for a in algorithms if a in ALGORITHMS],
                                issuer=self.issuer, audience=self.audience,
                                options={"require": ["exp", "iss", "sub", "aud"]})
        except Exception as exc:  # a bad token, a JWKS key that will not load, an issuer away: refused, said briefly
            log.info("refused an OAuth token: %s", type(exc).__name__)  # never the token itself
            return None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip() or len(subject) > 256:
            log.info("refused an OAuth token: its subject is empty, not a string or too long")
            return None
        # Missing scopes are the SDK's to refuse (403 insufficient_scope), after the token itself checked out.
        scopes = claims.get("scp") if isinstance(claims.get("scp"), list) else []
        granted = set(str(claims.get("scope") or "").split()) | {str(s) for s in scopes}
        caller = OAUTH_PREFIX + subject  # its own namespace: never a listed token's caller, never the stdio owner
        return AccessToken(token=token, client_id=caller, scopes=sorted(granted), expires_at=int(claims["exp"]),
                           resource=self.audience, subject=subject, claims={"iss": claims.get("iss")})


def current_caller() -> str:
    """The caller of the request being handled: the token's caller over HTTP, "" on stdio and in-process."""
    from mcp.server.auth.middleware.auth_context import get_access_token

    token = get_access_token()
    return token.client_id if token is not None else ""


@dataclass
class CallerKeys:
    """Host keys callers brought with their requests, in memory only, each usable for its own caller's tasks.
    `headers`: per host, the request header and Smithery's query parameter its key comes in
    (smithery.ai/docs/build/session-config), from the hosts' records."""

    headers: dict[str, tuple[str, str]] = field(default_factory=dict)
    _keys: dict[tuple[str, str], str] = field(default_factory=dict)
    _seen: dict[str, float] = field(default_factory=dict)

    def remember(self, caller: str, request: Any) -> None:
        """Take the host keys a request carries (headers first, then Smithery's query parameters)."""
        if request is None:
            return
        from .errors import register_secret

        for provider, (header, query) in self.headers.items():
            value = (request.headers.get(header) or request.query_params.get(query) or "").strip().strip("'\"")
            if value and len(value) <= MAX_KEY_CHARS:  # a longer one is no host's key: the host key stays as it was
                register_secret(value, from_caller=True)
                self._keys[(caller, provider)] = value
        self._seen[caller] = time.time()

    def get(self, caller: str, provider: str) -> str | None:
        return self._keys.get((caller, provider))
