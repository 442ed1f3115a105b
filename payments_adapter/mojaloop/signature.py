"""The ``FSPIOP-Signature`` header: a JWS (RFC 7515) over the body whose protected header binds the
FSPIOP routing headers.

Mojaloop "Signature" v1.1
(https://github.com/mojaloop/mojaloop-specification/tree/master/fspiop-api/documents/v1.1-document-set):
the header value is the JSON ``{"signature": ..., "protectedHeader": ...}``, the two base64url parts of a
compact JWS whose payload (the body) travels in the HTTP body; the protected header carries ``alg``,
``FSPIOP-URI``, ``FSPIOP-HTTP-Method``, ``FSPIOP-Source`` and, when sent, ``FSPIOP-Destination`` and
``Date``. The signature is optional in FSPIOP; a deployment that configures keys requires it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import jwt
from jwt.exceptions import InvalidTokenError

from payments_adapter.mojaloop.wire import b64url, b64url_decode

__all__ = ["ALGORITHMS", "SignatureError", "sign", "verify"]

#: The algorithms accepted in a protected header; ``none`` and HMAC are never among them.
ALGORITHMS: Final = ("RS256", "RS384", "RS512", "PS256", "ES256")
_BOUND: Final = ("FSPIOP-URI", "FSPIOP-HTTP-Method", "FSPIOP-Source", "FSPIOP-Destination", "Date")
_MAX_HEADER: Final = 8192


class SignatureError(ValueError):
    """The ``FSPIOP-Signature`` is missing, malformed, made with another key, or binds other headers."""


def sign(body: bytes, *, key: Any, algorithm: str, uri: str, method: str, headers: Mapping[str, str]) -> str:
    """The ``FSPIOP-Signature`` value for a request with ``body`` to ``uri`` with these FSPIOP headers."""
    protected: dict[str, Any] = {"typ": None, "FSPIOP-URI": uri, "FSPIOP-HTTP-Method": method.upper()}
    for name in ("FSPIOP-Source", "FSPIOP-Destination", "Date"):
        if headers.get(name):
            protected[name] = headers[name]
    token = jwt.api_jws.PyJWS().encode(body, key, algorithm=algorithm, headers=protected)
    header, _, signature = token.split(".")
    return json.dumps({"signature": signature, "protectedHeader": header}, separators=(",", ":"))


def verify(
    value: str | None,
    body: bytes,
    *,
    key: Any,
    uri: str,
    method: str,
    headers: Mapping[str, str],
) -> None:
    """Return if ``value`` is a valid signature by ``key`` of ``body`` that binds these headers, else
    raise :class:`SignatureError`."""
    if not value or len(value) > _MAX_HEADER:
        raise SignatureError("the FSPIOP-Signature header is missing")
    try:
        parts = json.loads(value)
        signature, protected = parts["signature"], parts["protectedHeader"]
        if not isinstance(signature, str) or not isinstance(protected, str):
            raise TypeError
        claims = json.loads(b64url_decode(protected))
        if not isinstance(claims, dict):
            raise TypeError
    except (ValueError, TypeError, KeyError, RecursionError):
        raise SignatureError("the FSPIOP-Signature header is not a signature") from None
    try:
        jwt.api_jws.PyJWS().decode_complete(
            f"{protected}.{b64url(body)}.{signature}", key, algorithms=list(ALGORITHMS)
        )
    except (InvalidTokenError, ValueError, TypeError):
        raise SignatureError("the FSPIOP-Signature does not verify") from None
    expected = {"FSPIOP-URI": uri, "FSPIOP-HTTP-Method": method.upper()}
    expected.update({name: headers[name] for name in _BOUND[2:] if headers.get(name)})
    for name in ("FSPIOP-URI", "FSPIOP-HTTP-Method", "FSPIOP-Source"):
        if claims.get(name) != expected.get(name):
            raise SignatureError(f"the signature does not bind this request's {name}")
    for name in ("FSPIOP-Destination", "Date"):
        if name in claims and claims[name] != expected.get(name):
            raise SignatureError(f"the signature does not bind this request's {name}")
