"""webhook delivery state

Deliveries keep the exact body they send (signed as sent, the same on every retry), a status
and the last answer's status code; webhooks remember since when every attempt failed and when
they were disabled for it. No webhook was ever delivered before this revision, so the old
``payload`` column goes without a data migration.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 15:42:47.417763
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('body', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(
            sa.Column('status', sa.String(length=16), nullable=False, server_default='pending')
        )
        batch_op.add_column(sa.Column('last_status_code', sa.Integer(), nullable=True))
        batch_op.drop_index('ix_webhook_deliveries_pending')
        batch_op.drop_index('ix_webhook_deliveries_webhook_id')
        batch_op.create_index(
            'ix_webhook_deliveries_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False
        )
        batch_op.create_index(
            'ix_webhook_deliveries_webhook_id_created_at_id',
            ['webhook_id', 'created_at', 'id'],
            unique=False,
        )
        batch_op.drop_column('payload')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.alter_column('body', server_default=None)
        batch_op.alter_column('status', server_default=None)

    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.drop_column('disabled_at')
        batch_op.drop_column('failing_since')

    payload = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payload', payload, nullable=False, server_default='{}'))
        batch_op.drop_index('ix_webhook_deliveries_webhook_id_created_at_id')
        batch_op.drop_index('ix_webhook_deliveries_status_next_attempt_at')
        batch_op.create_index('ix_webhook_deliveries_webhook_id', ['webhook_id'], unique=False)
        batch_op.create_index(
            'ix_webhook_deliveries_pending', ['delivered_at', 'next_attempt_at'], unique=False
        )
        batch_op.drop_column('last_status_code')
        batch_op.drop_column('status')
        batch_op.drop_column('body')
