"""Payments block, G2P Connect disburse API: message ids received, transactions, and one row per item
accepted, unique per sender and reference id.

Revision ID: payments_0003
Revises: payments_0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "payments_0003"
down_revision: str | None = "payments_0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_ID = sa.String(100)
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payments_g2p_message",
        sa.Column("sender_id", _ID, primary_key=True),
        sa.Column("message_id", _ID, primary_key=True),
        sa.Column("received_at", _TS, nullable=False),
    )
    op.create_table(
        "payments_g2p_transaction",
        sa.Column("sender_id", _ID, primary_key=True),
        sa.Column("transaction_id", _ID, primary_key=True),
        sa.Column("correlation_id", _ID, nullable=False, unique=True),
        sa.Column("references", sa.JSON(), nullable=False),
        sa.Column("refused", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("completed_at", _TS, nullable=True),
    )
    op.create_table(
        "payments_g2p_item",
        sa.Column("sender_id", _ID, primary_key=True),
        sa.Column("reference_id", _ID, primary_key=True),
        sa.Column("transaction_id", _ID, nullable=False),
        sa.Column("idempotency_key", sa.String(35), nullable=False, unique=True),
        sa.Column("payer_fa", sa.String(130), nullable=False),
        sa.Column("payee_fa", sa.String(130), nullable=False),
        sa.Column("payee_name", sa.String(200), nullable=True),
        sa.Column("amount", sa.String(20), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("note", sa.String(100), nullable=False),
        sa.Column("status", sa.String(4), nullable=False),
        sa.Column("submitted", sa.Boolean(), nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=True),
        sa.Column("reason_message", sa.String(999), nullable=True),
        sa.Column("provider_reference", sa.String(200), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_payments_g2p_item_transaction", "payments_g2p_item", ["sender_id", "transaction_id"])


def downgrade() -> None:
    op.drop_index("ix_payments_g2p_item_transaction", table_name="payments_g2p_item")
    op.drop_table("payments_g2p_item")
    op.drop_table("payments_g2p_transaction")
    op.drop_table("payments_g2p_message")
