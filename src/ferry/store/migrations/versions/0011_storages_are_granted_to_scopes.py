"""storage_grants: which scopes' transfers may read from and write to each storage

The storages already declared are granted to the default scope, the one every transfer used
before users had scopes of their own.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storage_grants",
        sa.Column(
            "storage",
            sa.String(64),
            sa.ForeignKey("storages.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "scope",
            sa.String(64),
            sa.ForeignKey("scopes.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("read", sa.Boolean(), nullable=False),
        sa.Column("write", sa.Boolean(), nullable=False),
    )
    op.execute(
        "INSERT INTO storage_grants (storage, scope, read, write)"
        " SELECT storages.name, scopes.name, true, true FROM storages, scopes"
        " WHERE scopes.name = 'default'"
    )


def downgrade() -> None:
    op.drop_table("storage_grants")
