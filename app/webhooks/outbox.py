"""The outbox: the deliveries of a transaction's events, written just before its COMMIT.

A rolled-back change leaves no delivery; a committed one has its deliveries committed with it,
so a crash right after the commit still delivers (the worker finds them on restart). Cost per
commit with events: one SELECT of the subscribed webhooks (none: nothing more) and one
multi-row INSERT; each event's document is serialized once, whatever the number of webhooks.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from app.core.db import utcnow
from app.core.http import dumps
from app.core.unit_of_work import CommitContext
from app.models import CareLink, Webhook, WebhookDelivery, new_id
from app.resources import load_documents
from app.webhooks.events import PENDING_EVENTS, Event

WEBHOOKS = Webhook.__table__
LINKS = CareLink.__table__
DELIVERIES = WebhookDelivery.__table__
_WROTE = "waypoint.webhook_deliveries_written"

# The active webhooks of the clients concerned (``linked_client`` = the owner) and of the
# therapists linked to them right now (``linked_client`` = that client).
_CLIENTS = sa.bindparam("client_ids", expanding=True)
_SUBSCRIBERS = sa.union_all(
    sa.select(
        WEBHOOKS.c.id,
        WEBHOOKS.c.user_id,
        WEBHOOKS.c.events,
        WEBHOOKS.c.user_id.label("linked_client"),
    ).where(WEBHOOKS.c.active, WEBHOOKS.c.user_id.in_(_CLIENTS)),
    sa.select(WEBHOOKS.c.id, WEBHOOKS.c.user_id, WEBHOOKS.c.events, LINKS.c.client_id)
    .join(LINKS, LINKS.c.therapist_id == WEBHOOKS.c.user_id)
    .where(WEBHOOKS.c.active, LINKS.c.ended_at.is_(None), LINKS.c.client_id.in_(_CLIENTS)),
)


def hears(event: Event, user_id: uuid.UUID, linked_client: uuid.UUID) -> bool:
    """May this subscriber see the event's object now? The client always; a linked therapist
    when the object is on a shared goal, or when they wrote it."""
    if user_id == event.client_id:
        return True
    if linked_client != event.client_id:
        return False
    return event.shared or (event.author_id is not None and user_id == event.author_id)


def wanted_by(subscriber: Any, event: Event) -> bool:
    return event.type in subscriber.events and hears(
        event, subscriber.user_id, subscriber.linked_client
    )


async def _documents(
    session: Any, events: list[Event]
) -> dict[tuple[str, uuid.UUID], dict[str, Any]]:
    """Each event's ``data``: handed over by the service, else as the object's GET renders it
    now (one query per object type)."""
    found = {(e.object_type, e.object_id): e.data for e in events if e.data is not None}
    missing: dict[str, set[uuid.UUID]] = {}
    for e in events:
        if e.data is None:
            missing.setdefault(e.object_type, set()).add(e.object_id)
    for object_type, ids in missing.items():
        loaded = await load_documents(session, object_type, ids)
        found.update(((object_type, object_id), doc) for object_id, doc in loaded.items())
    return found


def delivery_body(delivery_id: uuid.UUID, event: Event, data: bytes, at: Any) -> str:
    return dumps(
        {"id": delivery_id, "type": event.type, "created_at": at, "data": orjson.Fragment(data)}
    ).decode()


async def write_outbox(context: CommitContext) -> None:
    """Before-commit hook (``app.commit_hooks``): one delivery per event and subscriber."""
    session = context.session
    events: list[Event] | None = session.info.pop(PENDING_EVENTS, None)
    if not events:
        return
    client_ids = list({e.client_id for e in events})
    connection = await session.connection()
    subscribers = (await connection.execute(_SUBSCRIBERS, {"client_ids": client_ids})).all()
    if not subscribers:
        return
    heard = [(event, [row.id for row in subscribers if wanted_by(row, event)]) for event in events]
    heard = [(event, hooks) for event, hooks in heard if hooks]
    if not heard:
        return
    documents = await _documents(session, [event for event, _ in heard])
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for event, webhook_ids in heard:
        document = documents.get((event.object_type, event.object_id))
        if document is None:  # gone again within the same transaction: nothing to tell
            continue
        data = dumps(document)  # once per event, whatever the number of webhooks
        for webhook_id in webhook_ids:
            delivery_id = new_id()
            rows.append(
                {
                    "id": delivery_id,
                    "webhook_id": webhook_id,
                    "event": event.type,
                    "body": delivery_body(delivery_id, event, data, now),
                    "status": "pending",
                    "attempts": 0,
                    "last_status_code": None,
                    "last_error": None,
                    "next_attempt_at": now,
                    "delivered_at": None,
                    "created_at": now,
                }
            )
    if rows:
        await connection.execute(sa.insert(DELIVERIES).values(rows))
        session.info[_WROTE] = True


# Delivery workers of this process, woken when a commit wrote deliveries (see worker.py).
_wake: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()


def register_waker(loop: asyncio.AbstractEventLoop, wakeup: asyncio.Event) -> None:
    _wake.add((loop, wakeup))


def unregister_waker(loop: asyncio.AbstractEventLoop, wakeup: asyncio.Event) -> None:
    _wake.discard((loop, wakeup))


@sa_event.listens_for(Session, "after_commit")
def _wake_workers(session: Session) -> None:
    if session.info.pop(_WROTE, False):
        for loop, wakeup in list(_wake):
            loop.call_soon_threadsafe(wakeup.set)


@sa_event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_WROTE, None)
