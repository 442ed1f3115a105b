"""Registry block: the review queue of suspected duplicates.

Revision ID: registry_0003_dedup
Revises: registry_0002_dci
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "registry_0003_dedup"
down_revision: str | None = "registry_0002_dci"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_ID = sa.String(36)
_ACTOR = sa.String(255)
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "registry_duplicate",
        sa.Column("duplicate_id", _ID, primary_key=True),
        sa.Column("registry", sa.String(32), nullable=False),
        sa.Column("record_id", _ID, nullable=False),
        sa.Column("candidate_id", _ID, nullable=False),
        sa.Column("score", sa.Numeric(5, 4), nullable=False),
        sa.Column("explanation", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("found_by", _ACTOR, nullable=False),
        sa.Column("found_at", _TS, nullable=False),
        sa.Column("decided_by", _ACTOR, nullable=True),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("decision_reason", sa.String(500), nullable=True),
        sa.Column("survivor_id", _ID, nullable=True),
    )
    op.create_index(
        "ix_registry_duplicate_pair",
        "registry_duplicate",
        ["registry", "record_id", "candidate_id"],
        unique=True,
    )
    op.create_index("ix_registry_duplicate_status", "registry_duplicate", ["registry", "status", "score"])


def downgrade() -> None:
    op.drop_table("registry_duplicate")
