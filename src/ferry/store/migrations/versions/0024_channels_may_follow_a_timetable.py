"""channels: a bandwidth timetable (the rate by time of week) and the time zone it is read in

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.add_column(sa.Column("bandwidth_timetable", sa.Text(), nullable=True))
        batch.add_column(sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"))


def downgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("timezone")
        batch.drop_column("bandwidth_timetable")
