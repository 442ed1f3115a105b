"""Test block branch: one table.

Revision ID: ledger_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ledger_0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("ledger",)
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_entry", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("note", sa.Text())
    )


def downgrade() -> None:
    op.drop_table("ledger_entry")
