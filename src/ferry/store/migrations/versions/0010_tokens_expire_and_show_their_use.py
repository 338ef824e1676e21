"""tokens: an expiry, the time of their last use, and the first characters to know them by

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ferry.store.tables import UtcDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("prefix", sa.String(8), nullable=True))
        batch.add_column(sa.Column("expires_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("last_used_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        for column in ("last_used_at", "expires_at", "prefix"):
            batch.drop_column(column)
