"""A small OAuth issuer on loopback: its JWKS, and tokens it signs for the tests (RS256)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from .base import Emulator, Received, Reply


class Issuer(Emulator):
    def __init__(self) -> None:
        super().__init__()
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex[:8]

    @property
    def url(self) -> str:
        return self.root

    def name_of(self, req: Received) -> str:
        return "jwks" if req.path == "/.well-known/jwks.json" else "other"

    def handle(self, req: Received) -> Reply:
        if self.name_of(req) != "jwks":
            return Reply(404, {"error": "not found"})
        from jwt.algorithms import RSAAlgorithm

        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return Reply(200, {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]})

    def token(self, subject: str, audience: str, *, scope: str = "r2v", expires_in: float = 600,
              issuer: str | None = None, **claims: Any) -> str:
        import jwt

        now = int(time.time())
        body = {"iss": issuer or self.url, "sub": subject, "aud": audience, "iat": now, "exp": now + int(expires_in),
                "scope": scope, **claims}
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": self.kid})
