"""The disbursement engine's tables (Alembic branch ``payments``), as SQLAlchemy Core tables.

The engine works on thousands of items per statement, so it speaks Core rather than the ORM. Amounts
are kept in the currency's minor unit (an exact integer), so sums per currency are exact in SQL on
SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "FINAL_STATES",
    "TRANSITIONS",
    "ItemState",
    "batches",
    "cycles",
    "items",
    "metadata",
    "programmes",
    "transitions",
    "webhooks",
]

metadata: Final = MetaData()

_ID = BigInteger().with_variant(Integer, "sqlite")
_TS = DateTime(timezone=True)

programmes: Final = Table(
    "payments_programme",
    metadata,
    Column("programme_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", _TS, nullable=False),
)

cycles: Final = Table(
    "payments_cycle",
    metadata,
    Column("programme_id", String(64), ForeignKey("payments_programme.programme_id"), primary_key=True),
    Column("cycle_id", String(64), primary_key=True),
    Column("cutoff_at", _TS, nullable=False),
    Column("created_at", _TS, nullable=False),
)

batches: Final = Table(
    "payments_batch",
    metadata,
    Column("batch_id", String(36), primary_key=True),
    Column("programme_id", String(64), nullable=False),
    Column("cycle_id", String(64), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("source", String(32), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", _TS, nullable=False),
    Column("preflight_at", _TS, nullable=True),
    ForeignKeyConstraint(
        ["programme_id", "cycle_id"], ["payments_cycle.programme_id", "payments_cycle.cycle_id"]
    ),
)

items: Final = Table(
    "payments_item",
    metadata,
    Column("item_id", _ID, primary_key=True, autoincrement=True),
    Column("batch_id", String(36), ForeignKey("payments_batch.batch_id"), nullable=False),
    Column("line", Integer, nullable=False),
    Column("idempotency_key", String(35), nullable=False),
    Column("beneficiary_id", String(128), nullable=False),
    Column("entitlement", String(128), nullable=False),
    Column("financial_address", String(160), nullable=True),
    Column("payee_name", String(200), nullable=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason_code", String(80), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", _TS, nullable=True),
    Column("lease_until", _TS, nullable=True),
    Column("provider_reference", String(100), nullable=True),
    Column("updated_at", _TS, nullable=False),
    UniqueConstraint("idempotency_key", name="uq_payments_item_key"),
    Index("ix_payments_item_batch_state", "batch_id", "state", "item_id"),
)

transitions: Final = Table(
    "payments_transition",
    metadata,
    Column("transition_id", _ID, primary_key=True, autoincrement=True),
    Column("item_id", _ID, ForeignKey("payments_item.item_id"), nullable=False),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=False),
    Column("reason_code", String(80), nullable=True),
    Column("actor", String(255), nullable=False),
    Column("at", _TS, nullable=False),
    Index("ix_payments_transition_item", "item_id", "transition_id"),
)

webhooks: Final = Table(
    "payments_webhook",
    metadata,
    Column("webhook_id", String(36), primary_key=True),
    Column("url", Text, nullable=False),
    Column("programme_id", String(64), nullable=True),
    Column("created_by", String(255), nullable=False),
    Column("created_at", _TS, nullable=False),
    Column("deleted_at", _TS, nullable=True),
)


class ItemState(enum.StrEnum):
    """Where one disbursement item is; the engine moves items only along :data:`TRANSITIONS`."""

    PENDING = "pending"
    """Uploaded, not yet through the pre-flight."""
    INVALID = "invalid"
    """Refused by the pre-flight (no address, unknown account, name mismatch...); no money moved."""
    READY = "ready"
    """Passed the pre-flight; waiting to be submitted (again, after a retryable error or NOT_FOUND)."""
    SUBMITTING = "submitting"
    """Committed as being sent BEFORE the provider call; found so after a crash, it is unknown."""
    UNKNOWN = "unknown"
    """The provider may or may not have it; only a status query settles it."""
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"
    """Retryable errors until the attempts ran out; never reached the provider's books."""
    MANUAL_REVIEW = "manual_review"
    """An outcome nobody can settle automatically (a single-flight provider lost its answer)."""
    CANCELLED = "cancelled"
    REVERSED = "reversed"
    RETURNED = "returned"


_S = ItemState

TRANSITIONS: Final[Mapping[ItemState, frozenset[ItemState]]] = MappingProxyType(
    {
        _S.PENDING: frozenset({_S.READY, _S.INVALID, _S.CANCELLED}),
        _S.READY: frozenset({_S.SUBMITTING, _S.CANCELLED}),
        _S.SUBMITTING: frozenset(
            {
                _S.ACCEPTED,
                _S.COMPLETED,
                _S.REJECTED,
                _S.UNKNOWN,
                _S.READY,
                _S.FAILED,
                _S.MANUAL_REVIEW,
                # A provider may answer a submission with what already became of the payment.
                _S.CANCELLED,
                _S.REVERSED,
                _S.RETURNED,
            }
        ),
        _S.UNKNOWN: frozenset(
            {
                _S.ACCEPTED,
                _S.COMPLETED,
                _S.REJECTED,
                _S.READY,
                _S.MANUAL_REVIEW,
                _S.CANCELLED,
                _S.REVERSED,
                _S.RETURNED,
            }
        ),
        _S.ACCEPTED: frozenset({_S.COMPLETED, _S.REJECTED, _S.CANCELLED, _S.REVERSED, _S.RETURNED}),
        _S.COMPLETED: frozenset({_S.REVERSED, _S.RETURNED}),
        _S.MANUAL_REVIEW: frozenset({_S.COMPLETED, _S.REJECTED, _S.READY, _S.CANCELLED}),
        _S.FAILED: frozenset({_S.READY}),
        _S.INVALID: frozenset(),
        _S.REJECTED: frozenset(),
        _S.CANCELLED: frozenset(),
        _S.REVERSED: frozenset(),
        _S.RETURNED: frozenset(),
    }
)
"""Every move an item may make; anything else is a bug the engine refuses."""

FINAL_STATES: Final = frozenset(state for state, targets in TRANSITIONS.items() if not targets) | {
    _S.COMPLETED,
    _S.FAILED,
    _S.MANUAL_REVIEW,
}
"""States the disbursement loop leaves alone (an operator or a return may still move some)."""
