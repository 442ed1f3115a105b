"""Tables of the G2P Connect disburse API (prefix ``payments_g2p_``): the message ids each sender used, the
transactions received, and one row per item accepted, keyed by the sender's ``reference_id``.

The primary key ``(sender_id, reference_id)`` is what refuses a duplicate reference id: however many
processes accept messages at once, the database admits one item per reference, so a reference is paid once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["G2pBase", "G2pItemRow", "G2pMessageRow", "G2pTransactionRow"]


class G2pBase(DeclarativeBase):
    pass


class G2pMessageRow(G2pBase):
    """A ``message_id`` received from a sender; a second message with the same id is a replay."""

    __tablename__ = "payments_g2p_message"

    sender_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class G2pTransactionRow(G2pBase):
    """A disburse request: the reference of each of its items in order, and the answers of the items
    refused when it was received (by position); the others are :class:`G2pItemRow` rows."""

    __tablename__ = "payments_g2p_transaction"

    sender_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    transaction_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    correlation_id: Mapped[str] = mapped_column(String(100), unique=True)
    references: Mapped[list[str]] = mapped_column(JSON)
    refused: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class G2pItemRow(G2pBase):
    """One accepted payment instruction and where it stands (``PDNG``, ``SUCC`` or ``RJCT``).

    ``submitted`` is set, and committed, before the instruction goes to the provider: an item found
    submitted after a crash is settled by a status query, never blindly sent again.
    """

    __tablename__ = "payments_g2p_item"
    __table_args__ = (Index("ix_payments_g2p_item_transaction", "sender_id", "transaction_id"),)

    sender_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    reference_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    transaction_id: Mapped[str] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(35), unique=True)
    payer_fa: Mapped[str] = mapped_column(String(130))
    payee_fa: Mapped[str] = mapped_column(String(130))
    payee_name: Mapped[str | None] = mapped_column(String(200))
    amount: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    note: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(4))
    submitted: Mapped[bool] = mapped_column(Boolean)
    reason_code: Mapped[str | None] = mapped_column(String(64))
    reason_message: Mapped[str | None] = mapped_column(String(999))
    provider_reference: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
