"""Authentication context classes the identity block's OpenID provider can satisfy (OpenID Connect Core 1.0
section 2, ``acr``, https://openid.net/specs/openid-connect-core-1_0.html#IDToken), as data.

A person signs in with a one-time code sent by SMS to the phone the register holds: that is
:data:`ACR_SMS_OTP`, the only class this provider can honestly claim today. Adding an authenticator
(a PIN, a biometric service) adds an entry to :data:`AUTHENTICATION_CONTEXTS`, with its level; a sign-in
of a higher level satisfies a request for a lower one.

Two ways a client can ask for a class, answered by one rule, :func:`acr_to_issue`:

- an ``acr`` member of the ``claims`` request parameter's ``id_token`` (section 5.5.1.1) with ``value`` or
  ``values``: the first requested class the sign-in satisfies is issued. When none is and the request is
  essential, the sign-in fails (the provider answers ``unmet_authentication_requirements``, OpenID Connect
  Core Error Code unmet_authentication_requirements 1.0,
  https://openid.net/specs/openid-connect-unmet-authentication-requirements-1_0.html); a voluntary
  request falls back to ``acr_values``.
- ``acr_values`` (section 3.1.2.1) is voluntary: the first requested class the sign-in satisfies, or else
  the sign-in's own class; a request never fails because of it.

:func:`can_satisfy` asks the same question before the sign-in, of the strongest class the provider has,
so a request no sign-in could meet is refused before the person is sent a code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from identity.claims import RequestedClaim

__all__ = [
    "ACR_SMS_OTP",
    "AUTHENTICATION_CONTEXTS",
    "AuthenticationContext",
    "acr_to_issue",
    "amr_of",
    "can_satisfy",
    "supported_acr_values",
]

ACR_SMS_OTP: Final = "urn:dpi:acr:sms-otp"


@dataclass(frozen=True)
class AuthenticationContext:
    """One class: its level (higher is stronger) and the methods (RFC 8176 ``amr`` values) it uses."""

    level: int
    amr: tuple[str, ...]


AUTHENTICATION_CONTEXTS: Final[Mapping[str, AuthenticationContext]] = {
    ACR_SMS_OTP: AuthenticationContext(level=1, amr=("sms", "otp")),
}


def supported_acr_values() -> list[str]:
    """The classes, strongest first, for discovery's ``acr_values_supported``."""
    return sorted(AUTHENTICATION_CONTEXTS, key=lambda acr: -AUTHENTICATION_CONTEXTS[acr].level)


def amr_of(acr: str) -> list[str]:
    """The authentication methods behind a class this provider issued."""
    context = AUTHENTICATION_CONTEXTS.get(acr)
    return list(context.amr) if context is not None else []


def _satisfies(achieved: str, requested: str) -> bool:
    have, want = AUTHENTICATION_CONTEXTS.get(achieved), AUTHENTICATION_CONTEXTS.get(requested)
    return have is not None and want is not None and have.level >= want.level


def acr_to_issue(
    achieved: str, *, acr_values: str | None = None, claim: RequestedClaim | None = None
) -> str | None:
    """The ``acr`` to issue for a sign-in of class ``achieved``, given the request's ``acr_values``
    (space-separated, preferred first) and the ``acr`` member of its ``claims`` parameter's ``id_token``.

    None when the claim is essential, names classes, and the sign-in satisfies none of them.
    """
    if claim is not None:
        asked = [claim.value] if claim.value is not None else list(claim.values or ())
        for requested in asked:
            if isinstance(requested, str) and _satisfies(achieved, requested):
                return requested
        if asked and claim.essential:
            return None
    for requested in (acr_values or "").split():
        if _satisfies(achieved, requested):
            return requested
    return achieved


def can_satisfy(claim: RequestedClaim | None) -> bool:
    """Whether some sign-in this provider offers can answer the ``acr`` claim request."""
    return acr_to_issue(supported_acr_values()[0], claim=claim) is not None
