"""webhook deliveries listed by their owner

A webhook's deliveries were indexed by ``(webhook_id, created_at, id)``: a commit announcing
one event to ten webhooks wrote ten leaf pages of that index. They are now indexed by the
webhook's owner, ``(user_id, created_at, id)`` (one page), and listed through it filtered by
``webhook_id``. The foreign key to ``webhooks`` goes (its ON DELETE would have scanned the
table without an index led by ``webhook_id``); deleting a webhook deletes its deliveries in the
service, and the owner's key cascades from ``users``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    uuid = sa.Uuid()
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_id', uuid, nullable=True))
    op.execute(
        'UPDATE webhook_deliveries SET user_id = '
        '(SELECT w.user_id FROM webhooks w WHERE w.id = webhook_deliveries.webhook_id)'
    )
    op.execute('DELETE FROM webhook_deliveries WHERE user_id IS NULL')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.alter_column('user_id', existing_type=uuid, nullable=False)
        batch_op.drop_constraint('fk_webhook_deliveries_webhook_id_webhooks', type_='foreignkey')
        batch_op.create_foreign_key(
            op.f('fk_webhook_deliveries_user_id_users'), 'users', ['user_id'], ['id'],
            ondelete='CASCADE',
        )
        batch_op.drop_index('ix_webhook_deliveries_webhook_id_created_at_id')
        batch_op.create_index(
            'ix_webhook_deliveries_user_id_created_at_id', ['user_id', 'created_at', 'id'],
            unique=False,
        )


def downgrade() -> None:
    op.execute(
        'DELETE FROM webhook_deliveries WHERE webhook_id NOT IN (SELECT id FROM webhooks)'
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_user_id_created_at_id')
        batch_op.create_index(
            'ix_webhook_deliveries_webhook_id_created_at_id', ['webhook_id', 'created_at', 'id'],
            unique=False,
        )
        batch_op.drop_constraint('fk_webhook_deliveries_user_id_users', type_='foreignkey')
        batch_op.create_foreign_key(
            'fk_webhook_deliveries_webhook_id_webhooks', 'webhooks', ['webhook_id'], ['id'],
            ondelete='CASCADE',
        )
        batch_op.drop_column('user_id')
