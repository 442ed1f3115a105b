"""Payments block: programmes, cycles, batches, items with their unique idempotency keys, the
record of every state transition, and webhook subscriptions.

Revision ID: payments_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "payments_0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("payments",)
depends_on: Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payments_programme",
        sa.Column("programme_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "payments_cycle",
        sa.Column(
            "programme_id",
            sa.String(64),
            sa.ForeignKey("payments_programme.programme_id"),
            primary_key=True,
        ),
        sa.Column("cycle_id", sa.String(64), primary_key=True),
        sa.Column("cutoff_at", _TS, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "payments_batch",
        sa.Column("batch_id", sa.String(36), primary_key=True),
        sa.Column("programme_id", sa.String(64), nullable=False),
        sa.Column("cycle_id", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("preflight_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["programme_id", "cycle_id"], ["payments_cycle.programme_id", "payments_cycle.cycle_id"]
        ),
    )
    op.create_table(
        "payments_item",
        sa.Column("item_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(36), sa.ForeignKey("payments_batch.batch_id"), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(35), nullable=False),
        sa.Column("beneficiary_id", sa.String(128), nullable=False),
        sa.Column("entitlement", sa.String(128), nullable=False),
        sa.Column("financial_address", sa.String(160), nullable=True),
        sa.Column("payee_name", sa.String(200), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.String(80), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=True),
        sa.Column("lease_until", _TS, nullable=True),
        sa.Column("provider_reference", sa.String(100), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.UniqueConstraint("idempotency_key", name="uq_payments_item_key"),
    )
    op.create_index("ix_payments_item_batch_state", "payments_item", ["batch_id", "state", "item_id"])
    op.create_table(
        "payments_transition",
        sa.Column("transition_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("item_id", _ID, sa.ForeignKey("payments_item.item_id"), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.String(80), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_payments_transition_item", "payments_transition", ["item_id", "transition_id"])
    op.create_table(
        "payments_webhook",
        sa.Column("webhook_id", sa.String(36), primary_key=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("programme_id", sa.String(64), nullable=True),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("deleted_at", _TS, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("payments_webhook")
    op.drop_table("payments_transition")
    op.drop_table("payments_item")
    op.drop_table("payments_batch")
    op.drop_table("payments_cycle")
    op.drop_table("payments_programme")
