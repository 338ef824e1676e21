"""runs: the deadline a run must end by, and whether it was ended there

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ferry.store.tables import UtcDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Columns added at the end, the new one with its default: no row is rewritten.
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("deadline_at", UtcDateTime(), nullable=True))
        batch.add_column(
            sa.Column("past_deadline", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.create_index("ix_runs_deadline_at", ["deadline_at"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_deadline_at")
        batch.drop_column("past_deadline")
        batch.drop_column("deadline_at")
