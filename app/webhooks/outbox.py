"""The outbox: one row per event, written just before its transaction's COMMIT.

A rolled-back change leaves no event; a committed one has its event committed with it, so a
crash right after the commit still delivers (the worker finds it on restart). The delivery
worker turns each event into one delivery per subscribed webhook (``app.webhooks.fanout``),
applying the subscriber rule as of the event's ``created_at``.

Cost, the point of this module: the hottest write (a goal created) must stay fast with webhooks
(``make bench``: create rps with 10 webhooks >= 0.9 x without). Writing the ten deliveries in
the change's own transaction (ten rows, thirty index entries: 0.72-0.92 of the plain create
over the runs of one day) is now done by the worker, many events per transaction; the change
writes one ``webhook_events`` row, whose only index is its rowid, and only when someone
listens. In-process CPU per create, plain / with 10 webhooks: 1.03 on SQLite, 1.00 on
PostgreSQL (30 interleaved blocks of 100). On PostgreSQL a new goal's event rides in the
goal's own INSERT (``event_cte``, see ``app.goals.repository``); other events take the
before-commit hook, one INSERT ... SELECT whose WHERE is the subscriber rule. On SQLite the
hook first asks whether anyone listens at all (sparing the documents), and writes inline on
the transaction's connection (``app.core.sqlite_inline``). The event's body (``{id, type,
created_at, data}``, ``id`` being the event's, the same for every subscriber) is rendered
once per event.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.http import dumps
from app.core.reads import fetch_rows
from app.core.sqlite_inline import sqlite_inline, sqlite_transaction_connection, sqlite_value
from app.core.unit_of_work import BeforeCommit, CommitContext
from app.models import CareLink, Webhook, WebhookEvent, new_id
from app.webhooks.events import PENDING_EVENTS, Event

EVENTS = WebhookEvent.__table__
WEBHOOKS = Webhook.__table__
LINKS = CareLink.__table__
_WROTE = "waypoint.webhook_events_written"
_EVENT_COLUMNS = ("event", "body", "client_id", "shared", "author_id", "created_at")


def _listens(event: Any, client: Any, shared: Any, author: Any) -> sa.ColumnElement[bool]:
    """Does an active webhook want ``event`` about ``client``'s object now: the client's own,
    or a linked therapist's when the object is ``shared`` or theirs (``author``). The
    delivery rule (``app.webhooks.fanout``) is the same, as of the event's time."""
    wants = WEBHOOKS.c.events.op("?")(event)
    own = sa.exists().where(WEBHOOKS.c.user_id == client, WEBHOOKS.c.active, wants)
    linked = sa.exists().where(
        WEBHOOKS.c.user_id == LINKS.c.therapist_id,
        LINKS.c.client_id == client,
        LINKS.c.ended_at.is_(None),
        WEBHOOKS.c.active,
        wants,
        sa.or_(shared, WEBHOOKS.c.user_id == author),
    )
    return sa.or_(own, linked)


def event_cte() -> sa.CTE:
    """PostgreSQL: a new goal's event as a data-modifying CTE, to ride along with the goal's
    own INSERT (no round trip of its own on the hottest write), written only when someone
    listens. Parameters ``outbox_event``, ``outbox_body``, ``outbox_client``,
    ``outbox_shared``, ``outbox_author`` and ``outbox_at``."""
    values = {
        "event": sa.bindparam("outbox_event", type_=sa.String()),
        "body": sa.bindparam("outbox_body", type_=sa.Text()),
        "client_id": sa.bindparam("outbox_client", type_=sa.Uuid()),
        "shared": sa.bindparam("outbox_shared", type_=sa.Boolean()),
        "author_id": sa.bindparam("outbox_author", type_=sa.Uuid()),
        "created_at": sa.bindparam("outbox_at", type_=EVENTS.c.created_at.type),
    }
    rule = _listens(values["event"], values["client_id"], values["shared"], values["author_id"])
    row = sa.select(*(value.label(name) for name, value in values.items())).where(rule)
    return sa.insert(EVENTS).from_select(list(values), row).cte("announced")


def cte_parameters(session: Any, event: Event, document: dict[str, Any], at: Any) -> dict[str, Any]:
    """The parameters of ``event_cte`` for ``event``; the commit wakes this process's delivery
    workers (a row or not: a wake that finds nothing costs one small read)."""
    session.info[_WROTE] = True
    return {
        "outbox_event": event.type,
        "outbox_body": delivery_body(new_id(), event, dumps(document), at),
        "outbox_client": event.client_id,
        "outbox_shared": event.shared,
        "outbox_author": event.author_id,
        "outbox_at": at,
    }


