"""webhook events: the outbox writes one row per event, the worker fans it out

A change used to write one delivery per subscribed webhook in its own transaction: ten rows
and thirty index entries for a goal created by a client with ten webhooks. It now writes one
``webhook_events`` row (its rowid the only index); the delivery worker turns it into the
deliveries, applying the subscriber rule as of the event's ``created_at``, and deletes it.

Downgrading drops the events not yet fanned out: their deliveries are never made.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('webhook_events',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('author_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['users.id'], name=op.f('fk_webhook_events_client_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_webhook_events'))
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table('webhook_events')
