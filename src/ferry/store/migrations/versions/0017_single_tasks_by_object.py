"""tasks: the index by object number holds single tasks only, the ones a page of outcomes
reads by it; carriers are found by their origin

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_SINGLE = sa.text("origin IS NULL")


def upgrade() -> None:
    op.drop_index("ix_tasks_transfer_id_run_object", table_name="tasks")
    op.create_index(
        "ix_tasks_single_object",
        "tasks",
        ["transfer_id", "run", "object"],
        sqlite_where=_SINGLE,
        postgresql_where=_SINGLE,
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_single_object", table_name="tasks")
    op.create_index("ix_tasks_transfer_id_run_object", "tasks", ["transfer_id", "run", "object"])
