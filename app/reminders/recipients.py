"""Who hears of a reminder or an alert, with what they chose, and the notification rows
written for them. Settings absent from ``notification_settings`` are the defaults."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import CareLink, Goal, Notification, NotificationSettings, User, new_id

SETTINGS = NotificationSettings.__table__
NOTIFICATIONS = Notification.__table__
USERS = User.__table__
LINKS = CareLink.__table__

DEFAULTS: dict[str, Any] = {
    "review_reminders": True,
    "reminder_hour": 9,
    "email": True,
    "include_goal_titles": False,
    "lagging_alerts": True,
}
SETTING_NAMES = tuple(DEFAULTS)


def _setting(name: str) -> sa.ColumnElement[Any]:
    """The setting, its default when the account never changed any."""
    return sa.func.coalesce(SETTINGS.c[name], DEFAULTS[name]).label(f"setting_{name}")


@dataclass(frozen=True, slots=True)
class Recipient:
    """An account to notify, with what it chose and what its e-mail needs."""

    user_id: uuid.UUID
    email: str
    timezone: str
    review_reminders: bool
    reminder_hour: int
    email_on: bool
    include_goal_titles: bool
    lagging_alerts: bool
    display_name: str = ""
    email_verified: bool = False

    @property
    def mailable(self) -> bool:
        """E-mail goes only to a verified address, and only when the account wants it."""
        return self.email_on and self.email_verified


_RECIPIENT_COLUMNS = (
    USERS.c.id,
    USERS.c.email,
    USERS.c.timezone,
    USERS.c.display_name,
    USERS.c.email_verified,
    *(_setting(name) for name in SETTING_NAMES),
)


def _recipient(row: Any) -> Recipient:
    return Recipient(
        user_id=row.id,
        email=row.email,
        timezone=row.timezone,
        review_reminders=bool(row.setting_review_reminders),
        reminder_hour=int(row.setting_reminder_hour),
        email_on=bool(row.setting_email),
        include_goal_titles=bool(row.setting_include_goal_titles),
        lagging_alerts=bool(row.setting_lagging_alerts),
        display_name=row.display_name,
        email_verified=bool(row.email_verified),
    )


def _with_settings() -> Any:
    return USERS.outerjoin(SETTINGS, SETTINGS.c.user_id == USERS.c.id)


async def recipients(session: AsyncSession, user_ids: Iterable[uuid.UUID]) -> dict:
    """``{user_id: Recipient}`` for the accounts that exist."""
    ids = list(set(user_ids))
    if not ids:
        return {}
    query = sa.select(*_RECIPIENT_COLUMNS).select_from(_with_settings()).where(USERS.c.id.in_(ids))
    return {row.id: _recipient(row) for row in await session.execute(query)}


async def linked_therapists(session: AsyncSession, client_id: uuid.UUID) -> list[Recipient]:
    """The therapists linked with the client right now."""
    query = (
        sa.select(*_RECIPIENT_COLUMNS)
        .select_from(_with_settings().join(LINKS, LINKS.c.therapist_id == USERS.c.id))
        .where(LINKS.c.client_id == client_id, LINKS.c.ended_at.is_(None))
    )
    return [_recipient(row) for row in await session.execute(query)]


def notification_row(
    *,
    user_id: uuid.UUID,
    kind: str,
    client_id: uuid.UUID,
    goal_ids: Sequence[uuid.UUID],
    title: str,
    body: str,
    at: dt.datetime,
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "user_id": user_id,
        "kind": kind,
        "client_id": client_id,
        "goal_ids": [str(goal_id) for goal_id in goal_ids],
        "title": title,
        "body": body,
        "created_at": at,
        "read_at": None,
    }


async def insert_notifications(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(sa.insert(NOTIFICATIONS), list(rows))


async def rewrite_lagging_bodies(session: AsyncSession, client_id: uuid.UUID, body: str) -> None:
    """The text of the lagging alerts about the client in other accounts' feeds."""
    await session.execute(
        sa.update(NOTIFICATIONS)
        .where(
            NOTIFICATIONS.c.client_id == client_id,
            NOTIFICATIONS.c.user_id != client_id,
            NOTIFICATIONS.c.kind == "goal_lagging",
        )
        .values(body=body)
    )


async def goal_title(session: AsyncSession, goal_id: uuid.UUID) -> str:
    """For the e-mails of recipients who chose goal titles."""
    title = await session.scalar(sa.select(Goal.title).where(Goal.id == goal_id))
    return title or ""
