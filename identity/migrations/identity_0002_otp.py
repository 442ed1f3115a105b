"""Identity block: OTP transactions, send throttles, failure guards, holder locks of authentication types.

Revision ID: identity_0002
Revises: identity_0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0002"
down_revision: str | None = "identity_0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_KEY = sa.String(64)
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "identity_otp_transaction",
        sa.Column("transaction_id", sa.String(36), primary_key=True),
        sa.Column("subject_key", _KEY, nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("uin", sa.String(10), nullable=True),
        sa.Column("code_hash", _KEY, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("used_at", _TS, nullable=True),
    )
    op.create_index(
        "ix_identity_otp_transaction_subject", "identity_otp_transaction", ["subject_key", "created_at"]
    )
    op.create_index(
        "ix_identity_otp_transaction_client", "identity_otp_transaction", ["client_id", "created_at"]
    )
    op.create_index("ix_identity_otp_transaction_created", "identity_otp_transaction", ["created_at"])
    op.create_table(
        "identity_otp_throttle",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("touched_at", _TS, nullable=False),
    )
    op.create_table(
        "identity_otp_guard",
        sa.Column("subject_key", _KEY, primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", _TS, nullable=True),
        sa.Column("locked_until", _TS, nullable=True),
    )
    op.create_table(
        "identity_auth_type_lock",
        sa.Column("uin", sa.String(10), primary_key=True),
        sa.Column("auth_type", sa.String(32), primary_key=True),
        sa.Column("locked_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("identity_auth_type_lock")
    op.drop_table("identity_otp_guard")
    op.drop_table("identity_otp_throttle")
    op.drop_index("ix_identity_otp_transaction_created", table_name="identity_otp_transaction")
    op.drop_index("ix_identity_otp_transaction_client", table_name="identity_otp_transaction")
    op.drop_index("ix_identity_otp_transaction_subject", table_name="identity_otp_transaction")
    op.drop_table("identity_otp_transaction")
