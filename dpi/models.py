"""Tables the kernel owns (Alembic branch ``dpi``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["KernelBase", "OutboxMessage"]


class KernelBase(DeclarativeBase):
    pass


class OutboxMessage(KernelBase):
    """An event written in the same transaction as the change it announces (transactional outbox).

    A dispatcher claims messages for a lease, delivers them, and marks them delivered; a message
    whose delivery failed becomes available again at ``available_at``. Nothing is lost if a
    process dies between the commit and the delivery.
    """

    __tablename__ = "dpi_outbox"
    __table_args__ = (Index("ix_dpi_outbox_pending", "delivered_at", "available_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    message_key: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    available_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
