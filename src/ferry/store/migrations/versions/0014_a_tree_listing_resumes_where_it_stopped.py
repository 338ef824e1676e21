"""runs: how far a tree's listing has come, so that an expansion resumes where it stopped

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("listed_source", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("listed_through", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for column in ("listed_through", "listed_source"):
            batch.drop_column(column)
