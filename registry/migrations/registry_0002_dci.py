"""Registry block, DCI API: registered senders, received message ids, asynchronous transactions,
subscriptions, and the index the change feed reads versions through.

Revision ID: registry_0002_dci
Revises: registry_0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "registry_0002_dci"
down_revision: str | None = "registry_0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_SENDER = sa.String(100)
_MESSAGE = sa.String(100)
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "registry_dci_sender",
        sa.Column("sender_id", _SENDER, primary_key=True),
        sa.Column("jwks", sa.JSON(), nullable=False),
        sa.Column("callback_url", sa.String(500), nullable=True),
        sa.Column("grants", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "registry_dci_message",
        sa.Column("sender_id", _SENDER, primary_key=True),
        sa.Column("message_id", _MESSAGE, primary_key=True),
        sa.Column("received_at", _TS, nullable=False),
    )
    op.create_index("ix_registry_dci_message_received", "registry_dci_message", ["received_at"])
    op.create_table(
        "registry_dci_transaction",
        sa.Column("sender_id", _SENDER, primary_key=True),
        sa.Column("transaction_id", _MESSAGE, primary_key=True),
        sa.Column("registry", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("correlation_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(4), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("completed_at", _TS, nullable=True),
    )
    op.create_index("ix_registry_dci_transaction_correlation", "registry_dci_transaction", ["correlation_id"])
    op.create_table(
        "registry_dci_subscription",
        sa.Column("subscription_code", sa.String(36), primary_key=True),
        sa.Column("sender_id", _SENDER, nullable=False),
        sa.Column("registry", sa.String(32), nullable=False),
        sa.Column("reference_id", _MESSAGE, nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("ended_at", _TS, nullable=True),
    )
    op.create_index(
        "ix_registry_dci_subscription_registry", "registry_dci_subscription", ["registry", "status"]
    )
    op.create_index(
        "ix_registry_version_feed", "registry_version", ["registry", "at", "record_id", "version"]
    )


def downgrade() -> None:
    op.drop_index("ix_registry_version_feed", "registry_version")
    for table in (
        "registry_dci_subscription",
        "registry_dci_transaction",
        "registry_dci_message",
        "registry_dci_sender",
    ):
        op.drop_table(table)
