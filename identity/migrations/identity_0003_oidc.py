"""Identity block: OpenID provider clients, authorization codes, issued tokens and sign-in sessions.

Revision ID: identity_0003
Revises: identity_0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0003"
down_revision: str | None = "identity_0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_HASH = sa.String(64)
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "identity_oidc_client",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("secret_hash", _HASH, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("disabled_at", _TS, nullable=True),
    )
    op.create_table(
        "identity_oidc_code",
        sa.Column("code_hash", _HASH, primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("nonce", sa.Text(), nullable=True),
        sa.Column("code_challenge", sa.String(128), nullable=True),
        sa.Column("code_challenge_method", sa.String(16), nullable=True),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("auth_time", _TS, nullable=False),
        sa.Column("acr", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("used_at", _TS, nullable=True),
    )
    op.create_table(
        "identity_oidc_token",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("code_hash", _HASH, nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("issued_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
    )
    op.create_index("ix_identity_oidc_token_code", "identity_oidc_token", ["code_hash"])
    op.create_table(
        "identity_oidc_session",
        sa.Column("session_hash", _HASH, primary_key=True),
        sa.Column("uin", sa.String(10), nullable=False),
        sa.Column("auth_time", _TS, nullable=False),
        sa.Column("acr", sa.String(64), nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("identity_oidc_session")
    op.drop_index("ix_identity_oidc_token_code", table_name="identity_oidc_token")
    op.drop_table("identity_oidc_token")
    op.drop_table("identity_oidc_code")
    op.drop_table("identity_oidc_client")
