"""Consent block: webhooks and notification deliveries.

Revision ID: consent_0002
Revises: consent_0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "consent_0002"
down_revision: str | None = "consent_0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_ID = sa.String(36)
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "consent_webhook",
        sa.Column("webhook_id", _ID, primary_key=True),
        sa.Column("member", sa.String(255), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("deleted_at", _TS, nullable=True),
    )
    op.create_index("ix_consent_webhook_member", "consent_webhook", ["member"])
    op.create_table(
        "consent_delivery",
        sa.Column("delivery_id", _ID, primary_key=True),
        sa.Column("notification_id", _ID, nullable=False),
        sa.Column("webhook_id", _ID, sa.ForeignKey("consent_webhook.webhook_id"), nullable=False),
        sa.Column("member", sa.String(255), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("consent_id", _ID, nullable=False),
        sa.Column("notification", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("last_attempt_at", _TS, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("acknowledged_at", _TS, nullable=True),
        sa.Column("acknowledgement", sa.JSON(), nullable=True),
        sa.UniqueConstraint("notification_id", "webhook_id", name="uq_consent_delivery_notice"),
    )
    op.create_index("ix_consent_delivery_due", "consent_delivery", ["status", "next_attempt_at"])
    op.create_index("ix_consent_delivery_member", "consent_delivery", ["member"])
    op.create_index("ix_consent_delivery_consent", "consent_delivery", ["consent_id"])


def downgrade() -> None:
    op.drop_table("consent_delivery")
    op.drop_table("consent_webhook")
