"""Identity block: client assertions already used at the token endpoint (RFC 7523 section 3, item 7).

Revision ID: identity_0004
Revises: identity_0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0004"
down_revision: str | None = "identity_0003"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "identity_oidc_client_assertion",
        sa.Column("assertion_hash", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_identity_oidc_client_assertion_expires", "identity_oidc_client_assertion", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_identity_oidc_client_assertion_expires", table_name="identity_oidc_client_assertion")
    op.drop_table("identity_oidc_client_assertion")
