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
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.accesslog.service import record_reads
from app.auth.dependencies import Principal
from app.core.pagination import decode_cursor, encode_cursor
from app.goals.repository import PageShape, goal_page


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
    shape = PageShape(
        principal.is_client,
        client_id is not None,
        status is not None,
        external_id is not None,
        updated_since is not None,
        bool(cursor),
    )
    items, last, pairs = await goal_page(session, shape, params, limit, principal.is_therapist)
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
