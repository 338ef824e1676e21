"""runs: the deletion step of --delete-extra (its state, note, and what it deleted)

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("deleted", sa.BigInteger(), server_default="0", nullable=False))
        batch.add_column(
            sa.Column("deleted_bytes", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("deletion", sa.String(16), nullable=True))
        batch.add_column(sa.Column("deletion_note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("deletion_note")
        batch.drop_column("deletion")
        batch.drop_column("deleted_bytes")
        batch.drop_column("deleted")
