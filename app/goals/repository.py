"""The goal statements whose fastest form differs by database, each behind one name, so the
goal services never ask which database they run on: the create (with its change row and
webhook event) and the list page (``GET /v1/goals``, see ``app.goals.listing``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from app.changes.repository import client_lock_key, with_goal_change
from app.changes.service import record_change
from app.core.columns import UTCDateTime
from app.core.reads import fetch_page, fetch_rows
from app.goals.access import goals_readable_by
from app.goals.documents import goal_document_column
from app.models import Goal, User
from app.webhooks import outbox
from app.webhooks.events import Event, record
from app.webhooks.repository import event_cte

GOALS = Goal.__table__
_INSERT = sa.insert(GOALS)


@lru_cache(maxsize=8)
def _insert_with_change(columns: tuple[str, ...], announce: bool) -> sa.Insert:
    """Built once per set of columns a service writes (and whether it announces the goal)."""
    values = {name: sa.bindparam(name, type_=GOALS.c[name].type) for name in columns}
    statement = with_goal_change(sa.insert(GOALS).values(values))
    return statement.add_cte(event_cte()) if announce else statement


_CLIENT_TIMEZONE = sa.select(User.__table__.c.timezone).where(
    User.__table__.c.id == sa.bindparam("client_id", type_=User.__table__.c.id.type)
)


async def insert_goal_with_change(
    session: AsyncSession, row: dict[str, Any], announce: Event | None = None
) -> None:
    """A new goal (``row``: its column values), its ``upsert`` change and, when ``announce``
    is given, its webhook event.

    PostgreSQL: one statement, one round trip fewer on the hottest write (bench/README.md,
    "Figures behind the code's comments"); the change row is written under the
    client's lock exactly as the before-commit hook writes it, and the webhook event is written
    by the same statement (``app.webhooks.repository.event_cte``). SQLite: the INSERT; the
    change row and the event go with the others before COMMIT."""
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        params = {**row, "change_lock": client_lock_key(row["client_id"])}
        params["change_at"] = row["created_at"]
        if announce is not None:
            assert announce.data is not None
            params |= outbox.cte_parameters(session, announce, announce.data, row["created_at"])
        await connection.execute(_insert_with_change(tuple(row), announce is not None), params)
        return
    await connection.execute(_INSERT, row)
    if announce is not None:
        record(session, announce)
    record_change(
        session,
        client_id=row["client_id"],
        object_type="goal",
        object_id=row["id"],
        op="upsert",
        goal_id=row["id"],
        shared=row["visibility"] == "shared",
    )


async def client_timezone(session: AsyncSession, client_id: uuid.UUID) -> str | None:
    """The client's timezone, read on the request's connection once it has one (it may have
    written the client itself: seed-demo does), else before the write transaction starts:
    on SQLite that keeps the read out of the time the write lock is held."""
    params = {"client_id": client_id}
    if session.in_transaction():
        return await (await session.connection()).scalar(_CLIENT_TIMEZONE, params)
    return next(iter(await fetch_rows(session, _CLIENT_TIMEZONE, params)), (None,))[0]


def _raw(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """The column as the driver returns it (no type processing per row)."""
    return sa.type_coerce(column, sa.String()).label(f"raw_{column.key}")


class PageShape(NamedTuple):
    """What a list query filters on (its values are bound per request)."""

    is_client: bool
    by_client: bool
    by_status: bool
    by_external_id: bool
    since: bool
    after: bool


@lru_cache(maxsize=128)
def list_statement(
    dialect: str,
    is_client: bool,
    by_client: bool,
    by_status: bool,
    by_external_id: bool,
    since: bool,
    after: bool,
) -> sa.Select[Any]:
    """One statement per shape of the query; values are bound per request."""
    keys = (_raw(GOALS.c.id), _raw(GOALS.c.client_id), _raw(GOALS.c.updated_at))
    document = goal_document_column(dialect)
    query = sa.select(document.label("doc"), *keys)
    caller = sa.bindparam("caller", type_=GOALS.c.id.type)
    query = query.where(goals_readable_by(is_client, caller))
    if by_client:
        query = query.where(GOALS.c.client_id == sa.bindparam("client_id"))
    if by_status:
        query = query.where(GOALS.c.status == sa.bindparam("status"))
    if by_external_id:
        query = query.where(GOALS.c.external_id == sa.bindparam("external_id"))
    if since:
        query = query.where(GOALS.c.updated_at >= sa.bindparam("since", type_=UTCDateTime()))
    if after:
        query = query.where(
            sa.tuple_(GOALS.c.updated_at, GOALS.c.id)
            < sa.tuple_(
                sa.bindparam("after_updated_at", type_=UTCDateTime()),
                sa.bindparam("after_id", type_=GOALS.c.id.type),
            )
        )
    query = query.order_by(GOALS.c.updated_at.desc(), GOALS.c.id.desc()).limit(
        sa.bindparam("limit", type_=sa.Integer())
    )
    return query if dialect == "sqlite" else _one_row_page(query, is_client)


def _one_row_page(rows: sa.Select[Any], is_client: bool) -> sa.Select[Any]:
    """PostgreSQL: the page as one row, aggregated after the last goal is rendered.

    Rows are sent as they are produced, so a page of rows reaches the server in several pieces
    spread over the query's time, and the driver wakes up for each: one row costs the server
    far less CPU (bench/README.md, "Figures behind the code's comments"). Of the ``limit``
    (page size + 1) rows matched, the row holds the page's documents joined, how many matched,
    the page's last keys (for the next cursor) and, for a therapist, the page's
    ``client_id:id`` pairs (for the access log)."""
    page = rows.subquery("page")
    order = (page.c.raw_updated_at.desc(), page.c.raw_id.desc())
    position = sa.func.row_number().over(order_by=order)
    numbered = sa.select(page, position.label("n")).subquery("numbered")
    limit = sa.bindparam("limit", type_=sa.Integer())
    on_page, last = numbered.c.n < limit, numbered.c.n == limit - 1
    as_text = sa.Text()
    columns = [
        sa.func.string_agg(numbered.c.doc, aggregate_order_by(sa.literal(","), numbered.c.n))
        .filter(on_page)
        .label("docs"),
        sa.func.count().label("matched"),
        sa.func.max(numbered.c.raw_updated_at).filter(last).label("last_at"),
        sa.func.max(sa.cast(numbered.c.raw_id, as_text)).filter(last).label("last_id"),
    ]
    if not is_client:
        client, goal = (sa.cast(c, as_text) for c in (numbered.c.raw_client_id, numbered.c.raw_id))
        pair = client + ":" + goal
        columns.append(sa.func.string_agg(pair, sa.literal(",")).filter(on_page).label("pairs"))
    return sa.select(*columns)


Keys = tuple[Any, Any]


def _page_of_rows(
    rows: Sequence[Sequence[Any]], limit: int, with_pairs: bool
) -> tuple[str, Keys | None, list[Keys]]:
    """SQLite: one row per goal (document, id, client_id, updated_at), ``limit + 1`` at most."""
    more = len(rows) > limit
    rows = rows[:limit]
    last = (rows[-1][3], rows[-1][1]) if more else None
    pairs = [(row[2], row[1]) for row in rows] if with_pairs else []
    return ",".join([row[0] for row in rows]), last, pairs


def _page_of_one_row(row: Sequence[Any], limit: int) -> tuple[str, Keys | None, list[Keys]]:
    """PostgreSQL: the page aggregated into one row (see ``_one_row_page``)."""
    docs, matched, last_at, last_id, *therapist = row
    last = (last_at, last_id) if matched > limit else None
    joined = therapist[0] if therapist else None
    pairs = [tuple(pair.split(":")) for pair in joined.split(",")] if joined else []
    return docs or "", last, pairs  # type: ignore[return-value]


async def goal_page(
    session: AsyncSession, shape: PageShape, params: dict[str, Any], limit: int, with_pairs: bool
) -> tuple[str, Keys | None, list[Keys]]:
    """A page of the goals list: the documents' JSON joined, the last ``(updated_at, id)``
    when more match, and (for a therapist) the page's ``(client_id, id)`` pairs. SQLite
    answers one row per goal, PostgreSQL one row for the page (``_one_row_page``)."""
    dialect = session.bind.dialect.name
    found = await fetch_page(session, list_statement(dialect, *shape), params)
    if dialect == "sqlite":
        return _page_of_rows(found, limit, with_pairs)
    return _page_of_one_row(found[0], limit)
