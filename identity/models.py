"""Tables of the identity block's person register (Alembic branch ``identity``).

What is stored in clear and what is not: the register is the system of record, so a person's UIN and
demographics are held as such; a virtual ID only as a keyed hash (HMAC-SHA256), so neither the VID
nor a way from it to the UIN can be read from the database; duplicate-detection keys and the person
named in a translation audit record only as keyed hashes too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "DuplicateKeyRow",
    "HistoryRow",
    "IdentityBase",
    "PersonRow",
    "PseudonymRow",
    "TranslationRow",
    "VirtualIdRow",
]

_ID = String(36)
_HASH = String(64)
_SECTOR = String(255)
_ACTOR = String(255)
_BIGID = BigInteger().with_variant(Integer, "sqlite")
_TS = DateTime(timezone=True)


class IdentityBase(DeclarativeBase):
    pass


class PersonRow(IdentityBase):
    """A person: their UIN, status and demographics (the ``identity-demographics`` document)."""

    __tablename__ = "identity_person"
    __table_args__ = (UniqueConstraint("uin", name="uq_identity_person_uin"),)

    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    uin: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(16))
    demographics: Mapped[dict[str, Any]] = mapped_column(JSON)
    enrolled_channel: Mapped[str] = mapped_column(String(16))
    enrolled_operator: Mapped[str | None] = mapped_column(_ACTOR)
    created_at: Mapped[datetime] = mapped_column(_TS)
    updated_at: Mapped[datetime] = mapped_column(_TS)


class DuplicateKeyRow(IdentityBase):
    """A keyed hash of (full name in one script, date of birth, place of birth) of an active person.

    The primary key is what makes two active persons with the same key impossible, even when two
    operators enrol them at the same moment.
    """

    __tablename__ = "identity_duplicate_key"
    __table_args__ = (Index("ix_identity_duplicate_key_person", "person_id"),)

    key: Mapped[str] = mapped_column(_HASH, primary_key=True)
    person_id: Mapped[str] = mapped_column(_ID, ForeignKey("identity_person.id"))


class VirtualIdRow(IdentityBase):
    """A virtual ID, by its keyed hash; at most one ``active`` per person (a partial unique index)."""

    __tablename__ = "identity_vid"
    __table_args__ = (
        UniqueConstraint("vid_hash", name="uq_identity_vid_hash"),
        Index(
            "uq_identity_vid_active",
            "person_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(_BIGID, primary_key=True)
    person_id: Mapped[str] = mapped_column(_ID, ForeignKey("identity_person.id"))
    vid_hash: Mapped[str] = mapped_column(_HASH)
    status: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[datetime] = mapped_column(_TS)
    revoked_at: Mapped[datetime | None] = mapped_column(_TS)


class HistoryRow(IdentityBase):
    """One change to a person's record: who, when, why, and which fields (JSON pointers, no values)."""

    __tablename__ = "identity_history"
    __table_args__ = (Index("ix_identity_history_person", "person_id", "id"),)

    id: Mapped[int] = mapped_column(_BIGID, primary_key=True)
    person_id: Mapped[str] = mapped_column(_ID, ForeignKey("identity_person.id"))
    at: Mapped[datetime] = mapped_column(_TS)
    action: Mapped[str] = mapped_column(String(32))
    actor_role: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(_ACTOR)
    channel: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(500))
    note: Mapped[str | None] = mapped_column(String(500))
    changed: Mapped[list[str]] = mapped_column(JSON)


class PseudonymRow(IdentityBase):
    """A sector pseudonym issued for a person, so that it can be translated into another sector's."""

    __tablename__ = "identity_pseudonym"
    __table_args__ = (UniqueConstraint("person_id", "sector", name="uq_identity_pseudonym_person_sector"),)

    sector: Mapped[str] = mapped_column(_SECTOR, primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[str] = mapped_column(_ID, ForeignKey("identity_person.id"))
    issued_at: Mapped[datetime] = mapped_column(_TS)


class TranslationRow(IdentityBase):
    """An audit record of one pseudonym translation; the person only as a keyed hash."""

    __tablename__ = "identity_translation"
    __table_args__ = (
        Index("ix_identity_translation_subject", "subject_hash"),
        Index("ix_identity_translation_at", "at"),
    )

    id: Mapped[int] = mapped_column(_BIGID, primary_key=True)
    at: Mapped[datetime] = mapped_column(_TS)
    requester: Mapped[str] = mapped_column(_ACTOR)
    from_sector: Mapped[str] = mapped_column(_SECTOR)
    to_sector: Mapped[str] = mapped_column(_SECTOR)
    purpose: Mapped[str] = mapped_column(String(64))
    subject_hash: Mapped[str] = mapped_column(_HASH)
