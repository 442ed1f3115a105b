"""Tables of the ID-to-account mapper (migration ``payments_0002``).

A link is never updated in place except to close it: each change of where a person is paid closes
the open link (``effective_until``) and opens a new one, so the rows are the full history and
:meth:`~payments_adapter.mapper.service.MapperService.financial_addresses` can answer for any moment.
Two partial unique indexes hold the invariants even under concurrent requests: a beneficiary has at
most one open link, and an address is open for at most one beneficiary unless its links are flagged
``shared``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Index, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ConflictRow",
    "FreezeRow",
    "LinkEventRow",
    "LinkRow",
    "MapperBase",
    "MapperRequestRow",
    "SharedAddressRow",
]

_ID = String(36)
_ACTOR = String(255)
_BENEFICIARY = String(128)
_ADDRESS = String(130)
_TS = DateTime(timezone=True)


class MapperBase(DeclarativeBase):
    pass


class LinkRow(MapperBase):
    """Where one beneficiary is paid from ``effective_from`` until ``effective_until`` (open: NULL)."""

    __tablename__ = "payments_mapper_link"
    __table_args__ = (
        Index(
            "ux_payments_mapper_link_open_beneficiary",
            "beneficiary_id",
            unique=True,
            sqlite_where=text("effective_until IS NULL"),
            postgresql_where=text("effective_until IS NULL"),
        ),
        Index(
            "ux_payments_mapper_link_open_address",
            "fa",
            unique=True,
            sqlite_where=text("effective_until IS NULL AND NOT shared"),
            postgresql_where=text("effective_until IS NULL AND NOT shared"),
        ),
        Index("ix_payments_mapper_link_beneficiary", "beneficiary_id", "effective_from"),
        Index("ix_payments_mapper_link_address", "fa", "effective_from"),
    )

    link_id: Mapped[str] = mapped_column(_ID, primary_key=True)
    beneficiary_id: Mapped[str] = mapped_column(_BENEFICIARY)
    fa: Mapped[str] = mapped_column(_ADDRESS)
    account_info: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_receipt: Mapped[str] = mapped_column(Text)
    consent_id: Mapped[str] = mapped_column(_ID)
    receipt_id: Mapped[str] = mapped_column(_ID)
    effective_from: Mapped[datetime] = mapped_column(_TS)
    effective_until: Mapped[datetime | None] = mapped_column(_TS, nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(_TS)


class LinkEventRow(MapperBase):
    """One change of a beneficiary's links: who made it, through which channel, when, why, and from
    when it counts for payments."""

    __tablename__ = "payments_mapper_event"
    __table_args__ = (Index("ix_payments_mapper_event_beneficiary", "beneficiary_id", "recorded_at"),)

    event_id: Mapped[str] = mapped_column(_ID, primary_key=True)
    beneficiary_id: Mapped[str] = mapped_column(_BENEFICIARY)
    action: Mapped[str] = mapped_column(String(16))
    fa: Mapped[str | None] = mapped_column(_ADDRESS, nullable=True)
    previous_fa: Mapped[str | None] = mapped_column(_ADDRESS, nullable=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    actor: Mapped[str] = mapped_column(_ACTOR)
    channel: Mapped[str] = mapped_column(String(16))
    operator_id: Mapped[str | None] = mapped_column(_ACTOR, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(999), nullable=True)
    receipt_id: Mapped[str | None] = mapped_column(_ID, nullable=True)
    reference_id: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(_TS)
    effective_at: Mapped[datetime] = mapped_column(_TS)


class MapperRequestRow(MapperBase):
    """A change request already answered, by caller and ``reference_id``: a resend with the same
    content gets the same answer, a different content under the same id is refused."""

    __tablename__ = "payments_mapper_request"

    caller: Mapped[str] = mapped_column(_ACTOR, primary_key=True)
    reference_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    action: Mapped[str] = mapped_column(String(16))
    content_hash: Mapped[str] = mapped_column(String(64))
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(_TS)


class SharedAddressRow(MapperBase):
    """An address that may be linked to several beneficiaries (a household wallet): why, and who
    allowed it."""

    __tablename__ = "payments_mapper_shared_address"

    fa: Mapped[str] = mapped_column(_ADDRESS, primary_key=True)
    reason: Mapped[str] = mapped_column(String(999))
    allowed_by: Mapped[str] = mapped_column(_ACTOR)
    allowed_at: Mapped[datetime] = mapped_column(_TS)


class ConflictRow(MapperBase):
    """A refused attempt to link an address already linked to someone else (the same mobile number
    enlisted for two people), kept for the programme's fraud and data-quality review."""

    __tablename__ = "payments_mapper_conflict"
    __table_args__ = (Index("ix_payments_mapper_conflict_at", "recorded_at"),)

    conflict_id: Mapped[str] = mapped_column(_ID, primary_key=True)
    fa: Mapped[str] = mapped_column(_ADDRESS)
    beneficiary_id: Mapped[str] = mapped_column(_BENEFICIARY)
    holder_id: Mapped[str] = mapped_column(_BENEFICIARY)
    actor: Mapped[str] = mapped_column(_ACTOR)
    reference_id: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(_TS)


class FreezeRow(MapperBase):
    """A payment cycle's freeze window: from its cut-off to its end, changes do not alter its payments."""

    __tablename__ = "payments_mapper_freeze"
    __table_args__ = (Index("ix_payments_mapper_freeze_window", "cut_off", "ends_at"),)

    cycle_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    cut_off: Mapped[datetime] = mapped_column(_TS)
    ends_at: Mapped[datetime] = mapped_column(_TS)
    registered_by: Mapped[str] = mapped_column(_ACTOR)
    registered_at: Mapped[datetime] = mapped_column(_TS)