# PostgreSQL, the before-commit hook: the events as arrays, one statement, each written when
# someone listens to it (``_listens``).
_ARRAYED = _EVENT_COLUMNS[:-1]  # one array each; ``created_at`` is the commit's ``now``
_ARRAYS = (
    sa.func.unnest(
        *(sa.cast(sa.bindparam(name), postgresql.ARRAY(EVENTS.c[name].type)) for name in _ARRAYED)
    )
    .table_valued(*_ARRAYED)
    .render_derived(name="e")
)
_POSTGRES = sa.insert(EVENTS).from_select(
    list(_EVENT_COLUMNS),
    sa.select(
        *(_ARRAYS.c[name] for name in _ARRAYED),
        sa.bindparam("now", type_=EVENTS.c.created_at.type),
    ).where(_listens(_ARRAYS.c.event, _ARRAYS.c.client_id, _ARRAYS.c.shared, _ARRAYS.c.author_id)),
)
_SQLITE = (
    f"INSERT INTO webhook_events ({', '.join(_EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_EVENT_COLUMNS))})"
)

# Does anyone listen to these clients at all? Most writes have no subscriber: the check spares
# the loading of documents (and on SQLite the INSERT).
_CLIENTS = sa.bindparam("client_ids", expanding=True)
_ANYONE_LISTENS = sa.select(
    sa.or_(
        sa.exists().where(WEBHOOKS.c.user_id.in_(_CLIENTS), WEBHOOKS.c.active),
        sa.exists().where(
            WEBHOOKS.c.user_id == LINKS.c.therapist_id,
            LINKS.c.client_id.in_(_CLIENTS),
            LINKS.c.ended_at.is_(None),
            WEBHOOKS.c.active,
        ),
    )
)


async def _anyone_listens(session: Any, events: list[Event]) -> bool:
    client_ids = list({e.client_id for e in events})
    return bool((await fetch_rows(session, _ANYONE_LISTENS, {"client_ids": client_ids}))[0][0])


def _anyone_listens_sqlite(db: sqlite3.Connection, client_ids: list[uuid.UUID]) -> bool:
    """``_ANYONE_LISTENS`` at the driver, in the transaction."""
    marks = ", ".join("?" * len(client_ids))
    sql = (
        f"SELECT EXISTS (SELECT 1 FROM webhooks WHERE user_id IN ({marks}) AND active) "
        "OR EXISTS (SELECT 1 FROM care_links AS l JOIN webhooks AS w "
        f"ON w.user_id = l.therapist_id WHERE l.client_id IN ({marks}) "
        "AND l.ended_at IS NULL AND w.active)"
    )
    ids = [sqlite_value(client_id) for client_id in client_ids]
    return bool(sqlite_inline(db, sql, tuple(ids + ids)).fetchone()[0])


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
    db = (
        await sqlite_transaction_connection(session)
        if session.bind.dialect.name == "sqlite"
        else None
    )
    if db is not None:
        if not _anyone_listens_sqlite(db, list({e.client_id for e in events})):
            return
    elif any(e.data is None for e in events) and not await _anyone_listens(session, events):
        return  # spare loading the documents
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
    if db is not None:
        params = [tuple(sqlite_value(row[name]) for name in _EVENT_COLUMNS) for row in rows]
        written = sqlite_inline(db, _SQLITE, params).rowcount
    else:
        arrays = {name: [row[name] for row in rows] for name in _ARRAYED}
        connection = await session.connection()
        written = (await connection.execute(_POSTGRES, {"now": now, **arrays})).rowcount
    if written:
        session.info[_WROTE] = True


# Delivery workers of this process, woken when a commit wrote deliveries (see worker.py).
_wake: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()


def register_waker(loop: asyncio.AbstractEventLoop, wakeup: asyncio.Event) -> None:
    _wake.add((loop, wakeup))


def unregister_waker(loop: asyncio.AbstractEventLoop, wakeup: asyncio.Event) -> None:
    _wake.discard((loop, wakeup))


def wake_delivery_workers(session: Session) -> None:
    """Session listener after each commit (``app.wiring.SESSION_LISTENERS``): a commit that
    wrote deliveries wakes this process's delivery workers."""
    if session.info.pop(_WROTE, False):
        for loop, wakeup in list(_wake):
            loop.call_soon_threadsafe(wakeup.set)


def forget_written_deliveries(session: Session) -> None:
    """Session listener after each rollback (``app.wiring.SESSION_LISTENERS``): what was rolled
    back wakes no one."""
    session.info.pop(_WROTE, None)
