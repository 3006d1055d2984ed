"""Alerts not delivered yet that must not go out any more: a care link ended, a goal turned
private or was deleted. Pending ``goal.lagging`` webhook deliveries and lagging e-mails are
removed, and events not fanned out yet lose the audience that can no longer see the goal (a
link that ended is left out by the fan-out itself, ``app.webhooks.repository``); notifications
already in a feed stay."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import MailMessage, User, WebhookDelivery, WebhookEvent


async def withdraw_lagging_deliveries(
    session: AsyncSession,
    client_id: uuid.UUID,
    *,
    goal_id: uuid.UUID | None,
    recipient: uuid.UUID | None,
    keep_client: bool,
) -> None:
    """Pending ``goal.lagging`` deliveries about the client that must not go out any more:
    those of one goal (``goal_id``), to one account (``recipient``), and, with
    ``keep_client``, not those to the client's own webhooks."""
    deliveries = WebhookDelivery.__table__
    query = sa.delete(deliveries).where(
        deliveries.c.client_id == client_id,
        deliveries.c.event == "goal.lagging",
        deliveries.c.status == "pending",
    )
    if goal_id is not None:
        query = query.where(_about_goal(deliveries.c.body, goal_id))
    if recipient is not None:
        query = query.where(deliveries.c.user_id == recipient)
    if keep_client:
        query = query.where(deliveries.c.user_id != client_id)
    await session.execute(query)


def _about_goal(body: sa.Column[str], goal_id: uuid.UUID) -> sa.ColumnElement[bool]:
    # The body is {"id", "type", "created_at", "data"}, data the goal document (id first).
    return body.contains(f'"data":{{"id":"{goal_id}"')


async def withdraw_lagging_events(
    session: AsyncSession, client_id: uuid.UUID, *, goal_id: uuid.UUID, keep_client: bool
) -> None:
    """``goal.lagging`` events about the goal not fanned out yet: with ``keep_client`` (the
    goal turned private) they become the client's alone, else (deleted) they go."""
    events = WebhookEvent.__table__
    mine = sa.and_(
        events.c.client_id == client_id,
        events.c.event == "goal.lagging",
        _about_goal(events.c.body, goal_id),
    )
    if keep_client:
        await session.execute(sa.update(events).where(mine).values(shared=False, author_id=None))
    else:
        await session.execute(sa.delete(events).where(mine))


async def withdraw_lagging_mail(
    session: AsyncSession,
    client_id: uuid.UUID,
    *,
    goal_id: uuid.UUID | None,
    recipient: uuid.UUID | None,
    keep_client: bool,
) -> None:
    """Lagging alerts by e-mail about the client not sent yet that must not go out any more,
    chosen as ``withdraw_lagging_deliveries`` chooses (the goal by the message's
    ``Waypoint-Goal`` header, accounts by their address)."""
    mail = MailMessage.__table__
    users = User.__table__
    query = sa.delete(mail).where(
        mail.c.user_id == client_id, mail.c.template == "goal_lagging", mail.c.status == "pending"
    )
    if goal_id is not None:
        query = query.where(mail.c.headers.contains(str(goal_id)))
    if recipient is not None:
        query = query.where(
            mail.c.recipient
            == sa.select(users.c.email).where(users.c.id == recipient).scalar_subquery()
        )
    if keep_client:
        query = query.where(
            mail.c.recipient
            != sa.select(users.c.email).where(users.c.id == client_id).scalar_subquery()
        )
    await session.execute(query)
