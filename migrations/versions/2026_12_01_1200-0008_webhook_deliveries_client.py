"""webhook deliveries: the client they are about, erased with that client

A delivery's body holds the client's data (a therapist's webhook hears of a linked client's
shared goals). Deliveries now carry the ``client_id`` of their event, with a cascading
foreign key, so erasing a client erases every delivery about them, whoever's webhook it was
for. Existing rows are filled where the answer is known: a client's own webhook hears only of
themself; a goal or an encouragement names its client in ``data.client_id``; a step or a
review names its goal (``data.goal_id``), and a deleted goal is ``{"id"}``, whose goal row
names the client while it exists. The rest (a goal since erased) stay null.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWN = (
    "UPDATE webhook_deliveries SET client_id = user_id WHERE user_id IN "
    "(SELECT id FROM users WHERE role = 'client')"
)
NAMED = {
    'postgresql': (
        "UPDATE webhook_deliveries SET client_id = u.id FROM users u "
        "WHERE webhook_deliveries.client_id IS NULL "
        "AND u.id::text = webhook_deliveries.body::jsonb #>> '{data,client_id}'"
    ),
    'sqlite': (
        "UPDATE webhook_deliveries SET client_id = (SELECT u.id FROM users u "
        "WHERE u.id = replace(json_extract(webhook_deliveries.body, '$.data.client_id'), '-', '')) "
        "WHERE client_id IS NULL"
    ),
}
VIA_GOAL = {
    'postgresql': (
        "UPDATE webhook_deliveries SET client_id = g.client_id FROM goals g "
        "WHERE webhook_deliveries.client_id IS NULL AND g.id::text = coalesce("
        "webhook_deliveries.body::jsonb #>> '{data,goal_id}', "
        "CASE WHEN webhook_deliveries.event LIKE 'goal.%' "
        "THEN webhook_deliveries.body::jsonb #>> '{data,id}' END)"
    ),
    'sqlite': (
        "UPDATE webhook_deliveries SET client_id = (SELECT g.client_id FROM goals g "
        "WHERE g.id = replace(coalesce(json_extract(webhook_deliveries.body, '$.data.goal_id'), "
        "CASE WHEN webhook_deliveries.event LIKE 'goal.%' "
        "THEN json_extract(webhook_deliveries.body, '$.data.id') END), '-', '')) "
        "WHERE client_id IS NULL"
    ),
}


def upgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client_id', sa.Uuid(), nullable=True))
    op.execute(OWN)
    dialect = op.get_bind().dialect.name
    op.execute(NAMED[dialect])
    op.execute(VIA_GOAL[dialect])
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_webhook_deliveries_client_id'), ['client_id'], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f('fk_webhook_deliveries_client_id_users'), 'users', ['client_id'], ['id'],
            ondelete='CASCADE',
        )


def downgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_constraint('fk_webhook_deliveries_client_id_users', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_client_id'))
        batch_op.drop_column('client_id')
