"""The statements of the outbox and of the fan-out, SQLite's and PostgreSQL's forms side by side.

Who listens (the *audience rule*, said here once): an event about a client's object is heard by
the client's own active webhooks subscribed to its type, and by the active, subscribed webhooks
of the therapists linked to the client, when the object is on a shared goal or is theirs
(``shared``, ``author_id``). ``_audience`` builds it; the outbox applies it as the change
commits (an event is written only when someone listens), the fan-out as of the event's
``created_at`` (the links and webhooks that existed then: a webhook created later never hears
of it). Two forms are SQL text kept beside the builder, because they are the hot paths'
statements as the driver takes them: SQLite's "does anyone listen at all" asked inline on the
transaction's connection, and the fan-out's INSERT ... SELECT, whose "subscribed" test differs
by database (``_WANTS``). A test compares each form with the builder's answer.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.reads import fetch_rows
from app.core.sqlite_inline import sqlite_inline, sqlite_transaction_connection, sqlite_value
from app.models import CareLink, Webhook, WebhookDelivery, WebhookEvent

EVENTS = WebhookEvent.__table__
WEBHOOKS = Webhook.__table__
LINKS = CareLink.__table__
DELIVERIES = WebhookDelivery.__table__
EVENT_COLUMNS = ("event", "body", "client_id", "shared", "author_id", "created_at")


def _audience(
    of_client: Any, linked_to: Any, *, event: Any = None, shared: Any = None, author: Any = None
) -> sa.ColumnElement[bool]:
    """The audience rule on the webhooks and care links as they are now: ``of_client(column)``
    and ``linked_to(column)`` say which client; without ``event`` any type counts, without
    ``shared`` any object does."""
    wants = [WEBHOOKS.c.events.op("?")(event)] if event is not None else []
    own = sa.exists().where(of_client(WEBHOOKS.c.user_id), WEBHOOKS.c.active, *wants)
    theirs = [sa.or_(shared, WEBHOOKS.c.user_id == author)] if shared is not None else []
    linked = sa.exists().where(
        WEBHOOKS.c.user_id == LINKS.c.therapist_id,
        linked_to(LINKS.c.client_id),
        LINKS.c.ended_at.is_(None),
        WEBHOOKS.c.active,
        *wants,
        *theirs,
    )
    return sa.or_(own, linked)


def _listens(event: Any, client: Any, shared: Any, author: Any) -> sa.ColumnElement[bool]:
    """Does an active webhook want ``event`` about ``client``'s object now."""

    def of_client(column: Any) -> Any:
        return column == client

    return _audience(of_client, of_client, event=event, shared=shared, author=author)


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


# PostgreSQL, the before-commit hook: the events as arrays, one statement, each written when
# someone listens to it.
_ARRAYED = EVENT_COLUMNS[:-1]  # one array each; ``created_at`` is the commit's ``now``
_ARRAYS = (
    sa.func.unnest(
        *(sa.cast(sa.bindparam(name), postgresql.ARRAY(EVENTS.c[name].type)) for name in _ARRAYED)
    )
    .table_valued(*_ARRAYED)
    .render_derived(name="e")
)
_PG_INSERT_EVENTS = sa.insert(EVENTS).from_select(
    list(EVENT_COLUMNS),
    sa.select(
        *(_ARRAYS.c[name] for name in _ARRAYED),
        sa.bindparam("now", type_=EVENTS.c.created_at.type),
    ).where(_listens(_ARRAYS.c.event, _ARRAYS.c.client_id, _ARRAYS.c.shared, _ARRAYS.c.author_id)),
)
# SQLite: the rows as given (the hook asked first whether anyone listens at all).
_SQLITE_INSERT_EVENTS = (
    f"INSERT INTO webhook_events ({', '.join(EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
)

# Does anyone listen to these clients at all (any type, any object)? Most writes have no
# subscriber: asking spares the loading of documents (and on SQLite the INSERT).
_CLIENTS = sa.bindparam("client_ids", expanding=True)
_ANYONE_LISTENS = sa.select(_audience(lambda c: c.in_(_CLIENTS), lambda c: c.in_(_CLIENTS)))
# The same question as SQLite's driver takes it, ``{marks}`` being one ``?`` per client.
_SQLITE_ANYONE_LISTENS = (
    "SELECT EXISTS (SELECT 1 FROM webhooks WHERE user_id IN ({marks}) AND active) "
    "OR EXISTS (SELECT 1 FROM care_links AS l JOIN webhooks AS w "
    "ON w.user_id = l.therapist_id WHERE l.client_id IN ({marks}) "
    "AND l.ended_at IS NULL AND w.active)"
)


def _sqlite(session: AsyncSession) -> bool:
    return session.bind.dialect.name == "sqlite"


async def anyone_listens(
    session: AsyncSession, client_ids: list[uuid.UUID], *, worth_asking: bool
) -> bool:
    """False when no active webhook of these clients or of their linked therapists exists.
    SQLite always asks, inline in the transaction (cheaper than the INSERT it spares);
    PostgreSQL only when ``worth_asking`` (documents would be loaded for nothing), since its
    INSERT applies the whole rule itself."""
    if _sqlite(session):
        db = await sqlite_transaction_connection(session)
        sql = _SQLITE_ANYONE_LISTENS.format(marks=", ".join("?" * len(client_ids)))
        ids = [sqlite_value(client_id) for client_id in client_ids]
        return bool(sqlite_inline(db, sql, tuple(ids + ids)).fetchone()[0])
    if not worth_asking:
        return True
    return bool((await fetch_rows(session, _ANYONE_LISTENS, {"client_ids": client_ids}))[0][0])


