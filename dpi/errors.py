"""The one error body every endpoint returns (schema ``error``), and the handlers that produce it.

Every refusal carries a reason code from the ``standards`` vocabulary, the HTTP status that
vocabulary assigns to it, a message in the caller's language (en, fr, ar), JSON pointers for
field-level details, and the request id. Nothing else: never a stack trace, never a value the
caller sent, never personal data.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from litestar import Request, Response
from litestar.exceptions import HTTPException

import standards

__all__ = [
    "DpiError",
    "ErrorDetail",
    "deeper_than",
    "error_body",
    "error_response",
    "handle_exception",
    "preferred_language",
    "read_json",
    "request_id_of",
]

_log = logging.getLogger("dpi.errors")

_LANGUAGES: Final = ("en", "fr", "ar")
REQUEST_ID_SCOPE_KEY: Final = "dpi.request_id"

# Statuses the framework itself raises (routing, body limits, parameter parsing), as reason codes.
_STATUS_REASON_CODES: Final[Mapping[int, str]] = {
    400: "request.invalid_parameter",
    404: "route.not_found",
    405: "method.not_allowed",
    413: "request.too_large",
    415: "request.unsupported_media_type",
    429: "request.rate_limited",
}


@dataclass(frozen=True)
class ErrorDetail:
    """One field-level problem: where (RFC 6901 pointer into the request), why, and a message."""

    pointer: str
    reason_code: str
    message: str

    def as_document(self) -> dict[str, str]:
        return {"pointer": self.pointer, "reason_code": self.reason_code, "message": self.message}


class DpiError(Exception):
    """A refusal with a reason code from the vocabulary; the status comes from the vocabulary too."""

    def __init__(
        self,
        reason_code: str,
        message: str | None = None,
        *,
        details: Sequence[ErrorDetail] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.reason = standards.reason_code(reason_code)
        self.custom_message = message
        self.details = tuple(details)
        self.headers = dict(headers or {})
        super().__init__(reason_code)

    @property
    def reason_code(self) -> str:
        return self.reason.code

    @property
    def status_code(self) -> int:
        return self.reason.http_status


def preferred_language(accept_language: str | None) -> str:
    """The first of en, fr, ar named in an Accept-Language header (by q-value), English otherwise."""
    if not accept_language:
        return "en"
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().split("-")[0].lower()
        if primary in _LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else "en"


def request_id_of(request: Request[Any, Any, Any]) -> str:
    """The id the request-context layer gave this request (also sent as ``X-Request-Id``)."""
    value = request.scope.get(REQUEST_ID_SCOPE_KEY)
    return value if isinstance(value, str) else ""


def error_body(
    reason_code: str,
    request_id: str,
    *,
    message: str | None = None,
    details: Iterable[ErrorDetail] = (),
    language: str = "en",
) -> dict[str, Any]:
    """The ``error`` document for ``reason_code``, in ``language``."""
    reason = standards.reason_code(reason_code)
    return {
        "reason_code": reason.code,
        "message": message or reason.message(language),
        "details": [detail.as_document() for detail in details],
        "request_id": request_id,
    }


def error_response(
    request: Request[Any, Any, Any],
    reason_code: str,
    *,
    message: str | None = None,
    details: Iterable[ErrorDetail] = (),
    headers: Mapping[str, str] | None = None,
) -> Response[dict[str, Any]]:
    language = preferred_language(request.headers.get("accept-language"))
    body = error_body(
        reason_code, request_id_of(request), message=message, details=details, language=language
    )
    return Response(
        body,
        status_code=standards.reason_code(reason_code).http_status,
        headers={"Content-Language": language, **(headers or {})},
        media_type="application/json",
    )


def handle_exception(request: Request[Any, Any, Any], exception: Exception) -> Response[dict[str, Any]]:
    """Turn any exception into the standard error body; unexpected ones become a bare 500."""
    if isinstance(exception, DpiError):
        return error_response(
            request,
            exception.reason_code,
            message=exception.custom_message,
            details=exception.details,
            headers=exception.headers,
        )
    if isinstance(exception, HTTPException) and exception.status_code in _STATUS_REASON_CODES:
        headers = dict(exception.headers or {})
        return error_response(request, _STATUS_REASON_CODES[exception.status_code], headers=headers)
    # The exception text may hold values from the request (personal data): neither the caller nor
    # the log gets it. The operator gets the type and where it happened; the caller the request id.
    _log.error(
        "unhandled exception",
        extra={
            "event": "unhandled_exception",
            "exception_type": f"{type(exception).__module__}.{type(exception).__qualname__}",
            "traceback": "".join(traceback.format_tb(exception.__traceback__)),
        },
    )
    return error_response(request, "internal.error")


_MAX_DETAILS: Final = 100
#: No published schema nests deeper; the full validator recurses per level, so deeper bodies are
#: refused before validation rather than risking the interpreter's recursion limit.
MAX_JSON_DEPTH: Final = 64


def deeper_than(document: Any, limit: int) -> bool:
    """Whether ``document`` nests more than ``limit`` levels (checked without recursion)."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)
    return False


_JSON_MEDIA_TYPES: Final = ("application/json",)


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259) and cannot be canonicalised for signing.
    raise ValueError(f"{name} is not allowed in JSON")


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type in _JSON_MEDIA_TYPES or media_type.endswith("+json")


async def read_json(request: Request[Any, Any, Any], schema_ref: str) -> Any:
    """The request body parsed as JSON and checked against ``schema_ref``, or a DpiError.

    The compiled validator decides first (the hot path); only an invalid body pays for the full
    report of every error with its pointer.
    """
    if not _is_json(request.headers.get("content-type", "")):
        raise DpiError("request.unsupported_media_type", details=[])
    raw = await request.body()
    try:
        document = json.loads(raw, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError):
        raise DpiError("request.malformed_json") from None
    if deeper_than(document, MAX_JSON_DEPTH):
        raise DpiError(
            "request.invalid",
            details=[ErrorDetail("", "request.invalid", f"nested deeper than {MAX_JSON_DEPTH} levels")],
        )
    validator = standards.validator(schema_ref)
    if not validator.is_valid(document):
        # The report is capped so that a hostile body cannot make the answer larger than the question.
        issues = validator.issues(document, limit=_MAX_DETAILS)
        raise DpiError(
            "request.invalid",
            details=[ErrorDetail(issue.pointer, issue.reason_code, issue.message) for issue in issues],
        )
    return document
