"""tasks: one index of the ACTIVE tasks' leases, by agent then expiry

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ACTIVE = sa.text("state = 'ACTIVE'")


def upgrade() -> None:
    op.drop_index("ix_tasks_lease_expires_at", table_name="tasks")
    op.drop_index("ix_tasks_lease_agent", table_name="tasks")
    op.create_index(
        "ix_tasks_lease_agent",
        "tasks",
        ["lease_agent", "lease_expires_at"],
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_lease_agent", table_name="tasks")
    for column in ("lease_expires_at", "lease_agent"):
        op.create_index(
            f"ix_tasks_{column}", "tasks", [column], sqlite_where=ACTIVE, postgresql_where=ACTIVE
        )
