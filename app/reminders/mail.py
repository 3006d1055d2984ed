"""Reminders and alerts by e-mail, queued in the transaction that decided them (the mail
outbox sends them after its commit).

A message names no goal unless its recipient chose ``include_goal_titles``; it always links
to the app's page of due reviews. A reminder carries the one-click unsubscribe headers of
RFC 8058. Each message is about its client (``user_id``): erasing the client erases what is
still waiting to be sent, and the ``Waypoint-Goal`` header lets an alert about one goal be
withdrawn when its goal leaves the recipient's sight.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import get_settings
from app.mail.outbox import queue_mail
from app.reminders.recipients import Recipient
from app.reminders.unsubscribe import unsubscribe_url

GOAL_HEADER = "Waypoint-Goal"


def _due_link() -> str:
    return f"{get_settings().mail_links_base}/reviews/due"


def goals_due(count: int) -> str:
    """How many goals are due, as the reminder's e-mail and notification both say it."""
    return "1 goal is" if count == 1 else f"{count} goals are"


def _goal_lines(titles: Sequence[str]) -> str:
    return "".join(f"\n  - {title}" for title in titles)


async def mail_reminder(
    session: AsyncSession, client: Recipient, titles: Sequence[str], count: int
) -> None:
    """A client's review reminder; ``titles`` given only when they chose them."""
    url = unsubscribe_url(client.user_id)
    await queue_mail(
        session,
        to=client.email,
        template="review_due",
        context={
            "display_name": client.display_name,
            "count_text": goals_due(count),
            "goal_lines": "\n" + _goal_lines(titles) if titles else "",
            "link": _due_link(),
            "unsubscribe": url,
        },
        user_id=client.user_id,
        headers={
            "List-Unsubscribe": f"<{url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )


async def mail_lagging(
    session: AsyncSession,
    recipient: Recipient,
    *,
    client_id: uuid.UUID,
    goal_id: uuid.UUID,
    title: str | None,
    subject: str,
    message: str,
) -> None:
    """A lagging alert; ``title`` given only when the recipient chose goal titles."""
    await queue_mail(
        session,
        to=recipient.email,
        template="goal_lagging",
        context={
            "display_name": recipient.display_name,
            "subject": subject,
            "message": message,
            "goal_lines": "\n" + _goal_lines([title]) if title else "",
            "link": f"{get_settings().mail_links_base}/goals/{goal_id}",
        },
        user_id=client_id,
        headers={GOAL_HEADER: str(goal_id)},
    )
