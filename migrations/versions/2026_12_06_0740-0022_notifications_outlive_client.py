"""notifications outlive the client they are about

A therapist's lagging alert about a client stayed in their feed only as long as the client's
account: the foreign key on ``notifications.client_id`` erased it with the client. Alerts
already delivered stay (their goals answer 404 and the erasure rewrites the text that named
the client), so the column keeps only the id, indexed, as change rows do.

Revision ID: 0022
Revises: 0021_reminders
Create Date: 2026-12-06 07:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0022'
down_revision: str | None = '0021_reminders'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('fk_notifications_client_id_users'), type_='foreignkey'
        )


def downgrade() -> None:
    # The key again: alerts about accounts erased meanwhile cannot keep it.
    op.execute(
        sa.text("DELETE FROM notifications WHERE client_id NOT IN (SELECT id FROM users)")
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f('fk_notifications_client_id_users'), 'users', ['client_id'], ['id'],
            ondelete='CASCADE',
        )
