"""Scopes of the consent API; the tokens themselves are the kernel's (:mod:`dpi.tokens`).

============================  ==================================================================
``consent:admin``             publish agreements; see every notification delivery
``consent:request``           a data consumer asks a subject for consent (``member`` claim)
``consent:check``             the exchange asks whether data may flow
``consent:revoke``            the controller or a provider revokes (``member`` claim)
``consent:invalidate``        an authority invalidates
``consent:operator``          a service-centre operator acts with the subject present (``sub``)
``consent:webhooks``          a consumer or provider manages its webhooks (``member`` claim)
``consent:self``              a citizen (``sub`` is their sector pseudonym), also as a guardian
``consent:guardianship``      a registry or authority attests a guardianship when asking for consent
============================  ==================================================================
"""

from __future__ import annotations

from typing import Final

from dpi.tokens import JwtTokenVerifier, Principal, TokenVerifier, bearer_token, require_scope

__all__ = [
    "SCOPE_ADMIN",
    "SCOPE_CHECK",
    "SCOPE_GUARDIANSHIP",
    "SCOPE_INVALIDATE",
    "SCOPE_OPERATOR",
    "SCOPE_REQUEST",
    "SCOPE_REVOKE",
    "SCOPE_SELF",
    "SCOPE_WEBHOOKS",
    "JwtTokenVerifier",
    "Principal",
    "TokenVerifier",
    "bearer_token",
    "operator_id",
    "require_scope",
]

SCOPE_ADMIN: Final = "consent:admin"
SCOPE_REQUEST: Final = "consent:request"
SCOPE_CHECK: Final = "consent:check"
SCOPE_REVOKE: Final = "consent:revoke"
SCOPE_INVALIDATE: Final = "consent:invalidate"
SCOPE_OPERATOR: Final = "consent:operator"
SCOPE_WEBHOOKS: Final = "consent:webhooks"
SCOPE_SELF: Final = "consent:self"
SCOPE_GUARDIANSHIP: Final = "consent:guardianship"


def operator_id(principal: Principal) -> str | None:
    """The service-centre operator a token names: its subject, when it carries ``consent:operator``."""
    return principal.subject if SCOPE_OPERATOR in principal.scopes else None
