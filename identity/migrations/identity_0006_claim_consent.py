"""Identity block: the claims a person released to each client (consent with expiry and receipts), and
the released claims carried by authorization codes and issued tokens.

Revision ID: identity_0006
Revises: identity_0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0006"
down_revision: str | None = "identity_0005"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "identity_oidc_claim_consent",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(128), primary_key=True),
        sa.Column("requested", sa.JSON(), nullable=False),
        sa.Column("granted", sa.JSON(), nullable=False),
        sa.Column("given_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("withdrawn_at", _TS, nullable=True),
        sa.Column("consent_id", sa.String(64), nullable=True),
        sa.Column("receipt", sa.Text(), nullable=True),
        sa.Column("withdrawal_receipt", sa.Text(), nullable=True),
    )
    op.add_column("identity_oidc_code", sa.Column("claims", sa.JSON(), nullable=True))
    op.add_column("identity_oidc_token", sa.Column("claims", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("identity_oidc_token") as batch:
        batch.drop_column("claims")
    with op.batch_alter_table("identity_oidc_code") as batch:
        batch.drop_column("claims")
    op.drop_table("identity_oidc_claim_consent")
