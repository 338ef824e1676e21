"""transfers: when the next run is late if it has not started (the late_after option)

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ferry.store.tables import UtcDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transfers") as batch:
        batch.add_column(sa.Column("late_at", UtcDateTime(), nullable=True))
        batch.create_index("ix_transfers_late_at", ["late_at"])


def downgrade() -> None:
    with op.batch_alter_table("transfers") as batch:
        batch.drop_index("ix_transfers_late_at")
        batch.drop_column("late_at")
