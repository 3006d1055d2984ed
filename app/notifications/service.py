"""Notification settings, the in-app feed, and the one-click unsubscribe of reminder e-mails."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import Principal
from app.core.clock import utcnow
from app.core.errors import InvalidAccountToken, NotFound
from app.core.pagination import decode_cursor, encode_cursor
from app.core.schemas import parse_object_id
from app.notifications import repository
from app.notifications.schemas import NotificationSettingsUpdate
from app.reminders import service as reminders
from app.reminders.unsubscribe import account_of


async def read_settings(session: AsyncSession, principal: Principal) -> dict[str, Any]:
    return await repository.settings_of(session, principal.user_id)


async def update_settings(
    session: AsyncSession, principal: Principal, data: NotificationSettingsUpdate
) -> dict[str, Any]:
    """Apply the fields sent; a client's next reminder instant follows (hour, reminders)."""
    current = await repository.settings_of(session, principal.user_id)
    changes = {k: v for k, v in data.changes().items() if current[k] != v}
    if changes:
        await repository.save_settings(session, principal.user_id, changes, utcnow())
        if principal.is_client and changes.keys() & {"reminder_hour", "review_reminders"}:
            await reminders.reschedule_client(session, principal.user_id)
    return {**current, **changes}


def notification_document(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "client": {"id": row.client_id, "display_name": row.client_display_name},
        "goal_ids": row.goal_ids,
        "title": row.title,
        "body": row.body,
        "created_at": row.created_at,
        "read_at": row.read_at,
    }


async def list_notifications(
    session: AsyncSession,
    principal: Principal,
    *,
    unread: bool | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """The caller's own notifications, newest first, keyset on ``(created_at, id)``."""
    after = decode_cursor(cursor, dt.datetime, uuid.UUID) if cursor else None
    rows = await repository.feed_page(
        session, principal.user_id, unread=unread, after=after, limit=limit + 1
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id)
    return [notification_document(row) for row in rows], next_cursor


async def mark_read(session: AsyncSession, principal: Principal, raw_id: str) -> dict[str, Any]:
    """The recipient marks it read (a second call keeps the first ``read_at``); anyone
    else's: 404."""
    row = await repository.mark_read(session, principal.user_id, parse_object_id(raw_id), utcnow())
    if row is None:
        raise NotFound("No such notification.")
    return notification_document(row)


async def unsubscribe(session: AsyncSession, token: str) -> None:
    """Turn ``review_reminders`` off for the account the token names."""
    user_id = account_of(token)
    if user_id is None or not await repository.account_exists(session, user_id):
        raise InvalidAccountToken("This unsubscribe link is not valid.")
    await repository.save_settings(session, user_id, {"review_reminders": False}, utcnow())
    await reminders.reschedule_client(session, user_id)
