"""transfer listing indexes

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_transfers_status_created_at_id": ["status", "created_at", "id"],
    "ix_transfers_scope_created_at_id": ["scope", "created_at", "id"],
    "ix_transfers_scope_status_created_at_id": ["scope", "status", "created_at", "id"],
}


def upgrade() -> None:
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        for name, columns in INDEXES.items():
            batch_op.create_index(batch_op.f(name), columns, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        for name in INDEXES:
            batch_op.drop_index(batch_op.f(name))
