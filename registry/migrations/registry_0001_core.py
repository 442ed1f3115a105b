"""Registry block: records, identifiers, searchable attributes, versions, change requests, reads.

Revision ID: registry_0001
Revises:
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "registry_0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("registry",)
depends_on: Sequence[str] | None = None

_ID = sa.String(36)
_CODE = sa.String(32)
_ACTOR = sa.String(255)
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "registry_record",
        sa.Column("record_id", _ID, primary_key=True),
        sa.Column("registry", _CODE, nullable=False),
        sa.Column("record_type", sa.String(32), nullable=False),
        sa.Column("identifiers", sa.JSON(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("merged_into", _ID, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_registry_record_registry", "registry_record", ["registry", "status", "record_type"])
    op.create_index("ix_registry_record_merged_into", "registry_record", ["merged_into"])
    op.create_table(
        "registry_identifier",
        sa.Column("registry", _CODE, primary_key=True),
        sa.Column("identifier_type", sa.String(40), primary_key=True),
        sa.Column("value", sa.String(100), primary_key=True),
        sa.Column("record_id", _ID, nullable=False),
    )
    op.create_index("ix_registry_identifier_record", "registry_identifier", ["record_id"])
    op.create_table(
        "registry_attribute",
        sa.Column("record_id", _ID, primary_key=True),
        sa.Column("attribute", sa.String(63), primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("registry", _CODE, nullable=False),
        sa.Column("value_text", sa.String(200), nullable=True),
        sa.Column("value_number", sa.Numeric(24, 6), nullable=True),
        sa.Column("value_date", sa.Date(), nullable=True),
    )
    for kind in ("text", "number", "date"):
        op.create_index(
            f"ix_registry_attribute_{kind}",
            "registry_attribute",
            ["registry", "attribute", f"value_{kind}", "record_id"],
        )
    op.create_table(
        "registry_version",
        sa.Column("record_id", _ID, primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("registry", _CODE, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", _ACTOR, nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("patch", sa.JSON(), nullable=False),
        sa.Column("change_request_id", _ID, nullable=True),
        sa.Column("other_record_id", _ID, nullable=True),
    )
    op.create_table(
        "registry_change_request",
        sa.Column("change_request_id", _ID, primary_key=True),
        sa.Column("registry", _CODE, nullable=False),
        sa.Column("record_id", _ID, nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("proposed_by", _ACTOR, nullable=False),
        sa.Column("proposed_at", _TS, nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("patch", sa.JSON(), nullable=False),
        sa.Column("second_approver", sa.Boolean(), nullable=False),
        sa.Column("decided_by", _ACTOR, nullable=True),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("decision_reason", sa.String(500), nullable=True),
        sa.Column("applied_version", sa.Integer(), nullable=True),
    )
    op.create_index(
        "ix_registry_change_request_status", "registry_change_request", ["registry", "status", "proposed_at"]
    )
    op.create_index("ix_registry_change_request_record", "registry_change_request", ["record_id"])
    op.create_table(
        "registry_read",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("read_id", _ID, nullable=False),
        sa.Column("registry", _CODE, nullable=False),
        sa.Column("record_id", _ID, nullable=False),
        sa.Column("subject_hash", sa.String(80), nullable=False),
        sa.Column("reader", _ACTOR, nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("consent_ref", sa.String(200), nullable=True),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_registry_read_subject", "registry_read", ["subject_hash", "at"])
    op.create_index("ix_registry_read_record", "registry_read", ["registry", "record_id", "at"])


def downgrade() -> None:
    for table in (
        "registry_read",
        "registry_change_request",
        "registry_version",
        "registry_attribute",
        "registry_identifier",
        "registry_record",
    ):
        op.drop_table(table)
