"""reminders and lagging-behind alerts: notification settings, the feed, the schedule

Goals gain their lagging state (``lagging`` and the two rules' parts) and the due date last
reminded. ``reminder_schedules`` holds each client's next instant with something to do,
indexed, so the scheduler reads only the clients that are due. Existing goals start not
lagging and not reminded. Every client with an active goal that has a due date gets a
schedule row at the earliest instant their earliest due date can begin anywhere (14 hours
before it starts in UTC): the scheduler's first run for them finds what is due and stores the
exact next instant (an early instant is harmless, a late one would miss a reminder).

Revision ID: 0021_reminders
Revises: 0012
Create Date: 2026-12-06 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0021_reminders'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('goals', schema=None) as batch_op:
        for name in ('lagging', 'lagging_reviews', 'lagging_missed'):
            batch_op.add_column(
                sa.Column(name, sa.Boolean(), server_default=sa.false(), nullable=False)
            )
        batch_op.add_column(sa.Column('reminded_due', sa.Date(), nullable=True))

    op.create_table(
        'notification_settings',
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('review_reminders', sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column('reminder_hour', sa.Integer(), server_default=sa.text('9'), nullable=False),
        sa.Column('email', sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column('include_goal_titles', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('lagging_alerts', sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_notification_settings_user_id_users'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_notification_settings')),
    )
    op.create_table(
        'reminder_schedules',
        sa.Column('client_id', sa.Uuid(), nullable=False),
        sa.Column('next_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['client_id'], ['users.id'], name=op.f('fk_reminder_schedules_client_id_users'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('client_id', name=op.f('pk_reminder_schedules')),
    )
    op.create_index(
        op.f('ix_reminder_schedules_next_at'), 'reminder_schedules', ['next_at'], unique=False
    )
    json_type = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')
    op.create_table(
        'notifications',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('client_id', sa.Uuid(), nullable=False),
        sa.Column('goal_ids', json_type, nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('body', sa.String(length=1000), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['client_id'], ['users.id'], name=op.f('fk_notifications_client_id_users'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    )
    op.create_index(
        op.f('ix_notifications_client_id'), 'notifications', ['client_id'], unique=False
    )
    op.create_index(
        op.f('ix_notifications_created_at'), 'notifications', ['created_at'], unique=False
    )
    op.create_index(
        'ix_notifications_user_id_created_at_id', 'notifications',
        ['user_id', 'created_at', 'id'], unique=False,
    )
    _schedule_existing_clients()


EARLIEST = {
    'postgresql': "(min(next_review_due)::timestamp AT TIME ZONE 'UTC') - interval '14 hours'",
    'sqlite': "strftime('%Y-%m-%d %H:%M:%S.000000', min(next_review_due), '-14 hours')",
}


def _schedule_existing_clients() -> None:
    earliest = EARLIEST[op.get_bind().dialect.name]
    op.execute(
        "INSERT INTO reminder_schedules (client_id, next_at) "
        f"SELECT client_id, {earliest} FROM goals "
        "WHERE status = 'active' AND deleted_at IS NULL AND next_review_due IS NOT NULL "
        "GROUP BY client_id"
    )


def downgrade() -> None:
    op.drop_table('notifications')
    op.drop_index(op.f('ix_reminder_schedules_next_at'), table_name='reminder_schedules')
    op.drop_table('reminder_schedules')
    op.drop_table('notification_settings')
    with op.batch_alter_table('goals', schema=None) as batch_op:
        for name in ('reminded_due', 'lagging_missed', 'lagging_reviews', 'lagging'):
            batch_op.drop_column(name)
