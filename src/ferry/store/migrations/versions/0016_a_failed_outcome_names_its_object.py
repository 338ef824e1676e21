"""outcomes: a final failure keeps its object's path and size, so ``--status FAILED`` reads
no chunk list

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns added at the end: no row is rewritten, on SQLite or PostgreSQL.
    op.add_column("outcomes", sa.Column("path", sa.Text(), nullable=True))
    op.add_column("outcomes", sa.Column("size", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outcomes") as batch:
        for column in ("size", "path"):
            batch.drop_column(column)
