"""What a reminder or a lagging alert writes: the in-app notifications and the webhook events,
in the transaction that decided it.

Notifications name no goal text, only goal ids: whoever may no longer see a goal later finds
it answering 404, and the feed holds nothing private of it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.reminders.mail import goals_due, mail_lagging, mail_reminder
from app.reminders.recipients import (
    Recipient,
    goal_title,
    insert_notifications,
    linked_therapists,
    notification_row,
    recipients,
    rewrite_lagging_bodies,
)
from app.webhooks.events import Event, record, record_event


def review_due_text(count: int) -> tuple[str, str]:
    return (
        "Time to review your goals",
        f"{goals_due(count)} due for a review. A few minutes to see where you are keeps you "
        "on track.",
    )


CLIENT_LAGGING = (
    "A goal could use some attention",
    "One of your goals has slipped a little behind. That happens; a short review is a good "
    "way to gather yourself and charge back in.",
)


def therapist_lagging_text(client_name: str) -> tuple[str, str]:
    return (
        "A client's goal is lagging behind",
        f"A goal {client_name} shares with you is lagging behind: it may be a good moment to "
        "check in.",
    )


FORMER_CLIENT = "a former client"


async def forget_client(session: AsyncSession, client_id: uuid.UUID) -> None:
    """The client erases their account: the alerts about them stay in therapists' feeds (the
    client's own go with the account), their text no longer naming them."""
    await rewrite_lagging_bodies(session, client_id, therapist_lagging_text(FORMER_CLIENT)[1])


async def remind(
    session: AsyncSession,
    client: Recipient,
    goals: Sequence[Any],
    at: dt.datetime,
) -> int:
    """One ``review_due`` notification for the goals reminded together (``(id,
    next_review_due, title)`` rows), its e-mail, and the ``review.due`` event to the client's
    own webhooks."""
    title, body = review_due_text(len(goals))
    row = notification_row(
        user_id=client.user_id,
        kind="review_due",
        client_id=client.user_id,
        goal_ids=[goal.id for goal in goals],
        title=title,
        body=body,
        at=at,
    )
    await insert_notifications(session, [row])
    if client.mailable:
        titles = [goal.title for goal in goals] if client.include_goal_titles else []
        await mail_reminder(session, client, titles, len(goals))
    data = {
        "client_id": client.user_id,
        "goals": [{"id": goal.id, "next_review_due": goal.next_review_due} for goal in goals],
    }
    record(session, Event("review.due", "reminder", row["id"], client.user_id, data, False, None))
    return 1


async def alert_lagging(
    session: AsyncSession,
    *,
    client_id: uuid.UUID,
    goal_id: uuid.UUID,
    shared: bool,
    at: dt.datetime,
) -> int:
    """A goal started lagging: one notification to the client (as encouragement) and, for a
    shared goal, one to each linked therapist, each when their ``lagging_alerts`` is on, by
    e-mail too when they want it; the ``goal.lagging`` event to whoever may see the goal.
    How many notifications."""
    client = (await recipients(session, [client_id])).get(client_id)
    if client is None:
        return 0
    told: list[tuple[Recipient, tuple[str, str]]] = []
    if client.lagging_alerts:
        told.append((client, CLIENT_LAGGING))
    if shared:
        text = therapist_lagging_text(client.display_name)
        told += [(t, text) for t in await linked_therapists(session, client_id) if t.lagging_alerts]
    rows = [
        notification_row(
            user_id=person.user_id, kind="goal_lagging", client_id=client_id,
            goal_ids=[goal_id], title=title, body=body, at=at,
        )
        for person, (title, body) in told
    ]  # fmt: skip
    await insert_notifications(session, rows)
    mailed = [(person, text) for person, text in told if person.mailable]
    title = None
    if any(person.include_goal_titles for person, _ in mailed):
        title = await goal_title(session, goal_id)
    for person, (subject, message) in mailed:
        await mail_lagging(
            session, person, client_id=client_id, goal_id=goal_id,
            title=title if person.include_goal_titles else None,
            subject=subject, message=message,
        )  # fmt: skip
    record_event(session, "goal.lagging", object_id=goal_id, client_id=client_id, shared=shared)
    return len(rows)
