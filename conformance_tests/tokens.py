"""Access tokens the suite issues to the system under test (JWT access tokens, RFC 9068).

Profiles that exercise authorised APIs (``consent``, later ``registry-dci`` and ``exchange-member``)
need the target to accept tokens from the suite. As the OpenID Foundation suite plays the OP for RP
tests, the suite here plays the token issuer: the vendor configures its system, for the run, to trust
the issuer name and the JWKS printed by ``dpi conformance token-jwks --token-key FILE``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt

from dpi.keys import SigningKey

__all__ = ["TokenMinter"]


@dataclass(frozen=True)
class TokenMinter:
    """Signs short-lived ``at+jwt`` access tokens as ``issuer`` with ``key``."""

    key: SigningKey
    issuer: str
    lifetime_seconds: int = 300

    def jwks(self) -> dict[str, Any]:
        """The JWK Set the target must trust for this run."""
        return {"keys": [self.key.public_jwk()]}

    def mint(self, subject: str, scopes: Iterable[str], *, member: str | None = None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "client_id": "dpi-conformance",
            "scope": " ".join(sorted(set(scopes))),
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime_seconds,
            "jti": str(uuid.uuid4()),
        }
        if member is not None:
            claims["member"] = member
        return jwt.encode(
            claims,
            self.key.private_key,
            algorithm=self.key.alg,
            headers={"kid": self.key.kid, "typ": "at+jwt"},
        )
