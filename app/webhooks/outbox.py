"""The outbox: one row per event, written just before its transaction's COMMIT.

A rolled-back change leaves no event; a committed one has its event committed with it, so a
crash right after the commit still delivers (the worker finds it on restart). The delivery
worker turns each event into one delivery per subscribed webhook (``app.webhooks.fanout``),
applying the audience rule (``app.webhooks.repository``) as of the event's ``created_at``.

Cost, the point of this module: the hottest write (a goal created) must stay fast with webhooks
(a ``make bench`` target compares creates with ten webhooks and without). Writing the ten
deliveries in the change's own transaction (ten rows, thirty index entries) missed it, so it is
now done by the worker, many events per transaction; the change
writes one ``webhook_events`` row, whose only index is its rowid, and only when someone
listens, and a create costs about the same CPU with webhooks as without (bench/README.md,
"Figures behind the code's comments"). On PostgreSQL a new goal's event rides in the
goal's own INSERT (``event_cte`` of ``app.webhooks.repository``); other events take the
before-commit hook, one INSERT ... SELECT whose WHERE is the audience rule. On SQLite the
hook first asks whether anyone listens at all (sparing the documents), and writes inline on
the transaction's connection (``app.core.sqlite_inline``). The event's body (``{id, type,
created_at, data}``, ``id`` being the event's, the same for every subscriber) is rendered
once per event.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import orjson

from app.core.clock import utcnow
from app.core.http import dumps
from app.core.unit_of_work import BeforeCommit, CommitContext
from app.core.wakeups import CommitWakeup
from app.models import new_id
from app.webhooks import repository
from app.webhooks.events import PENDING_EVENTS, Event

# Delivery workers of this process, woken when a commit wrote events (see worker.py).
DELIVERY_WAKEUP = CommitWakeup("webhook_events_written")


def cte_parameters(session: Any, event: Event, document: dict[str, Any], at: Any) -> dict[str, Any]:
    """The parameters of ``event_cte`` for ``event``; the commit wakes this process's delivery
    workers (a row or not: a wake that finds nothing costs one small read)."""
    DELIVERY_WAKEUP.note(session)
    return {
        "outbox_event": event.type,
        "outbox_body": delivery_body(new_id(), event, dumps(document), at),
        "outbox_client": event.client_id,
        "outbox_shared": event.shared,
        "outbox_author": event.author_id,
        "outbox_at": at,
    }


def delivery_body(event_id: uuid.UUID, event: Event, data: bytes, at: Any) -> str:
    return dumps(
        {"id": event_id, "type": event.type, "created_at": at, "data": orjson.Fragment(data)}
    ).decode()


# Renders the live objects of one type by id as their GET does (``app.resources.load_documents``,
# handed over by ``app.wiring``: the domains record events here, so this package cannot import
# the module that imports every domain).
DocumentLoader = Callable[
    [Any, str, Collection[uuid.UUID]], Awaitable[dict[uuid.UUID, dict[str, Any]]]
]


async def _documents(
    session: Any, events: list[Event], load_documents: DocumentLoader
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


def outbox_writer(load_documents: DocumentLoader) -> BeforeCommit:
    """The before-commit hook (``app.wiring.BEFORE_COMMIT``) that writes the outbox, the events'
    data rendered by ``load_documents`` when the service did not hand it over."""

    async def write_webhook_outbox(context: CommitContext) -> None:
        await write_outbox(context, load_documents)

    return write_webhook_outbox


async def write_outbox(context: CommitContext, load_documents: DocumentLoader) -> None:
    """One row per event someone listens to."""
    session = context.session
    events: list[Event] | None = session.info.pop(PENDING_EVENTS, None)
    if not events:
        return
    client_ids = list({e.client_id for e in events})
    loading = any(e.data is None for e in events)
    if not await repository.anyone_listens(session, client_ids, worth_asking=loading):
        return  # spare loading the documents (and on SQLite the INSERT)
    documents = await _documents(session, events, load_documents)
    now = utcnow()
    rows = []
    for event in events:
        document = documents.get((event.object_type, event.object_id))
        if document is None:  # gone again within the same transaction: nothing to tell
            continue
        rows.append(
            {
                "event": event.type,
                "body": delivery_body(new_id(), event, dumps(document), now),
                "client_id": event.client_id,
                "shared": event.shared,
                "author_id": event.author_id,
                "created_at": now,
            }
        )
    if not rows:
        return
    if await repository.insert_events(session, rows, now):
        DELIVERY_WAKEUP.note(session)
