"""tasks may carry chunks of small objects: objects numbered per run, chunk lists, outcomes

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ferry.store.tables import UtcDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_FAILED = sa.text("state = 'FAILED'")
_LOST = sa.text("state = 'LOST'")
_SINGLE = sa.text("origin IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("next_object", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("object", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("objects", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("origin", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("members", sa.JSON(), nullable=True))
        batch.create_index("ix_tasks_transfer_id_run_object", ["transfer_id", "run", "object"])
        batch.create_index("ix_tasks_transfer_id_run_origin", ["transfer_id", "run", "origin"])
        batch.drop_index("uq_tasks_object")
        batch.create_index(
            "uq_tasks_object",
            ["transfer_id", "run", "destination"],
            unique=True,
            sqlite_where=_SINGLE,
            postgresql_where=_SINGLE,
        )
    op.create_table(
        "chunks",
        sa.Column("transfer_id", sa.String(36), sa.ForeignKey("transfers.id"), primary_key=True),
        sa.Column("run", sa.Integer(), primary_key=True),
        sa.Column("first", sa.BigInteger(), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("objects", sa.Text(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "outcomes",
        sa.Column("transfer_id", sa.String(36), primary_key=True),
        sa.Column("run", sa.Integer(), primary_key=True),
        sa.Column("object", sa.BigInteger(), primary_key=True),
        sa.Column("attempt", sa.Integer(), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(80), nullable=True),
        sa.Column("error_class", sa.String(32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("agent", sa.String(36), nullable=True),
        sa.Column("started_at", UtcDateTime(), nullable=True),
        sa.Column("finished_at", UtcDateTime(), nullable=False),
        sqlite_with_rowid=False,
    )
    for name, columns, where in (
        ("ix_outcomes_failed", ["transfer_id", "run", "object"], _FAILED),
        ("ix_outcomes_failed_at", ["finished_at"], _FAILED),
        ("ix_outcomes_lost", ["transfer_id", "run"], _LOST),
    ):
        op.create_index(name, "outcomes", columns, sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    carriers = op.get_bind().execute(sa.text("SELECT count(*) FROM tasks WHERE origin IS NOT NULL"))
    if carriers.scalar_one():
        # The older code would copy a carrier as one file and lose its objects' outcomes.
        raise RuntimeError(
            "the database holds chunks of small objects, which the older schema cannot"
            " represent: let their transfers finish, or delete them, before downgrading"
        )
    for name in ("ix_outcomes_lost", "ix_outcomes_failed_at", "ix_outcomes_failed"):
        op.drop_index(name, table_name="outcomes")
    op.drop_table("outcomes")
    op.drop_table("chunks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("uq_tasks_object")
        batch.create_index("uq_tasks_object", ["transfer_id", "run", "destination"], unique=True)
        batch.drop_index("ix_tasks_transfer_id_run_origin")
        batch.drop_index("ix_tasks_transfer_id_run_object")
        for column in ("members", "origin", "objects", "object"):
            batch.drop_column(column)
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("next_object")
