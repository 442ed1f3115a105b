"""Registry block: each shared attribute index holds only the rows whose value is in its column.

A row of ``registry_attribute`` has one typed value (text, number or date) and nulls in the other two
columns, so three full indexes held every row three times. Partial indexes (``WHERE value_x IS NOT
NULL``) hold each row once, which cuts the index work of bulk imports; equality, range, ``IN`` and
``LIKE`` conditions on a column imply it is not null, so PostgreSQL and SQLite still use them.

Revision ID: registry_0004_partial_indexes
Revises: registry_0003_dedup
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "registry_0004_partial_indexes"
down_revision: str | None = "registry_0003_dedup"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_COLUMNS = {"text": "value_text", "number": "value_number", "date": "value_date"}


def upgrade() -> None:
    for kind, column in _COLUMNS.items():
        name = f"ix_registry_attribute_{kind}"
        condition = sa.text(f"{column} IS NOT NULL")
        op.drop_index(name, table_name="registry_attribute")
        op.create_index(
            name,
            "registry_attribute",
            ["registry", "attribute", column, "record_id"],
            postgresql_where=condition,
            sqlite_where=condition,
        )


def downgrade() -> None:
    for kind, column in _COLUMNS.items():
        name = f"ix_registry_attribute_{kind}"
        op.drop_index(name, table_name="registry_attribute")
        op.create_index(name, "registry_attribute", ["registry", "attribute", column, "record_id"])
