"""Consent block: a delivery may have no webhook (a notice owed to a member without one: unroutable).

Revision ID: consent_0003
Revises: consent_0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "consent_0003"
down_revision: str | None = "consent_0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite cannot alter a column in place, so the table is copied; PostgreSQL alters it.
    with op.batch_alter_table("consent_delivery") as batch:
        batch.alter_column("webhook_id", existing_type=sa.String(36), nullable=True)
        batch.alter_column("url", existing_type=sa.String(2048), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM consent_delivery WHERE webhook_id IS NULL")
    with op.batch_alter_table("consent_delivery") as batch:
        batch.alter_column("webhook_id", existing_type=sa.String(36), nullable=False)
        batch.alter_column("url", existing_type=sa.String(2048), nullable=False)
