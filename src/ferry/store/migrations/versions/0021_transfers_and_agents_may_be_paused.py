"""transfers and agents may be paused: when, and whether a transfer's copies were stopped

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ferry.store.tables import UtcDateTime

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transfers") as batch:
        batch.add_column(sa.Column("paused_at", UtcDateTime(), nullable=True))
        batch.add_column(
            sa.Column("pause_stops", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("paused_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("paused_at")
    with op.batch_alter_table("transfers") as batch:
        batch.drop_column("pause_stops")
        batch.drop_column("paused_at")
