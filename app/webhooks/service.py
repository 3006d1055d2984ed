"""Webhooks: subscribe, list, unsubscribe, and the deliveries of one (the caller's own only)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import Principal
from app.core.clock import utcnow
from app.core.config import get_settings
from app.core.errors import NotFound, ValidationFailed
from app.core.pagination import decode_cursor, encode_cursor
from app.core.reads import fetch_rows
from app.core.schemas import parse_object_id
from app.models import Webhook, WebhookDelivery, new_id
from app.webhooks.addresses import url_refusal
from app.webhooks.fanout import fan_out_all
from app.webhooks.schemas import DeliveryOut, WebhookCreate, WebhookCreated, WebhookOut
from app.webhooks.signing import new_secret

WEBHOOKS = Webhook.__table__
DELIVERIES = WebhookDelivery.__table__
_LISTED = (
    WEBHOOKS.c.id, WEBHOOKS.c.url, WEBHOOKS.c.events, WEBHOOKS.c.active, WEBHOOKS.c.disabled_at,
    WEBHOOKS.c.created_at,
)  # fmt: skip
_DELIVERY = (
    DELIVERIES.c.id, DELIVERIES.c.event, DELIVERIES.c.status, DELIVERIES.c.attempts,
    DELIVERIES.c.last_status_code, DELIVERIES.c.last_error, DELIVERIES.c.next_attempt_at,
    DELIVERIES.c.delivered_at, DELIVERIES.c.created_at,
)  # fmt: skip


async def create_webhook(
    session: AsyncSession, principal: Principal, data: WebhookCreate
) -> WebhookCreated:
    refused = url_refusal(data.url, allow_private=get_settings().webhooks_allow_private)
    if refused is not None:
        raise ValidationFailed(refused, loc=["body", "url"])
    row: dict[str, Any] = {
        "id": new_id(),
        "user_id": principal.user_id,
        "url": data.url,
        "events": list(data.events),
        "secret": new_secret(),
        "active": True,
        "failing_since": None,
        "disabled_at": None,
        "created_at": utcnow(),
    }
    await session.execute(sa.insert(WEBHOOKS), row)
    return WebhookCreated(**row)


async def list_webhooks(
    session: AsyncSession, principal: Principal, limit: int, cursor: str | None
) -> tuple[list[WebhookOut], str | None]:
    """The caller's webhooks, newest first (ids are time-ordered)."""
    query = sa.select(*_LISTED).where(WEBHOOKS.c.user_id == principal.user_id)
    if cursor:
        (after,) = decode_cursor(cursor, uuid.UUID)
        query = query.where(WEBHOOKS.c.id < after)
    rows = (await session.execute(query.order_by(WEBHOOKS.c.id.desc()).limit(limit + 1))).all()
    items = [WebhookOut.model_validate(row._asdict()) for row in rows[:limit]]
    return items, encode_cursor(items[-1].id) if len(rows) > limit else None


async def _own_webhook(session: AsyncSession, principal: Principal, raw_id: str) -> uuid.UUID:
    """The caller's webhook ``raw_id``, else 404. A read of its own (``fetch_rows``): on
    SQLite it opens no transaction whose snapshot would hide what ``fan_out_all`` commits."""
    rows = await fetch_rows(
        session,
        sa.select(WEBHOOKS.c.id).where(
            WEBHOOKS.c.id == parse_object_id(raw_id), WEBHOOKS.c.user_id == principal.user_id
        ),
        {},
    )
    if not rows:
        raise NotFound("No such webhook.")
    return rows[0][0]


async def delete_webhook(session: AsyncSession, principal: Principal, raw_id: str) -> None:
    """Gone at once, with its deliveries (pending ones are never sent)."""
    deleted = await session.scalar(
        sa.delete(WEBHOOKS)
        .where(WEBHOOKS.c.id == parse_object_id(raw_id), WEBHOOKS.c.user_id == principal.user_id)
        .returning(WEBHOOKS.c.id)
    )
    if deleted is None:
        raise NotFound("No such webhook.")
    await session.execute(
        sa.delete(DELIVERIES).where(
            DELIVERIES.c.user_id == principal.user_id, DELIVERIES.c.webhook_id == deleted
        )
    )


async def list_deliveries(
    session: AsyncSession, principal: Principal, raw_id: str, limit: int, cursor: str | None
) -> tuple[list[DeliveryOut], str | None]:
    """A webhook's deliveries, newest first (the deliveries of one commit share their
    ``created_at``; their ids order them among themselves), through the owner's index. The
    events waiting for the worker are fanned out first, so every change committed before the
    request is listed."""
    webhook_id = await _own_webhook(session, principal, raw_id)
    await fan_out_all()
    query = sa.select(*_DELIVERY).where(
        DELIVERIES.c.user_id == principal.user_id, DELIVERIES.c.webhook_id == webhook_id
    )
    if cursor:
        after_at, after_id = decode_cursor(cursor, dt.datetime, uuid.UUID)
        query = query.where(
            sa.tuple_(DELIVERIES.c.created_at, DELIVERIES.c.id) < (after_at, after_id)
        )
    order = (DELIVERIES.c.created_at.desc(), DELIVERIES.c.id.desc())
    rows = (await session.execute(query.order_by(*order).limit(limit + 1))).all()
    items = [_delivery(row) for row in rows[:limit]]
    if len(rows) <= limit:
        return items, None
    return items, encode_cursor(items[-1].created_at, items[-1].id)


def _delivery(row: Any) -> DeliveryOut:
    values = row._asdict()
    if values["status"] != "pending":
        values["next_attempt_at"] = None
    return DeliveryOut.model_validate(values)
