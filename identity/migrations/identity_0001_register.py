"""Identity block: the person register, virtual IDs, history, sector pseudonyms, translation audit.

Revision ID: identity_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("identity",)
depends_on: Sequence[str] | None = None

_ID = sa.String(36)
_HASH = sa.String(64)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "identity_person",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("uin", sa.String(10), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("demographics", sa.JSON(), nullable=False),
        sa.Column("enrolled_channel", sa.String(16), nullable=False),
        sa.Column("enrolled_operator", sa.String(255), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.UniqueConstraint("uin", name="uq_identity_person_uin"),
    )
    op.create_table(
        "identity_duplicate_key",
        sa.Column("key", _HASH, primary_key=True),
        sa.Column("person_id", _ID, sa.ForeignKey("identity_person.id"), nullable=False),
    )
    op.create_index("ix_identity_duplicate_key_person", "identity_duplicate_key", ["person_id"])
    op.create_table(
        "identity_vid",
        sa.Column("id", _BIGID, primary_key=True),
        sa.Column("person_id", _ID, sa.ForeignKey("identity_person.id"), nullable=False),
        sa.Column("vid_hash", _HASH, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("issued_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.UniqueConstraint("vid_hash", name="uq_identity_vid_hash"),
    )
    # At most one active virtual ID per person, enforced by the database itself.
    op.create_index(
        "uq_identity_vid_active",
        "identity_vid",
        ["person_id"],
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "identity_history",
        sa.Column("id", _BIGID, primary_key=True),
        sa.Column("person_id", _ID, sa.ForeignKey("identity_person.id"), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor_role", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(255), nullable=True),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("changed", sa.JSON(), nullable=False),
    )
    op.create_index("ix_identity_history_person", "identity_history", ["person_id", "id"])
    op.create_table(
        "identity_pseudonym",
        sa.Column("sector", sa.String(255), primary_key=True),
        sa.Column("pseudonym", sa.String(64), primary_key=True),
        sa.Column("person_id", _ID, sa.ForeignKey("identity_person.id"), nullable=False),
        sa.Column("issued_at", _TS, nullable=False),
        sa.UniqueConstraint("person_id", "sector", name="uq_identity_pseudonym_person_sector"),
    )
    op.create_table(
        "identity_translation",
        sa.Column("id", _BIGID, primary_key=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("requester", sa.String(255), nullable=False),
        sa.Column("from_sector", sa.String(255), nullable=False),
        sa.Column("to_sector", sa.String(255), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("subject_hash", _HASH, nullable=False),
    )
    op.create_index("ix_identity_translation_subject", "identity_translation", ["subject_hash"])
    op.create_index("ix_identity_translation_at", "identity_translation", ["at"])


def downgrade() -> None:
    op.drop_table("identity_translation")
    op.drop_table("identity_pseudonym")
    op.drop_table("identity_history")
    op.drop_index("uq_identity_vid_active", table_name="identity_vid")
    op.drop_table("identity_vid")
    op.drop_table("identity_duplicate_key")
    op.drop_table("identity_person")
