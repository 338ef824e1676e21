"""tasks: an index of the FAILED tasks by when they ended (the dashboard's last hour)

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

FAILED = sa.text("state = 'FAILED'")


def upgrade() -> None:
    op.create_index(
        "ix_tasks_failed_at", "tasks", ["finished_at"], sqlite_where=FAILED, postgresql_where=FAILED
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_failed_at", table_name="tasks")
