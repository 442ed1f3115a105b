"""Consent block: agreements, records, the event chain, receipts, usage counts.

Revision ID: consent_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "consent_0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("consent",)
depends_on: Sequence[str] | None = None

_ID = sa.String(36)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "consent_agreement",
        sa.Column("id", _BIGID, primary_key=True),
        sa.Column("agreement_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("consumer", sa.String(255), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("agreement_id", "version", name="uq_consent_agreement_version"),
    )
    op.create_table(
        "consent_record",
        sa.Column("consent_id", _ID, primary_key=True),
        sa.Column("agreement_id", sa.String(64), nullable=False),
        sa.Column("agreement_version", sa.Integer(), nullable=False),
        sa.Column("consumer", sa.String(255), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("granted_role", sa.String(16), nullable=True),
        sa.Column("granted_actor", sa.String(128), nullable=True),
        sa.Column("guardian", sa.String(128), nullable=True),
        sa.Column("guardian_basis", sa.String(16), nullable=True),
        sa.Column("guardian_until", sa.Date(), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("requested_validity_days", sa.Integer(), nullable=True),
        sa.Column("valid_from", _TS, nullable=True),
        sa.Column("valid_until", _TS, nullable=True),
        sa.Column("requires_reconfirmation", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_consent_record_subject", "consent_record", ["subject"])
    op.create_index("ix_consent_record_lookup", "consent_record", ["subject", "consumer", "purpose"])
    op.create_index("ix_consent_record_due", "consent_record", ["state", "valid_until"])
    op.create_index("ix_consent_record_agreement", "consent_record", ["agreement_id", "agreement_version"])
    op.create_table(
        "consent_event",
        sa.Column("event_id", _ID, primary_key=True),
        sa.Column("consent_id", _ID, nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("actor_role", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(255), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("notice_language", sa.String(8), nullable=True),
        sa.Column("notice_hash", sa.String(80), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("prev_hash", sa.String(80), nullable=False),
        sa.Column("hash", sa.String(80), nullable=False),
        sa.UniqueConstraint("subject", "seq", name="uq_consent_event_chain"),
    )
    op.create_index("ix_consent_event_consent", "consent_event", ["consent_id"])
    op.create_table(
        "consent_chain_head",
        sa.Column("subject", sa.String(128), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(80), nullable=False),
    )
    op.create_table(
        "consent_chain_signature",
        sa.Column("id", _BIGID, primary_key=True),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(80), nullable=False),
        sa.Column("jws", sa.Text(), nullable=False),
        sa.Column("signed_at", _TS, nullable=False),
    )
    op.create_index("ix_consent_chain_signature_subject", "consent_chain_signature", ["subject", "seq"])
    op.create_table(
        "consent_receipt",
        sa.Column("receipt_id", _ID, primary_key=True),
        sa.Column("consent_id", _ID, nullable=False),
        sa.Column("event_id", _ID, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("jws", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_consent_receipt_consent", "consent_receipt", ["consent_id"])
    op.create_table(
        "consent_usage",
        sa.Column("consent_id", _ID, primary_key=True),
        sa.Column("period_index", sa.Integer(), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "consent_usage",
        "consent_receipt",
        "consent_chain_signature",
        "consent_chain_head",
        "consent_event",
        "consent_record",
        "consent_agreement",
    ):
        op.drop_table(table)
