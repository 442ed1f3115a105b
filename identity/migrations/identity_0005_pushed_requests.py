"""Identity block: pushed authorization requests awaiting their use at the authorization endpoint (RFC 9126).

Revision ID: identity_0005
Revises: identity_0004
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0005"
down_revision: str | None = "identity_0004"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "identity_oidc_pushed_request",
        sa.Column("uri_hash", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_identity_oidc_pushed_request_expires", "identity_oidc_pushed_request", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_identity_oidc_pushed_request_expires", table_name="identity_oidc_pushed_request")
    op.drop_table("identity_oidc_pushed_request")