async def insert_events(session: AsyncSession, rows: list[dict[str, Any]], now: Any) -> int:
    """The events (dicts keyed by ``EVENT_COLUMNS``, ``created_at`` being ``now``); on
    PostgreSQL only those someone listens to. The driver's row count: 0 when none was
    written (psycopg may answer -1, "not known", for an INSERT ... SELECT)."""
    if _sqlite(session):
        db = await sqlite_transaction_connection(session)
        params = [tuple(sqlite_value(row[name]) for name in EVENT_COLUMNS) for row in rows]
        return sqlite_inline(db, _SQLITE_INSERT_EVENTS, params).rowcount
    arrays = {name: [row[name] for row in rows] for name in _ARRAYED}
    connection = await session.connection()
    return (await connection.execute(_PG_INSERT_EVENTS, {"now": now, **arrays})).rowcount


# The fan-out: the audience rule as of each event's time, over the events ``e`` of the batch
# (``:seqs``); ``{wants}``: the webhook subscribed to the event type.
_HEARD = "w.id AS webhook_id, w.user_id AS owner_id, e.client_id, e.event, e.body, e.created_at"
_ARMS = (
    f"SELECT {_HEARD} FROM webhook_events e JOIN webhooks w ON w.user_id = e.client_id "
    "WHERE e.seq IN :seqs AND w.active AND {wants} AND w.created_at <= e.created_at "
    "UNION ALL "
    f"SELECT {_HEARD} FROM webhook_events e "
    "JOIN care_links l ON l.client_id = e.client_id AND l.created_at <= e.created_at "
    "AND (l.ended_at IS NULL OR l.ended_at > e.created_at) "
    "JOIN webhooks w ON w.user_id = l.therapist_id "
    "WHERE e.seq IN :seqs AND w.active AND {wants} AND w.created_at <= e.created_at "
    "AND (e.shared OR w.user_id = e.author_id) "
    # A lagging alert is pending until fanned out: a therapist whose link has ended since
    # no longer hears it (docs/reminders.md).
    "AND (l.ended_at IS NULL OR e.event <> 'goal.lagging')"
)
_WANTS = {
    "postgresql": "w.events ? e.event",
    "sqlite": "instr(w.events, json_quote(e.event)) > 0",
}
_DELIVERY_COLUMNS = (
    "id, webhook_id, user_id, client_id, event, body, status, attempts, next_attempt_at, created_at"
)
# A delivery's id: a UUIDv7 of the fan-out up to its last 48 bits, then 48 random bits per
# delivery (time first, random after: a batch's deliveries land side by side at the end of the
# primary key's index).
_IDS = {
    "postgresql": "CAST(:id_prefix || right(replace(gen_random_uuid()::text, '-', ''), 12) "
    "AS uuid)",
    "sqlite": ":id_prefix || lower(hex(randomblob(6)))",
}


@lru_cache(maxsize=2)
def _insert_deliveries(dialect: str) -> sa.TextClause:
    return sa.text(
        f"INSERT INTO webhook_deliveries ({_DELIVERY_COLUMNS}) "
        f"SELECT {_IDS[dialect]}, s.webhook_id, s.owner_id, s.client_id, s.event, s.body, "
        "'pending', 0, "
        f"s.created_at, s.created_at FROM ({_ARMS.format(wants=_WANTS[dialect])}) AS s"
    ).bindparams(sa.bindparam("seqs", expanding=True))


_TAKE = sa.select(EVENTS.c.seq).order_by(EVENTS.c.seq).limit(sa.bindparam("batch"))
_DELETE = sa.delete(EVENTS).where(EVENTS.c.seq.in_(sa.bindparam("seqs", expanding=True)))
_ANY = sa.select(EVENTS.c.seq).limit(1)


async def any_event(session: AsyncSession) -> bool:
    return (await session.execute(_ANY)).first() is not None


async def take_events(session: AsyncSession, batch: int, *, wait: bool) -> list[int]:
    """The ``seq`` of the oldest events, ``batch`` at most. PostgreSQL locks them: skipping
    the ones another worker holds, or waiting for them when ``wait``; SQLite has no such
    clause (its writers take turns), SQLAlchemy leaves it out there."""
    take = _TAKE.with_for_update(skip_locked=not wait)
    return list((await session.execute(take, {"batch": batch})).scalars())


async def insert_deliveries(session: AsyncSession, seqs: list[int], id_prefix: str) -> int:
    """The deliveries of the events ``seqs``, one per webhook that hears each; how many."""
    statement = _insert_deliveries(session.bind.dialect.name)
    return (await session.execute(statement, {"seqs": seqs, "id_prefix": id_prefix})).rowcount


async def delete_events(session: AsyncSession, seqs: list[int]) -> None:
    await session.execute(_DELETE, {"seqs": seqs})
