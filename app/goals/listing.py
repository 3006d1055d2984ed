"""``GET /v1/goals``, the hot path: one SELECT per page, built once per query shape, with the
caller and the filters bound per request; no ORM objects and no per-row Python work that the
database can do. On PostgreSQL that SELECT answers with one row for the whole page.

The database renders each goal's JSON itself (SQLite ``json_object``, PostgreSQL
``json_build_object`` cast to text), so a page is the rows' text joined: no per-row Python.
Either way the SQL is generated from the goal's declaration (``GOAL``) by
``app.core.document_sql`` (the sync feed uses the same generator), and the JSON is the
one ``goal_document`` gives for a single goal (a test compares them field by field): uuids
lower-case with dashes, dates ``YYYY-MM-DD``, timestamps RFC 3339 UTC with ``Z`` and
microseconds only when there are any (as orjson writes them).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from app.accesslog.service import record_reads
from app.auth.dependencies import Principal
from app.core.columns import UTCDateTime
from app.core.document_sql import document_column, document_sql
from app.core.pagination import decode_cursor, encode_cursor
from app.core.reads import fetch_page
from app.goals.access import goals_readable_by
from app.goals.documents import GOAL, PROGRESS
from app.models import Goal

GOALS = Goal.__table__
# The one computed progress field; the others are counter columns of the same name.
_PERCENT = (
    "CASE WHEN goals.steps_total > 0 THEN goals.steps_done * 100 / goals.steps_total ELSE 0 END"
)


def goal_document_column(dialect: str) -> sa.ColumnElement[str]:
    """One goal's JSON as SQL, generated from the goal's declaration (``GOAL``), with
    ``progress`` from the counters."""
    progress = document_sql(PROGRESS, "goals", dialect, {"percent": _PERCENT})
    return document_column(GOAL, "goals", dialect, {"progress": progress})


def _raw(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """The column as the driver returns it (no type processing per row)."""
    return sa.type_coerce(column, sa.String()).label(f"raw_{column.key}")


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
    spread over the query's time, and the driver wakes up for each: one row measured 0.4 ms
    of the server's CPU against 1.0-1.3 ms. Of the ``limit`` (page size + 1) rows matched, the
    row holds the page's documents joined, how many matched, the page's last keys (for the
    next cursor) and, for a therapist, the page's ``client_id:id`` pairs (for the access log)."""
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


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


def _timestamp(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


async def list_goals_page(
    session: AsyncSession,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None = None,
    client_id: uuid.UUID | None = None,
    status: str | None = None,
    external_id: str | None = None,
    updated_since: dt.datetime | None = None,
) -> tuple[bytes, str | None]:
    """The page as JSON bytes (``{"items": [...], "next_cursor": ...}``) and its cursor."""
    params: dict[str, Any] = {"caller": principal.user_id, "limit": limit + 1}
    if client_id is not None:
        params["client_id"] = client_id
    if status is not None:
        params["status"] = status
    if external_id is not None:
        params["external_id"] = external_id
    if updated_since is not None:
        params["since"] = updated_since
    if cursor:
        params["after_updated_at"], params["after_id"] = decode_cursor(
            cursor, dt.datetime, uuid.UUID
        )
    dialect = session.bind.dialect.name
    statement = list_statement(
        dialect,
        principal.is_client,
        client_id is not None,
        status is not None,
        external_id is not None,
        updated_since is not None,
        bool(cursor),
    )
    found = await fetch_page(session, statement, params)
    if dialect == "sqlite":
        items, last, pairs = _page_of_rows(found, limit, principal.is_therapist)
    else:
        items, last, pairs = _page_of_one_row(found[0], limit)
    next_cursor = encode_cursor(_timestamp(last[0]), _uuid(last[1])) if last else None
    if principal.is_therapist:
        record_reads(
            session,
            principal,
            object_type="goal",
            objects=((_uuid(client), _uuid(goal)) for client, goal in pairs),
        )
    body = b'{"items":[' + items.encode() + b'],"next_cursor":' + orjson.dumps(next_cursor) + b"}"
    return body, next_cursor


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
