"""Tables of consent notifications: registered webhooks and one delivery row per notice and webhook.

Created by migration ``consent_0002`` of the ``consent`` branch; ``consent_0003`` lets a delivery have no
webhook (an ``unroutable`` notice, owed to a member that subscribed no webhook to its event).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from consent.models import ConsentBase

__all__ = ["DeliveryRow", "WebhookRow"]

_ID = String(36)
_MEMBER = String(255)
_URL = String(2048)


class WebhookRow(ConsentBase):
    """Where a consumer or provider subsystem receives the notices of the agreements naming it.

    A deleted webhook keeps its row (``deleted_at``) so that past deliveries still name where they went.
    """

    __tablename__ = "consent_webhook"
    __table_args__ = (Index("ix_consent_webhook_member", "member"),)

    webhook_id: Mapped[str] = mapped_column(_ID, primary_key=True)
    member: Mapped[str] = mapped_column(_MEMBER)
    url: Mapped[str] = mapped_column(_URL)
    events: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeliveryRow(ConsentBase):
    """One notice owed to one webhook. ``status`` is ``pending`` until acknowledged (``delivered``) or
    given up (``dead``); the unique (notification, webhook) pair makes fan-out idempotent. A notice owed to
    a member without a subscribed webhook is one ``unroutable`` row with no webhook and no URL, whose id
    derives from the notification and the member (so it too is written once)."""

    __tablename__ = "consent_delivery"
    __table_args__ = (
        UniqueConstraint("notification_id", "webhook_id", name="uq_consent_delivery_notice"),
        Index("ix_consent_delivery_due", "status", "next_attempt_at"),
        Index("ix_consent_delivery_member", "member"),
        Index("ix_consent_delivery_consent", "consent_id"),
    )

    delivery_id: Mapped[str] = mapped_column(_ID, primary_key=True)
    notification_id: Mapped[str] = mapped_column(_ID)
    webhook_id: Mapped[str | None] = mapped_column(_ID, ForeignKey("consent_webhook.webhook_id"))
    member: Mapped[str] = mapped_column(_MEMBER)
    url: Mapped[str | None] = mapped_column(_URL)
    consent_id: Mapped[str] = mapped_column(_ID)
    notification: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(500))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledgement: Mapped[dict[str, Any] | None] = mapped_column(JSON)
