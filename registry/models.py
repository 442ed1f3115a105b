"""Tables of the registry block (Alembic branch ``registry``).

Searchable attributes live in their own table, one row per value with a typed column for each
kind (text, number, date), rather than in generated columns of the records table: one schema serves
every registry a country defines as data, multi-valued attributes (skills, household members) are
plain rows, a search compiles to the same parameterised SQL on PostgreSQL and SQLite, and the shared
indexes ``(registry, attribute, value)`` answer equality, range and prefix lookups. See docs/registry.md.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Index,
    Integer,
    Numeric,
    String,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AttributeRow",
    "ChangeRequestRow",
    "DciMessageRow",
    "DciSenderRow",
    "DciSubscriptionRow",
    "DciTransactionRow",
    "DuplicateRow",
    "IdentifierRow",
    "ReadRow",
    "RecordRow",
    "RegistryBase",
    "VersionRow",
]

_ID = String(36)
_CODE = String(32)
_ACTOR = String(255)
_TS = DateTime(timezone=True)


class RegistryBase(DeclarativeBase):
    pass


class RecordRow(RegistryBase):
    """The current version of a record. ``status`` is active, deleted (soft) or merged (into
    ``merged_into``); ``version`` grows by one with every change and guards updates (optimistic locking)."""

    __tablename__ = "registry_record"
    __table_args__ = (
        Index("ix_registry_record_registry", "registry", "status", "record_type"),
        Index("ix_registry_record_merged_into", "merged_into"),
    )

    record_id: Mapped[str] = mapped_column(_ID, primary_key=True)
    registry_code: Mapped[str] = mapped_column("registry", _CODE)
    record_type: Mapped[str] = mapped_column(String(32))
    identifiers: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(8))
    merged_into: Mapped[str | None] = mapped_column(_ID)
    created_at: Mapped[datetime] = mapped_column(_TS)
    updated_at: Mapped[datetime] = mapped_column(_TS)


class IdentifierRow(RegistryBase):
    """An identifier held by a record; the primary key makes it unique per registry and type. Rows stay
    when a record is deleted or merged, so an identifier is never handed to another record."""

    __tablename__ = "registry_identifier"
    __table_args__ = (Index("ix_registry_identifier_record", "record_id"),)

    registry_code: Mapped[str] = mapped_column("registry", _CODE, primary_key=True)
    identifier_type: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(100), primary_key=True)
    record_id: Mapped[str] = mapped_column(_ID)


class AttributeRow(RegistryBase):
    """One searchable value of an active record, in the column of its type (the others are null)."""

    __tablename__ = "registry_attribute"
    __table_args__ = tuple(
        Index(
            f"ix_registry_attribute_{kind}",
            "registry",
            "attribute",
            column,
            "record_id",
            postgresql_where=text(f"{column} IS NOT NULL"),
            sqlite_where=text(f"{column} IS NOT NULL"),
        )
        for kind, column in (("text", "value_text"), ("number", "value_number"), ("date", "value_date"))
    )

    record_id: Mapped[str] = mapped_column(_ID, primary_key=True)
    attribute: Mapped[str] = mapped_column(String(63), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    registry_code: Mapped[str] = mapped_column("registry", _CODE)
    value_text: Mapped[str | None] = mapped_column(String(200))
    value_number: Mapped[Decimal | None] = mapped_column(Numeric(24, 6))
    value_date: Mapped[date | None] = mapped_column(Date)


class VersionRow(RegistryBase):
    """One version of a record: what happened, who, when, why, and the RFC 6902 patch from the one before."""

    __tablename__ = "registry_version"
    __table_args__ = (Index("ix_registry_version_feed", "registry", "at", "record_id", "version"),)

    record_id: Mapped[str] = mapped_column(_ID, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    registry_code: Mapped[str] = mapped_column("registry", _CODE)
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(_ACTOR)
    at: Mapped[datetime] = mapped_column(_TS)
    reason: Mapped[str | None] = mapped_column(String(500))
    patch: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    change_request_id: Mapped[str | None] = mapped_column(_ID)
    other_record_id: Mapped[str | None] = mapped_column(_ID)


class ChangeRequestRow(RegistryBase):
    """A proposed correction and its decision."""

    __tablename__ = "registry_change_request"
    __table_args__ = (
        Index("ix_registry_change_request_status", "registry", "status", "proposed_at"),
        Index("ix_registry_change_request_record", "record_id"),
    )

    change_request_id: Mapped[str] = mapped_column(_ID, primary_key=True)
    registry_code: Mapped[str] = mapped_column("registry", _CODE)
    record_id: Mapped[str] = mapped_column(_ID)
    base_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(String(500))
    proposed_by: Mapped[str] = mapped_column(_ACTOR)
    proposed_at: Mapped[datetime] = mapped_column(_TS)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    patch: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    second_approver: Mapped[bool] = mapped_column()
    decided_by: Mapped[str | None] = mapped_column(_ACTOR)
    decided_at: Mapped[datetime | None] = mapped_column(_TS)
    decision_reason: Mapped[str | None] = mapped_column(String(500))
    applied_version: Mapped[int | None] = mapped_column(Integer)


class ReadRow(RegistryBase):
    """A read of a record about a person, one row per person the record names (``subject_hash`` is a
    keyed hash of their identifier: the log never holds it in clear)."""

    __tablename__ = "registry_read"
    __table_args__ = (
        Index("ix_registry_read_subject", "subject_hash", "at"),
        Index("ix_registry_read_record", "registry", "record_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    read_id: Mapped[str] = mapped_column(_ID)
    registry_code: Mapped[str] = mapped_column("registry", _CODE)
    record_id: Mapped[str] = mapped_column(_ID)
    subject_hash: Mapped[str] = mapped_column(String(80))
    reader: Mapped[str] = mapped_column(_ACTOR)
    purpose: Mapped[str] = mapped_column(String(64))
    consent_ref: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(_TS)


class DuplicateRow(RegistryBase):
    """A suspected duplicate in the review queue: two records (``record_id`` < ``candidate_id``), their
    score and its explanation, and the decision (merged, or not a duplicate): who, when and why."""

    __tablename__ = "registry_duplicate"
    __table_args__ = (
        Index("ix_registry_duplicate_pair", "registry", "record_id", "candidate_id", unique=True),
        Index("ix_registry_duplicate_status", "registry", "status", "score"),
    )

    duplicate_id: Mapped[str] = mapped_column(_ID, primary_key=True)
    registry_code: Mapped[str] = mapped_column("registry", _CODE)
    record_id: Mapped[str] = mapped_column(_ID)
    candidate_id: Mapped[str] = mapped_column(_ID)
    score: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    explanation: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    found_by: Mapped[str] = mapped_column(_ACTOR)
    found_at: Mapped[datetime] = mapped_column(_TS)
    decided_by: Mapped[str | None] = mapped_column(_ACTOR)
    decided_at: Mapped[datetime | None] = mapped_column(_TS)
    decision_reason: Mapped[str | None] = mapped_column(String(500))
    survivor_id: Mapped[str | None] = mapped_column(_ID)


class DciSenderRow(RegistryBase):
    """A system allowed to call the DCI API: the JWK Set that verifies its envelope signatures, where its
    asynchronous answers go, and what it may read (``grants``: ``code`` for whole records of a registry,
    ``code:group`` for one field group)."""

    __tablename__ = "registry_dci_sender"

    sender_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    jwks: Mapped[dict[str, Any]] = mapped_column(JSON)
    callback_url: Mapped[str | None] = mapped_column(String(500))
    grants: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(_TS)
    updated_at: Mapped[datetime] = mapped_column(_TS)


class DciMessageRow(RegistryBase):
    """A DCI ``message_id`` received from a sender, kept for the replay window: a second message with the
    same id is refused."""

    __tablename__ = "registry_dci_message"
    __table_args__ = (Index("ix_registry_dci_message_received", "received_at"),)

    sender_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(_TS)


class DciTransactionRow(RegistryBase):
    """An asynchronous DCI transaction: the request as received, its status (``rcvd``, ``pdng``, ``succ``,
    ``rjct``) and, once processed, the response delivered to the sender's callback."""

    __tablename__ = "registry_dci_transaction"
    __table_args__ = (Index("ix_registry_dci_transaction_correlation", "correlation_id"),)

    sender_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    transaction_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    registry_code: Mapped[str] = mapped_column("registry", _CODE)
    action: Mapped[str] = mapped_column(String(16))
    correlation_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(4))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(_TS)
    completed_at: Mapped[datetime | None] = mapped_column(_TS)


class DciSubscriptionRow(RegistryBase):
    """A sender's DCI subscription to events of a registry: notified through its callback until it
    unsubscribes (``status`` active or unsubscribed)."""

    __tablename__ = "registry_dci_subscription"
    __table_args__ = (Index("ix_registry_dci_subscription_registry", "registry", "status"),)

    subscription_code: Mapped[str] = mapped_column(String(36), primary_key=True)
    sender_id: Mapped[str] = mapped_column(String(100))
    registry_code: Mapped[str] = mapped_column("registry", _CODE)
    reference_id: Mapped[str] = mapped_column(String(100))
    events: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(_TS)
    ended_at: Mapped[datetime | None] = mapped_column(_TS)
