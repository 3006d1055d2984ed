"""Alerts not delivered yet that must not go out any more: a care link ended, a goal turned
private or was deleted. Pending ``goal.lagging`` webhook deliveries and lagging e-mails are
removed; notifications already in a feed stay."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import MailMessage, User, WebhookDelivery


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
        # The body is {"id", "type", "created_at", "data"}, data the goal document (id first).
        query = query.where(deliveries.c.body.contains(f'"data":{{"id":"{goal_id}"'))
    if recipient is not None:
        query = query.where(deliveries.c.user_id == recipient)
    if keep_client:
        query = query.where(deliveries.c.user_id != client_id)
    await session.execute(query)


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
