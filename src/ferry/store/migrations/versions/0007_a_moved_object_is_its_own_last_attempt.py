"""tasks: a DONE task keeps the agent that moved it and is its own last attempt; its agent's
throughput comes from an index of DONE tasks by agent, the attempts' index by agent goes

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

DONE = sa.text("state = 'DONE'")


def upgrade() -> None:
    op.create_index(
        "ix_tasks_done_by_agent",
        "tasks",
        ["lease_agent", "finished_at"],
        sqlite_where=DONE,
        postgresql_where=DONE,
    )
    op.drop_index("ix_attempts_agent_finished_at", table_name="attempts")


def downgrade() -> None:
    # The attempts kept in their tasks' rows get rows of their own again, as before.
    op.execute(
        """
        INSERT INTO attempts (task_id, number, agent, started_at, finished_at, bytes, state,
                              error_class, error)
        SELECT id, attempts, lease_agent, leased_at, finished_at, bytes_done, state,
               error_class, error
        FROM tasks
        WHERE state IN ('DONE', 'SKIPPED') AND finished_at IS NOT NULL
          AND NOT EXISTS (
              SELECT 1 FROM attempts a WHERE a.task_id = tasks.id AND a.number = tasks.attempts
          )
        """
    )
    op.execute("UPDATE tasks SET lease_agent = NULL WHERE state IN ('DONE', 'SKIPPED')")
    op.create_index("ix_attempts_agent_finished_at", "attempts", ["agent", "finished_at"])
    op.drop_index("ix_tasks_done_by_agent", table_name="tasks")
