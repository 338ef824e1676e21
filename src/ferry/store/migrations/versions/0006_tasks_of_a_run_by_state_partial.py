"""tasks: a run's ACTIVE and FAILED tasks, and the WAITING ones by not_before, in partial indexes

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ACTIVE = sa.text("state = 'ACTIVE'")
FAILED = sa.text("state = 'FAILED'")
WAITING = sa.text("state = 'WAITING'")


def upgrade() -> None:
    op.drop_index("ix_tasks_transfer_id_run_state", table_name="tasks")
    op.drop_index("ix_tasks_not_before", table_name="tasks")
    op.create_index(
        "ix_tasks_run_active",
        "tasks",
        ["transfer_id", "run"],
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )
    op.create_index(
        "ix_tasks_run_failed",
        "tasks",
        ["transfer_id", "run", "id"],
        sqlite_where=FAILED,
        postgresql_where=FAILED,
    )
    op.create_index(
        "ix_tasks_not_before",
        "tasks",
        ["not_before"],
        sqlite_where=WAITING,
        postgresql_where=WAITING,
    )


def downgrade() -> None:
    for name in ("ix_tasks_run_active", "ix_tasks_run_failed", "ix_tasks_not_before"):
        op.drop_index(name, table_name="tasks")
    op.create_index("ix_tasks_not_before", "tasks", ["not_before"])
    op.create_index("ix_tasks_transfer_id_run_state", "tasks", ["transfer_id", "run", "state"])
