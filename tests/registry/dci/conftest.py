"""DCI test helpers: a registered sender with its own key, and signed envelopes as a DCI client sends them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dpi.keys import SigningKey
from dpi.signing import sign_detached

SENDER_ID = "DPI/GOV/MOL/jobseekers"
PURPOSE = {"purpose": "jobseeker-registration", "consent_ref": "consent:7f3e"}


@dataclass
class DciClient:
    """A sender: builds DCI envelopes and signs them with its key."""

    sender_id: str = SENDER_ID
    key: SigningKey = field(default_factory=lambda: SigningKey.generate("EdDSA"))

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.public_jwk()]}

    def envelope(
        self,
        message: Mapping[str, Any],
        *,
        action: str = "search",
        sign: bool = True,
        now: datetime | None = None,
        message_id: str | None = None,
        **header: Any,
    ) -> dict[str, Any]:
        moment = now or datetime.now(UTC)
        head = {
            "version": "1.0.0",
            "message_id": message_id or str(uuid.uuid4()),
            "message_ts": moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "action": action,
            "sender_id": self.sender_id,
            "receiver_id": "civil",
            "total_count": 1,
            "is_msg_encrypted": False,
            **header,
        }
        body: dict[str, Any] = {"header": head, "message": dict(message)}
        if sign:
            body["signature"] = sign_detached(body, self.key)
        return body

    def search(self, *items: Mapping[str, Any], **options: Any) -> dict[str, Any]:
        message = {"transaction_id": str(uuid.uuid4()), "search_request": list(items)}
        return self.envelope(message, **options)


def item(
    query_type: str,
    query: Any,
    *,
    reference_id: str = "ref-1",
    consent: Mapping[str, Any] | None = PURPOSE,
    **criteria: Any,
) -> dict[str, Any]:
    """A ``search_request`` item."""
    search_criteria: dict[str, Any] = {
        "version": "1.0.0",
        "query_type": query_type,
        "query": query,
        **criteria,
    }
    if consent is not None:
        search_criteria["consent"] = dict(consent)
    return {
        "reference_id": reference_id,
        "timestamp": "2026-11-23T10:00:00Z",
        "search_criteria": search_criteria,
    }


def comparison(attribute: str, operator: str, value: Any) -> dict[str, Any]:
    return {"attribute_name": attribute, "operator": operator, "attribute_value": value}
