"""Kernel branch: the transactional outbox.

Revision ID: dpi_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dpi_0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("dpi",)
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dpi_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("message_key", sa.String(200), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_dpi_outbox_pending", "dpi_outbox", ["delivered_at", "available_at"])


def downgrade() -> None:
    op.drop_index("ix_dpi_outbox_pending", table_name="dpi_outbox")
    op.drop_table("dpi_outbox")
