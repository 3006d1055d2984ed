"""changes: audience_id and shared (who a change row is for)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 15:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audience_id", sa.Uuid(), nullable=True))
        batch_op.add_column(
            sa.Column("shared", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_index("ix_changes_audience_id_seq", ["audience_id", "seq"], unique=False)
    # The sync snapshot walks a client's objects in id order.
    with op.batch_alter_table("goals", schema=None) as batch_op:
        batch_op.create_index("ix_goals_client_id_id", ["client_id", "id"], unique=False)
    for table in ("steps", "reviews"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_client_id")
            batch_op.create_index(f"ix_{table}_client_id_id", ["client_id", "id"], unique=False)
    # Rows written before: a goal's, step's or review's row is for linked therapists when its
    # goal is shared now (the best that can be known afterwards).
    op.execute(
        "UPDATE changes SET shared = true WHERE object_type IN ('goal', 'step', 'review') "
        "AND goal_id IN (SELECT id FROM goals WHERE visibility = 'shared')"
    )


def downgrade() -> None:
    for table in ("steps", "reviews"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_client_id_id")
            batch_op.create_index(f"ix_{table}_client_id", ["client_id"], unique=False)
    with op.batch_alter_table("goals", schema=None) as batch_op:
        batch_op.drop_index("ix_goals_client_id_id")
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_index("ix_changes_audience_id_seq")
        batch_op.drop_column("shared")
        batch_op.drop_column("audience_id")
