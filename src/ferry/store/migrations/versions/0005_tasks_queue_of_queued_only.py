"""tasks: the queue index of QUEUED tasks only, the lease indexes of ACTIVE tasks only

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

QUEUE: list[str | sa.ColumnElement[object]] = [
    "scope",
    "source_site",
    "destination_site",
    sa.literal_column("priority DESC"),
    "id",
]
QUEUED = sa.text("state = 'QUEUED'")
ACTIVE = sa.text("state = 'ACTIVE'")
LEASE_COLUMNS = ("lease_expires_at", "lease_agent")


def upgrade() -> None:
    op.drop_index("ix_tasks_queue", table_name="tasks")
    op.create_index("ix_tasks_queue", "tasks", QUEUE, sqlite_where=QUEUED, postgresql_where=QUEUED)
    for column in LEASE_COLUMNS:
        op.drop_index(f"ix_tasks_{column}", table_name="tasks")
        op.create_index(
            f"ix_tasks_{column}", "tasks", [column], sqlite_where=ACTIVE, postgresql_where=ACTIVE
        )


def downgrade() -> None:
    op.drop_index("ix_tasks_queue", table_name="tasks")
    op.create_index("ix_tasks_queue", "tasks", ["state", *QUEUE])
    for column in LEASE_COLUMNS:
        op.drop_index(f"ix_tasks_{column}", table_name="tasks")
        op.create_index(f"ix_tasks_{column}", "tasks", [column])
