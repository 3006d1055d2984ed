"""retention: the sync feed's horizon, and refresh tokens indexed by expiry and revocation

``sync_horizon`` holds the highest ``(tx, seq)`` of the change rows the retention sweep has
deleted: a follower whose cursor is before it is told to start over. The two indexes on
``refresh_tokens`` let the sweep find expired and revoked tokens without reading the table.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 05:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'sync_horizon',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('tx', sa.BigInteger(), nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_horizon')),
    )
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refresh_tokens_expires_at'), ['expires_at'])
        batch_op.create_index(batch_op.f('ix_refresh_tokens_revoked_at'), ['revoked_at'])


def downgrade() -> None:
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refresh_tokens_revoked_at'))
        batch_op.drop_index(batch_op.f('ix_refresh_tokens_expires_at'))
    op.drop_table('sync_horizon')
