"""The FSPIOP 1.1 wire: media types and version negotiation, headers, identifiers, amounts, times and the
ILP condition and fulfilment.

Mojaloop FSPIOP API 1.1
(https://github.com/mojaloop/mojaloop-specification/blob/master/fspiop-api/documents/v1.1-document-set/API-Definition_v1.1.md):
section 3.2 (HTTP details and headers), 3.3.4 (version negotiation through ``Accept`` and ``Content-Type``),
4.4 (conditional transfers: the condition is the SHA-256 of a 32-byte fulfilment) and the data types of
section 7.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import format_datetime
from typing import Any, Final
from urllib.parse import quote

from payments_adapter.contract import Money

__all__ = [
    "API_VERSION",
    "ID_NAMESPACE",
    "MediaType",
    "accept",
    "accepts",
    "b64url",
    "b64url_decode",
    "condition_of",
    "content_type",
    "correlation_id",
    "error_body",
    "fspiop_datetime",
    "fulfils",
    "http_date",
    "is_fsp_id",
    "money_from_wire",
    "parse_fspiop_datetime",
    "parse_media_type",
    "path_segment",
    "wire_amount",
]

API_VERSION: Final = "1.1"
_MAJOR, _MINOR = (int(part) for part in API_VERSION.split("."))
#: The namespace of the UUIDs (RFC 4122 version 5) this adapter derives from idempotency keys.
ID_NAMESPACE: Final = uuid.UUID("8f0b6a57-3f0e-5c55-9a57-6f7370696f70")

_MEDIA_TYPE: Final = re.compile(r"^application/vnd\.interoperability\.([a-zA-Z]+)\+json$")
_VERSION: Final = re.compile(r"^([0-9]{1,3})(?:\.([0-9]{1,3}))?$")
_FSP_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_SEGMENT: Final = re.compile(r"^[A-Za-z0-9._+@-]{1,128}$")
_DATETIME: Final = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{3}(Z|[+-][0-9]{2}:[0-9]{2})$"
)


@dataclass(frozen=True)
class MediaType:
    """``application/vnd.interoperability.<resource>+json;version=<major>[.<minor>]``."""

    resource: str
    major: int | None
    minor: int | None


def content_type(resource: str) -> str:
    """The ``Content-Type`` of a 1.1 body of ``resource`` (``parties``, ``quotes``, ``transfers``)."""
    return f"application/vnd.interoperability.{resource}+json;version={API_VERSION}"


def accept(resource: str) -> str:
    """The ``Accept`` a request sends: any minor version of major version 1 (section 3.3.4.1)."""
    return f"application/vnd.interoperability.{resource}+json;version={_MAJOR}"


def parse_media_type(value: str) -> MediaType | None:
    """One media range of an ``Accept`` or a ``Content-Type``; None when it is not an FSPIOP one."""
    kind, _, parameters = value.partition(";")
    match = _MEDIA_TYPE.fullmatch(kind.strip())
    if match is None:
        return None
    major = minor = None
    for parameter in parameters.split(";"):
        name, _, text = parameter.partition("=")
        if name.strip().lower() != "version":
            continue
        version = _VERSION.fullmatch(text.strip())
        if version is None:
            return None
        major = int(version.group(1))
        minor = int(version.group(2)) if version.group(2) is not None else None
    return MediaType(match.group(1), major, minor)


def accepts(header: str | None, resource: str) -> bool:
    """Whether an ``Accept`` header admits 1.1 for ``resource``: version 1, 1.0, 1.1 or none named."""
    if not header:
        return False
    for item in header.split(","):
        media = parse_media_type(item)
        if media is None or media.resource != resource:
            continue
        if media.major is None or (media.major == _MAJOR and (media.minor is None or media.minor <= _MINOR)):
            return True
    return False


def error_body(code: str, description: str, *, versions: bool = False) -> dict[str, Any]:
    """An FSPIOP ``errorInformation`` body; with ``versions`` the supported versions are listed in the
    extension list, major as key and minor as value (section 3.3.4.3)."""
    information: dict[str, Any] = {"errorCode": code, "errorDescription": description[:128]}
    if versions:
        information["extensionList"] = {"extension": [{"key": str(_MAJOR), "value": str(_MINOR)}]}
    return {"errorInformation": information}


def http_date(moment: datetime | None = None) -> str:
    """The ``Date`` header (RFC 7231 IMF-fixdate)."""
    return format_datetime((moment or datetime.now(UTC)).astimezone(UTC), usegmt=True)


def is_fsp_id(value: str) -> bool:
    """Whether ``value`` can be an FSP identifier in a header (no CR, LF or other control character)."""
    return isinstance(value, str) and bool(_FSP_ID.fullmatch(value))


def path_segment(value: str) -> str:
    """``value`` as one URL path segment, refused when it could climb or split the path."""
    if not isinstance(value, str) or not _SEGMENT.fullmatch(value) or value in (".", ".."):
        raise ValueError("not a party identifier that can be put into a URL path")
    return quote(value, safe="")


def correlation_id(payer_fsp: str, kind: str, idempotency_key: str) -> str:
    """The ``quoteId``, ``transactionId`` or ``transferId`` of a payment, derived from its key.

    The same key always gives the same IDs, so a resubmission is a resend of the same objects
    (section 3.2.5), never a second transfer.
    """
    return str(uuid.uuid5(ID_NAMESPACE, f"{payer_fsp}/{kind}/{idempotency_key}"))


def wire_amount(money: Money) -> str:
    """An FSPIOP Amount: no trailing zeros, no exponent (``1500.00`` is ``1500``, ``12.50`` is ``12.5``)."""
    text = f"{money.amount.normalize():f}"
    return text if text != "-0" else "0"


def money_from_wire(document: Mapping[str, Any]) -> Money:
    """Money from an FSPIOP ``{"amount", "currency"}``; MoneyError when the currency cannot carry it."""
    return Money(Decimal(str(document["amount"])), str(document["currency"]))


def fspiop_datetime(moment: datetime) -> str:
    """An FSPIOP DateTime: UTC with milliseconds (``2026-05-24T08:38:08.699Z``)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_fspiop_datetime(text: str) -> datetime:
    """The instant an FSPIOP DateTime names (raises ValueError)."""
    if not isinstance(text, str) or not _DATETIME.fullmatch(text):
        raise ValueError("not an FSPIOP DateTime")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def b64url(raw: bytes) -> str:
    """Base64url without padding (RFC 4648 section 5), as FSPIOP's BinaryString."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """The bytes of a base64url string, padded or not (raises ValueError)."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as error:
        raise ValueError("not base64url") from error


def condition_of(fulfilment: bytes) -> str:
    """The ILP condition of a fulfilment: SHA-256 of the 32-byte preimage, base64url (section 4.4)."""
    return b64url(hashlib.sha256(fulfilment).digest())


def fulfils(fulfilment: str, condition: str) -> bool:
    """Whether ``fulfilment`` (base64url) is a 32-byte preimage whose SHA-256 is ``condition``."""
    try:
        preimage = b64url_decode(fulfilment)
    except ValueError:
        return False
    if len(preimage) != 32:
        return False
    return hmac.compare_digest(condition_of(preimage), condition)
