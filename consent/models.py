"""Tables of the consent block (Alembic branch ``consent``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AgreementRow",
    "ChainHead",
    "ChainSignature",
    "ConsentBase",
    "ConsentRow",
    "EventRow",
    "ReceiptRow",
    "UsageRow",
]

_ID = String(36)
_MEMBER = String(255)
_SUBJECT = String(128)


class ConsentBase(DeclarativeBase):
    pass


class AgreementRow(ConsentBase):
    """One version of an agreement; the full document is kept as published."""

    __tablename__ = "consent_agreement"
    __table_args__ = (UniqueConstraint("agreement_id", "version", name="uq_consent_agreement_version"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    agreement_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    consumer: Mapped[str] = mapped_column(_MEMBER)
    purpose: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConsentRow(ConsentBase):
    """A consent record. ``state`` is the last state written; the true state at a moment also
    depends on ``valid_until`` and ``guardian_until`` (see ``consent.service.effective_state``)."""

    __tablename__ = "consent_record"
    __table_args__ = (
        Index("ix_consent_record_subject", "subject"),
        Index("ix_consent_record_lookup", "subject", "consumer", "purpose"),
        Index("ix_consent_record_due", "state", "valid_until"),
        Index("ix_consent_record_agreement", "agreement_id", "agreement_version"),
    )

    consent_id: Mapped[str] = mapped_column(_ID, primary_key=True)
    agreement_id: Mapped[str] = mapped_column(String(64))
    agreement_version: Mapped[int] = mapped_column(Integer)
    consumer: Mapped[str] = mapped_column(_MEMBER)
    purpose: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(_SUBJECT)
    state: Mapped[str] = mapped_column(String(16))
    granted_role: Mapped[str | None] = mapped_column(String(16))
    granted_actor: Mapped[str | None] = mapped_column(String(128))
    guardian: Mapped[str | None] = mapped_column(_SUBJECT)
    guardian_basis: Mapped[str | None] = mapped_column(String(16))
    guardian_until: Mapped[date | None] = mapped_column(Date)
    fields: Mapped[list[str]] = mapped_column(JSON)
    requested_validity_days: Mapped[int | None] = mapped_column(Integer)
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    requires_reconfirmation: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventRow(ConsentBase):
    """One transition, chained per subject: ``hash`` covers the event and ``prev_hash``."""

    __tablename__ = "consent_event"
    __table_args__ = (
        UniqueConstraint("subject", "seq", name="uq_consent_event_chain"),
        Index("ix_consent_event_consent", "consent_id"),
    )

    event_id: Mapped[str] = mapped_column(_ID, primary_key=True)
    consent_id: Mapped[str] = mapped_column(_ID)
    subject: Mapped[str] = mapped_column(_SUBJECT)
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor_role: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    notice_language: Mapped[str | None] = mapped_column(String(8))
    notice_hash: Mapped[str | None] = mapped_column(String(80))
    reason: Mapped[str | None] = mapped_column(String(500))
    prev_hash: Mapped[str] = mapped_column(String(80))
    hash: Mapped[str] = mapped_column(String(80))


class ChainHead(ConsentBase):
    """The last event of a subject's chain; updated under a row lock so the chain never forks."""

    __tablename__ = "consent_chain_head"

    subject: Mapped[str] = mapped_column(_SUBJECT, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(80))


class ChainSignature(ConsentBase):
    """A signed statement of a chain head: later edits of earlier events no longer match it."""

    __tablename__ = "consent_chain_signature"
    __table_args__ = (Index("ix_consent_chain_signature_subject", "subject", "seq"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    subject: Mapped[str] = mapped_column(_SUBJECT)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(80))
    jws: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReceiptRow(ConsentBase):
    """A signed receipt for an approval, withdrawal or revocation."""

    __tablename__ = "consent_receipt"
    __table_args__ = (Index("ix_consent_receipt_consent", "consent_id"),)

    receipt_id: Mapped[str] = mapped_column(_ID, primary_key=True)
    consent_id: Mapped[str] = mapped_column(_ID)
    event_id: Mapped[str] = mapped_column(_ID)
    action: Mapped[str] = mapped_column(String(32))
    jws: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UsageRow(ConsentBase):
    """Accesses counted against a consent's frequency limit, per period window."""

    __tablename__ = "consent_usage"

    consent_id: Mapped[str] = mapped_column(_ID, primary_key=True)
    period_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
