"""``Idempotency-Key`` on POST: the first response is stored in the same transaction as the
work it acknowledges, and replayed for a retry with the same key and body."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Annotated

import sqlalchemy as sa
from fastapi import Header, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.config import get_settings
from app.core.errors import Conflict
from app.core.sessions import insert_unless_present
from app.core.unit_of_work import CommitContext, commit_state
from app.models import IdempotencyKey, new_id

REPLAYED_HEADERS = ("content-type", "location", "etag")
_ROW = "idempotency_row_id"


class IdempotentReplay(Exception):
    """Carries the stored response as plain values: the session is rolled back and closed
    before the handler renders it, so no ORM object may cross that boundary."""

    def __init__(self, status_code: int, body: str, headers: dict[str, str]) -> None:
        self.status_code = status_code
        self.body = body
        self.headers = headers


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retry-safe POST: the same key and body within 24 h replays the first "
        "response; the same key with another body answers 409.",
    ),
]


async def check_idempotency_key(
    request: Request, user_id: uuid.UUID, idempotency_key: str | None
) -> None:
    """A POST of ``user_id``'s with an ``Idempotency-Key``: replayed, refused (409) or noted for
    ``store_idempotent_response``. Called for every authenticated POST by its route class
    (``app.auth.routing``), once the caller is known."""
    if idempotency_key is None:
        return
    session: AsyncSession = request.state.session
    body = await request.body()
    fingerprint = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + body
    ).hexdigest()
    now = utcnow()
    cutoff = now - dt.timedelta(hours=get_settings().idempotency_ttl_hours)
    table = IdempotencyKey.__table__
    await session.execute(
        sa.delete(table).where(
            table.c.user_id == user_id,
            table.c.key == idempotency_key,
            table.c.created_at < cutoff,
        )
    )
    # A concurrent request with the same key waits here for the first one's commit.
    inserted = await session.execute(
        insert_unless_present(session, table)
        .values(
            id=new_id(),
            user_id=user_id,
            key=idempotency_key,
            fingerprint=fingerprint,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(table.c.id)
    )
    new_row_id = inserted.scalar_one_or_none()
    if new_row_id is not None:
        commit_state(request)[_ROW] = new_row_id
        return
    row = (
        await session.execute(
            sa.select(IdempotencyKey).where(
                IdempotencyKey.user_id == user_id, IdempotencyKey.key == idempotency_key
            )
        )
    ).scalar_one()
    if row.fingerprint != fingerprint:
        raise Conflict("This Idempotency-Key was already used with another request body.")
    if row.status_code is None:
        raise Conflict("A request with this Idempotency-Key is still being processed.")
    raise IdempotentReplay(
        row.status_code, row.response_body or "", dict(row.response_headers or {})
    )


async def store_idempotent_response(context: CommitContext) -> None:
    """Before-commit hook: the response a retry with the same key replays."""
    row_id = context.state.get(_ROW)
    response = context.response
    if row_id is None or response is None:
        return
    headers = {k: v for k, v in response.headers.items() if k in REPLAYED_HEADERS}
    await context.session.execute(
        sa.update(IdempotencyKey)
        .where(IdempotencyKey.id == row_id)
        .values(
            status_code=response.status_code,
            response_body=bytes(response.body).decode(),
            response_headers=headers,
        )
    )


async def replay_response(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, IdempotentReplay)
    headers = dict(exc.headers)
    media_type = headers.pop("content-type", "application/json")
    headers["Idempotent-Replayed"] = "true"
    return Response(
        content=exc.body, status_code=exc.status_code, headers=headers, media_type=media_type
    )
