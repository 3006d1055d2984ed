"""changes: the writing transaction's id (the feed follows (tx, seq), not a global lock)

On PostgreSQL ``tx`` is the writing transaction's id, ``pg_current_xact_id()`` (64 bits, never
wraps), given by the column's default so that every insert path gets it without naming it; the
sync feed serves rows in ``(tx, seq)`` order below the oldest running transaction instead of
making every writer's COMMIT wait on one advisory lock (``app/changes/service.py``). The rows
written before get 0 (a metadata-only ADD COLUMN): they all committed before any row written
after this revision, which ``(0, seq)`` keeps in front. SQLite serializes writers, so ``seq``
already follows commit order there: ``tx`` is 0 for every row.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_TRANSACTION = sa.text('(pg_current_xact_id()::text::bigint)')


def upgrade() -> None:
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('tx', sa.BigInteger(), server_default=sa.text('0'), nullable=False)
        )
        batch_op.drop_index('ix_changes_client_id_seq')
        batch_op.drop_index('ix_changes_audience_id_seq')
        batch_op.create_index(
            'ix_changes_client_id_tx_seq', ['client_id', 'tx', 'seq'], unique=False
        )
        batch_op.create_index(
            'ix_changes_audience_id_tx_seq', ['audience_id', 'tx', 'seq'], unique=False
        )
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('changes', 'tx', server_default=CURRENT_TRANSACTION)


def downgrade() -> None:
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.drop_index('ix_changes_audience_id_tx_seq')
        batch_op.drop_index('ix_changes_client_id_tx_seq')
        batch_op.create_index('ix_changes_audience_id_seq', ['audience_id', 'seq'], unique=False)
        batch_op.create_index('ix_changes_client_id_seq', ['client_id', 'seq'], unique=False)
        batch_op.drop_column('tx')
