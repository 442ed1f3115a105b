"""Authentication context classes the identity block's OpenID provider can satisfy (OpenID Connect Core 1.0
section 2, ``acr``, https://openid.net/specs/openid-connect-core-1_0.html#IDToken), as data.

A person signs in with a one-time code sent by SMS to the phone the register holds: that is
:data:`ACR_SMS_OTP`, the only class this provider can honestly claim today. Adding an authenticator
(a PIN, a biometric service) adds an entry to :data:`AUTHENTICATION_CONTEXTS`, with its level; a sign-in
of a higher level satisfies a request for a lower one.

Two ways a client can ask for a class, kept apart:

- ``acr_values`` (section 3.1.2.1) is voluntary: :func:`acr_for_acr_values` picks the first requested
  class the sign-in satisfies, or else the sign-in's own class; a request never fails because of it.
- an ``acr`` member of the ``claims`` request parameter (section 5.5.1.1) may be essential:
  :func:`acr_for_claim_request` says which class answers it, or None when an essential request cannot
  be satisfied (the caller then refuses the sign-in as that section allows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "ACR_SMS_OTP",
    "AUTHENTICATION_CONTEXTS",
    "AuthenticationContext",
    "acr_for_acr_values",
    "acr_for_claim_request",
    "amr_of",
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


def acr_for_acr_values(acr_values: str | None, achieved: str) -> str:
    """The ``acr`` to issue for a voluntary ``acr_values`` request (space-separated, preferred first)."""
    for requested in (acr_values or "").split():
        if _satisfies(achieved, requested):
            return requested
    return achieved


def acr_for_claim_request(request: Mapping[str, Any] | None, achieved: str) -> str | None:
    """The ``acr`` answering the ``acr`` member of a ``claims`` request (``{"essential": true, "values":
    [...]}`` or ``{"value": ...}``; OpenID Connect Core 1.0 section 5.5.1.1), given the sign-in's class.

    None when the request is essential and no requested class is satisfied; a voluntary request the
    sign-in cannot meet is answered with the sign-in's own class.
    """
    if not isinstance(request, Mapping):
        return achieved
    wanted: Sequence[Any]
    if "value" in request:
        wanted = [request["value"]]
    else:
        values = request.get("values")
        wanted = values if isinstance(values, list) else []
    for requested in wanted:
        if isinstance(requested, str) and _satisfies(achieved, requested):
            return requested
    if wanted and request.get("essential") is True:
        return None
    return achieved
