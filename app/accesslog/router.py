from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import Request, Response
from pydantic import BaseModel

from app.auth.dependencies import principal_with
from app.auth.routing import domain_router
from app.auth.schemas import RoleName
from app.core.errors import problem_responses
from app.core.http import set_next_link
from app.core.openapi import Component
from app.core.pagination import Cursor, Limit, decode_cursor, encode_cursor
from app.core.sessions import SessionDep
from app.models import AccessLogEntry, User

router = domain_router(tags=["privacy"])
ClientPrincipal = principal_with("client")


class Actor(BaseModel):
    id: uuid.UUID | None
    display_name: str | None
    role: RoleName


class AccessLogItem(BaseModel):
    at: dt.datetime
    actor: Actor
    action: Annotated[Literal["read", "create", "update", "delete"], Component("AccessAction")]
    object_type: str
    object_id: uuid.UUID


class AccessLogPage(BaseModel):
    items: list[AccessLogItem]
    next_cursor: str | None


@router.get(
    "/me/access-log",
    operation_id="me_access_log",
    response_model=AccessLogPage,
    responses=problem_responses(400, 401, 403, 422),
)
async def access_log(
    request: Request,
    response: Response,
    principal: ClientPrincipal,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> AccessLogPage:
    """Every read or change of your data by someone else (your therapist), newest first."""
    entry = AccessLogEntry
    query = (
        sa.select(entry, User.display_name)
        .outerjoin(User, User.id == entry.actor_id)
        .where(entry.client_id == principal.user_id)
        .order_by(entry.at.desc(), entry.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        at, last_id = decode_cursor(cursor, dt.datetime, uuid.UUID)
        query = query.where(sa.tuple_(entry.at, entry.id) < sa.tuple_(at, last_id))
    rows = (await session.execute(query)).all()
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1][0].at, page[-1][0].id) if len(rows) > limit else None
    set_next_link(request, response, next_cursor)
    items = [
        AccessLogItem(
            at=row.at,
            actor=Actor(id=row.actor_id, display_name=name, role=row.actor_role),
            action=row.action,
            object_type=row.object_type,
            object_id=row.object_id,
        )
        for row, name in page
    ]
    return AccessLogPage(items=items, next_cursor=next_cursor)
