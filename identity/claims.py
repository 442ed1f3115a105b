"""Which claims about a person a client asks for, and their values: the ``claims`` request parameter
(OpenID Connect Core 1.0 section 5.5, https://openid.net/specs/openid-connect-core-1_0.html#ClaimsParameter),
the claims each scope stands for (section 5.4) and derived yes/no claims such as ``age_over_18``.

The ``claims`` parameter is a JSON object whose ``id_token`` and ``userinfo`` members name claims, each
``null`` or an object with ``essential`` (a boolean), ``value`` or ``values`` (an array). A parameter that is
not such an object is refused with ``invalid_request``; claims this provider does not know are ignored, as
are other top-level members (section 5.5: "other members MAY be present ... ignored if not understood").
A claim that only a scope the client is not registered for would release is ignored too.

Derived claims are answers, not data: ``age_over_18`` is true or false from the birth date on the provider's
clock (UTC) the day the claim is issued, and releasing it never releases the birth date. A person born on
29 February turns a year older on 1 March in a common year.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

__all__ = [
    "CLAIM_SCOPES",
    "DERIVED_AGES",
    "MEMBERS",
    "SUPPORTED_CLAIMS",
    "ClaimsParameterInvalid",
    "ClaimsRequest",
    "RequestedClaim",
    "age_on",
    "claim_values",
    "delivery",
    "parse_claims_parameter",
    "requested_claims",
]

MEMBERS: Final = ("id_token", "userinfo")
DERIVED_AGES: Final[Mapping[str, int]] = {"age_over_18": 18, "age_over_65": 65}
# The scope that releases each claim; a derived claim is released only through the claims parameter.
CLAIM_SCOPES: Final[Mapping[str, str | None]] = {
    "name": "profile",
    "given_name": "profile",
    "family_name": "profile",
    "birthdate": "profile",
    "phone_number": "phone",
    **dict.fromkeys(DERIVED_AGES),
}
SUPPORTED_CLAIMS: Final = ("sub", *CLAIM_SCOPES, "acr")
_MAX_PARAMETER: Final = 2048
_MAX_VALUES: Final = 20


class ClaimsParameterInvalid(ValueError):
    """A ``claims`` parameter that is not the JSON object section 5.5 describes; the message says why."""


@dataclass(frozen=True)
class RequestedClaim:
    """One claim named in the ``claims`` parameter, with its request options (section 5.5.1)."""

    essential: bool = False
    value: Any = None
    values: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class ClaimsRequest:
    """The claims the parameter asks for, in the ID token and at userinfo (unknown claims dropped)."""

    id_token: Mapping[str, RequestedClaim] = field(default_factory=dict)
    userinfo: Mapping[str, RequestedClaim] = field(default_factory=dict)

    def member(self, name: str) -> Mapping[str, RequestedClaim]:
        return self.id_token if name == "id_token" else self.userinfo


def _refuse_constant(name: str) -> Any:
    raise ClaimsParameterInvalid(f"the claims parameter holds {name}, which is not JSON")


def _requested(member: str, name: str, options: Any) -> RequestedClaim:
    if options is None:
        return RequestedClaim()
    if not isinstance(options, dict):
        raise ClaimsParameterInvalid(f"claims.{member}.{name} must be null or an object")
    essential = options.get("essential", False)
    if not isinstance(essential, bool):
        raise ClaimsParameterInvalid(f"claims.{member}.{name}.essential must be true or false")
    values = options.get("values")
    if values is not None and (not isinstance(values, list) or not 0 < len(values) <= _MAX_VALUES):
        raise ClaimsParameterInvalid(
            f"claims.{member}.{name}.values must be an array of 1 to {_MAX_VALUES} values"
        )
    return RequestedClaim(essential, options.get("value"), tuple(values) if values is not None else None)


def parse_claims_parameter(raw: str | None) -> ClaimsRequest:
    """The ``claims`` parameter read, or :class:`ClaimsParameterInvalid` saying what is wrong with it."""
    if raw is None or raw == "":
        return ClaimsRequest()
    if len(raw) > _MAX_PARAMETER:
        raise ClaimsParameterInvalid(f"the claims parameter is longer than {_MAX_PARAMETER} characters")
    try:
        document = json.loads(raw, parse_constant=_refuse_constant)
    except ValueError as error:
        if isinstance(error, ClaimsParameterInvalid):
            raise
        raise ClaimsParameterInvalid("the claims parameter is not valid JSON") from None
    if not isinstance(document, dict):
        raise ClaimsParameterInvalid("the claims parameter must be a JSON object")
    members: dict[str, dict[str, RequestedClaim]] = {}
    for member in MEMBERS:
        claims = document.get(member)
        if claims is None:
            members[member] = {}
            continue
        if not isinstance(claims, dict):
            raise ClaimsParameterInvalid(f"claims.{member} must be an object")
        members[member] = {
            name: _requested(member, name, options)
            for name, options in claims.items()
            if name in SUPPORTED_CLAIMS
        }
    return ClaimsRequest(members["id_token"], members["userinfo"])


def requested_claims(
    scopes: Iterable[str], request: ClaimsRequest, allowed_scopes: Collection[str]
) -> dict[str, bool]:
    """Every claim the request asks for beyond ``sub`` and ``acr``, each with whether it is essential.

    ``scopes`` are the granted scopes; ``allowed_scopes`` those the client is registered for, which bound
    what the ``claims`` parameter can add.
    """
    granted = set(scopes)
    asked: dict[str, bool] = {
        name: False for name, scope in CLAIM_SCOPES.items() if scope is not None and scope in granted
    }
    for member in MEMBERS:
        for name, options in request.member(member).items():
            scope = CLAIM_SCOPES.get(name, "")
            if scope == "" or (scope is not None and scope not in allowed_scopes):
                continue
            asked[name] = asked.get(name, False) or options.essential
    return asked


def age_on(birthdate: date, today: date) -> int:
    """Completed years on ``today``; a 29 February birthday falls on 1 March in a common year."""
    return today.year - birthdate.year - ((today.month, today.day) < (birthdate.month, birthdate.day))


def claim_values(
    subject: str,
    demographics: Mapping[str, Any],
    names: Iterable[str],
    *,
    locale: str,
    today: date,
) -> dict[str, Any]:
    """The values of the claims ``names`` for a person (those they have), ``sub`` always.

    Names are in the script of the client's claims ``locale`` (Arabic when it is ``ar`` and the person
    has an Arabic name, else Latin).
    """
    wanted = set(names)
    values: dict[str, Any] = {"sub": subject}
    person_names = demographics.get("names", {})
    chosen = (
        person_names.get("arabic")
        if locale == "ar" and person_names.get("arabic")
        else person_names.get("latin")
    )
    if isinstance(chosen, Mapping):
        given, family = chosen.get("given_name"), chosen.get("family_name")
        if given and "given_name" in wanted:
            values["given_name"] = given
        if family and "family_name" in wanted:
            values["family_name"] = family
        full = " ".join(part for part in (given, family) if part)
        if full and "name" in wanted:
            values["name"] = full
    born = demographics.get("date_of_birth")
    if born and "birthdate" in wanted:
        values["birthdate"] = born
    if born:
        for claim, years in DERIVED_AGES.items():
            if claim in wanted:
                values[claim] = age_on(date.fromisoformat(born), today) >= years
    if demographics.get("phone") and "phone_number" in wanted:
        values["phone_number"] = demographics["phone"]
    return values


def delivery(scopes: Iterable[str], request: ClaimsRequest, granted: Collection[str]) -> dict[str, list[str]]:
    """Where each released claim goes: the ID token gets what the parameter's ``id_token`` member asks
    for; userinfo what the scopes stand for and what the ``userinfo`` member asks for (section 5.4 and
    5.5). Only claims in ``granted`` go anywhere."""
    released = set(granted)
    scoped = {name for name, scope in CLAIM_SCOPES.items() if scope is not None and scope in set(scopes)}
    return {
        "id_token": sorted(released & set(request.id_token)),
        "userinfo": sorted(released & (scoped | set(request.userinfo))),
    }
