"""Idempotency keys of disbursement items: one key per entitlement, the same on every server, forever.

The key is derived from programme, cycle, beneficiary and entitlement, so uploading the same entitlement
again (another file, another server, after a crash) yields the same key, which the database holds
UNIQUE and the provider pays at most once. It is 32 characters of base32 (``[A-Z2-7]``), within ISO
20022 ``Max35Text`` so it doubles as the ``EndToEndId`` of a pain.001 instruction
(https://www.iso20022.org/, ``PaymentIdentification/EndToEndId``) and as G2P Connect's ``reference_id``.

The derivation is deliberately not keyed with a local secret: a secret that differed between two
servers, or was lost and recreated, would give one entitlement two keys and pay it twice. Beneficiary
ids are sector pseudonyms, so the hash reveals no national number.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Final

__all__ = ["KEY_LENGTH", "idempotency_key"]

KEY_LENGTH: Final = 32
_DOMAIN: Final = b"dpi-blocks/payments/item-key/v1"


def idempotency_key(programme_id: str, cycle_id: str, beneficiary_id: str, entitlement: str) -> str:
    """The item key of one entitlement (deterministic; unit separators keep the fields apart)."""
    content = "\x1f".join((programme_id, cycle_id, beneficiary_id, entitlement)).encode()
    digest = hashlib.sha256(_DOMAIN + b"\x1e" + content).digest()
    return base64.b32encode(digest).decode("ascii")[:KEY_LENGTH]
