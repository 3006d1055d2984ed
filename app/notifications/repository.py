"""The notification statements: settings (a row only once changed; absent means the defaults)
and the feed. The rows themselves are written by reminders and alerts (``app.reminders``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Notification, NotificationSettings, User
from app.reminders.recipients import DEFAULTS, SETTING_NAMES

SETTINGS = NotificationSettings.__table__
FORMER_CLIENT = "Former client"
NOTIFICATIONS = Notification.__table__
USERS = User.__table__


async def settings_of(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    row = (
        await session.execute(
            sa.select(*(SETTINGS.c[name] for name in SETTING_NAMES)).where(
                SETTINGS.c.user_id == user_id
            )
        )
    ).first()
    return dict(DEFAULTS) if row is None else dict(row._mapping)


async def save_settings(
    session: AsyncSession, user_id: uuid.UUID, values: dict[str, Any], at: dt.datetime
) -> None:
    """Insert the account's row or change it (both databases spell the upsert alike)."""
    dialect = session.bind.dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(SETTINGS)
    statement = insert.values(user_id=user_id, updated_at=at, **values).on_conflict_do_update(
        index_elements=[SETTINGS.c.user_id], set_={**values, "updated_at": at}
    )
    await session.execute(statement)


_FEED_COLUMNS = (
    NOTIFICATIONS.c.id,
    NOTIFICATIONS.c.kind,
    NOTIFICATIONS.c.client_id,
    sa.func.coalesce(USERS.c.display_name, FORMER_CLIENT).label("client_display_name"),
    NOTIFICATIONS.c.goal_ids,
    NOTIFICATIONS.c.title,
    NOTIFICATIONS.c.body,
    NOTIFICATIONS.c.created_at,
    NOTIFICATIONS.c.read_at,
)
# An erased client's id no longer names an account: their alerts in therapists' feeds show
# them as a former client.
_FEED = sa.select(*_FEED_COLUMNS).outerjoin(USERS, USERS.c.id == NOTIFICATIONS.c.client_id)


async def feed_page(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    unread: bool | None,
    after: tuple[dt.datetime, uuid.UUID] | None,
    limit: int,
) -> list[Any]:
    """The account's notifications, newest first, keyset on ``(created_at, id)``."""
    query = _FEED.where(NOTIFICATIONS.c.user_id == user_id)
    if unread is True:
        query = query.where(NOTIFICATIONS.c.read_at.is_(None))
    elif unread is False:
        query = query.where(NOTIFICATIONS.c.read_at.is_not(None))
    if after is not None:
        query = query.where(
            sa.tuple_(NOTIFICATIONS.c.created_at, NOTIFICATIONS.c.id) < sa.tuple_(*after)
        )
    query = query.order_by(NOTIFICATIONS.c.created_at.desc(), NOTIFICATIONS.c.id.desc())
    return list((await session.execute(query.limit(limit))).all())


async def mark_read(
    session: AsyncSession, user_id: uuid.UUID, notification_id: uuid.UUID, at: dt.datetime
) -> Any:
    """Set ``read_at`` once (a second call keeps the first); the row, or None when the
    account has no such notification."""
    mine = sa.and_(NOTIFICATIONS.c.id == notification_id, NOTIFICATIONS.c.user_id == user_id)
    await session.execute(
        sa.update(NOTIFICATIONS).where(mine, NOTIFICATIONS.c.read_at.is_(None)).values(read_at=at)
    )
    return (await session.execute(_FEED.where(mine))).first()


async def account_exists(session: AsyncSession, user_id: uuid.UUID) -> bool:
    found = await session.scalar(sa.select(USERS.c.id).where(USERS.c.id == user_id))
    return found is not None
