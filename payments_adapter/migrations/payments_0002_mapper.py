"""Payments block, ID-to-account mapper: links with their history, change events, answered requests,
shared-address allowances, refused conflicts and cycle freeze windows.

Revision ID: payments_0002
Revises: payments_0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "payments_0002"
down_revision: str | None = "payments_0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_ID = sa.String(36)
_ACTOR = sa.String(255)
_BENEFICIARY = sa.String(128)
_ADDRESS = sa.String(130)
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payments_mapper_link",
        sa.Column("link_id", _ID, primary_key=True),
        sa.Column("beneficiary_id", _BENEFICIARY, nullable=False),
        sa.Column("fa", _ADDRESS, nullable=False),
        sa.Column("account_info", sa.JSON(), nullable=True),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("consent_receipt", sa.Text(), nullable=False),
        sa.Column("consent_id", _ID, nullable=False),
        sa.Column("receipt_id", _ID, nullable=False),
        sa.Column("effective_from", _TS, nullable=False),
        sa.Column("effective_until", _TS, nullable=True),
        sa.Column("recorded_at", _TS, nullable=False),
    )
    open_link = sa.text("effective_until IS NULL")
    op.create_index(
        "ux_payments_mapper_link_open_beneficiary",
        "payments_mapper_link",
        ["beneficiary_id"],
        unique=True,
        sqlite_where=open_link,
        postgresql_where=open_link,
    )
    exclusive = sa.text("effective_until IS NULL AND NOT shared")
    op.create_index(
        "ux_payments_mapper_link_open_address",
        "payments_mapper_link",
        ["fa"],
        unique=True,
        sqlite_where=exclusive,
        postgresql_where=exclusive,
    )
    op.create_index(
        "ix_payments_mapper_link_beneficiary", "payments_mapper_link", ["beneficiary_id", "effective_from"]
    )
    op.create_index("ix_payments_mapper_link_address", "payments_mapper_link", ["fa", "effective_from"])
    op.create_table(
        "payments_mapper_event",
        sa.Column("event_id", _ID, primary_key=True),
        sa.Column("beneficiary_id", _BENEFICIARY, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("fa", _ADDRESS, nullable=True),
        sa.Column("previous_fa", _ADDRESS, nullable=True),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("actor", _ACTOR, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("operator_id", _ACTOR, nullable=True),
        sa.Column("reason", sa.String(999), nullable=True),
        sa.Column("receipt_id", _ID, nullable=True),
        sa.Column("reference_id", sa.String(100), nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.Column("effective_at", _TS, nullable=False),
    )
    op.create_index(
        "ix_payments_mapper_event_beneficiary", "payments_mapper_event", ["beneficiary_id", "recorded_at"]
    )
    op.create_table(
        "payments_mapper_request",
        sa.Column("caller", _ACTOR, primary_key=True),
        sa.Column("reference_id", sa.String(100), primary_key=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
    )
    op.create_table(
        "payments_mapper_shared_address",
        sa.Column("fa", _ADDRESS, primary_key=True),
        sa.Column("reason", sa.String(999), nullable=False),
        sa.Column("allowed_by", _ACTOR, nullable=False),
        sa.Column("allowed_at", _TS, nullable=False),
    )
    op.create_table(
        "payments_mapper_conflict",
        sa.Column("conflict_id", _ID, primary_key=True),
        sa.Column("fa", _ADDRESS, nullable=False),
        sa.Column("beneficiary_id", _BENEFICIARY, nullable=False),
        sa.Column("holder_id", _BENEFICIARY, nullable=False),
        sa.Column("actor", _ACTOR, nullable=False),
        sa.Column("reference_id", sa.String(100), nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
    )
    op.create_index("ix_payments_mapper_conflict_at", "payments_mapper_conflict", ["recorded_at"])
    op.create_table(
        "payments_mapper_freeze",
        sa.Column("cycle_id", sa.String(100), primary_key=True),
        sa.Column("cut_off", _TS, nullable=False),
        sa.Column("ends_at", _TS, nullable=False),
        sa.Column("registered_by", _ACTOR, nullable=False),
        sa.Column("registered_at", _TS, nullable=False),
    )
    op.create_index("ix_payments_mapper_freeze_window", "payments_mapper_freeze", ["cut_off", "ends_at"])


def downgrade() -> None:
    for table in (
        "payments_mapper_freeze",
        "payments_mapper_conflict",
        "payments_mapper_shared_address",
        "payments_mapper_request",
        "payments_mapper_event",
        "payments_mapper_link",
    ):
        op.drop_table(table)
