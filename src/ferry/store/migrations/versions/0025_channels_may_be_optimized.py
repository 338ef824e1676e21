"""channels: an optimized limit between min_active and max_active; link tallies per agent

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.add_column(
            sa.Column("optimize", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("min_active", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("optimizer", sa.JSON(), nullable=True))
    op.create_table(
        "link_tallies",
        sa.Column("agent_id", sa.String(36), primary_key=True),
        sa.Column("source_site", sa.String(64), primary_key=True),
        sa.Column("destination_site", sa.String(64), primary_key=True),
        sa.Column("succeeded", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("link_tallies")
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("optimizer")
        batch.drop_column("min_active")
        batch.drop_column("optimize")
