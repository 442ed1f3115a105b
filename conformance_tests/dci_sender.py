"""The suite as a registered DCI sender (SPDCI registry API 1.0, https://github.com/spdci/standards): who it
is, the key it signs envelopes with, the record it knows, where it hears callbacks.

Envelopes are ``{signature, header, message}`` with the signature a detached JWS (RFC 7515 Appendix F,
https://www.rfc-editor.org/rfc/rfc7515) over the RFC 8785 canonical JSON of ``{header, message}``, as the
dpi signature profile says. The target's operator registers the suite's sender id with the public keys
``dpi conformance sender-jwks`` prints and the callback URL the suite listens on.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from dpi.keys import SigningKey
from dpi.signing import sign_detached

__all__ = ["DCI_VERSION", "DciOptions", "EventRequest", "dci_time", "load_event_request"]

DCI_VERSION: Final = "1.0.0"
_EVENT_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def dci_time(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds, as DCI timestamps are written."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class EventRequest:
    """One request to the target, prepared by its operator, that makes the registry emit an event (for
    example a records-API call creating or updating a test record, with a token allowed to do so)."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    body: Any = None


def load_event_request(path: Path) -> EventRequest:
    """``{"method", "path", "headers", "body"}`` from a JSON file; ``ValueError`` with a one-line reason."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"cannot read the event request {path}: {error}") from None
    if not isinstance(document, dict):
        raise ValueError(f"{path}: the event request is a JSON object")
    method, target, headers = document.get("method"), document.get("path"), document.get("headers", {})
    if not isinstance(method, str) or method.upper() not in _EVENT_METHODS:
        raise ValueError(f"{path}: method is one of {', '.join(sorted(_EVENT_METHODS))}")
    if not isinstance(target, str) or not target.startswith("/"):
        raise ValueError(f"{path}: path is a path on the target, starting with /")
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ValueError(f"{path}: headers is an object of strings")
    return EventRequest(method.upper(), target, headers, document.get("body"))


@dataclass(frozen=True)
class DciOptions:
    """What the ``registry-dci`` profile needs: the registry ``code`` under test, the suite's registered
    ``sender_id`` and signing ``key``, an identifier ``id_type``/``id_value`` a record of the registry
    holds, the ``purpose`` searches are made for, where the suite listens for callbacks
    (``callback_host``/``callback_port``, the address the sender's callback URL reaches), and the
    ``event`` request that makes the registry emit an event after the suite subscribed."""

    registry: str
    sender_id: str
    key: SigningKey = field(repr=False)
    id_type: str
    id_value: str = field(repr=False)
    purpose: str = "official-statistics"
    callback_host: str = "127.0.0.1"
    callback_port: int = 8791
    event: EventRequest | None = None

    def __post_init__(self) -> None:
        if not self.registry or not self.sender_id or not self.id_type or not self.id_value:
            raise ValueError("the registry code, sender id, identifier type and value are all needed")
        if not 0 <= self.callback_port < 65536:
            raise ValueError("the callback port is 0 to 65535")

    def jwks(self) -> dict[str, Any]:
        """The public keys the operator registers for the suite's sender."""
        return {"keys": [self.key.public_jwk()]}

    def header(self, action: str, *, now: datetime | None = None, **members: Any) -> dict[str, Any]:
        """A fresh request header (new message id, our clock) for ``action``."""
        return {
            "version": DCI_VERSION,
            "message_id": str(uuid.uuid4()),
            "message_ts": dci_time(now or datetime.now(UTC)),
            "action": action,
            "sender_id": self.sender_id,
            "receiver_id": self.registry,
            "total_count": 1,
            "is_msg_encrypted": False,
            **members,
        }

    def envelope(
        self, header: Mapping[str, Any], message: Mapping[str, Any], *, key: SigningKey | None = None
    ) -> dict[str, Any]:
        """``header`` and ``message`` signed with the suite's key (or ``key``, to test refusals)."""
        body: dict[str, Any] = {"header": dict(header), "message": dict(message)}
        return {"signature": sign_detached(body, key or self.key), **body}
