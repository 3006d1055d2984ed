"""``GET /v1/sync``: the feed scripts and offline-first apps follow (docs/integrators.md,
"Sync: following every change")."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response

from app.auth.dependencies import principal_with
from app.auth.routing import domain_router
from app.core.errors import problem_responses
from app.core.http import JSON
from app.core.pagination import Cursor
from app.core.sessions import SessionDep
from app.sync import feed
from app.sync.schemas import SyncPage

router = domain_router(tags=["sync"])
Caller = principal_with()
SyncLimit = Annotated[int, Query(ge=1, le=1000, description="Changes per page, 1..1000.")]


@router.get(
    "/sync",
    operation_id="sync_changes",
    response_model=SyncPage,
    responses=problem_responses(400, 401, 410, 422),
)
async def sync_changes(
    principal: Caller, session: SessionDep, cursor: Cursor = None, limit: SyncLimit = 500
) -> Response:
    """Without `cursor`: everything the caller may see (as upserts). With the `next_cursor` of
    the previous page: every change since, in commit order, deletions included; an object that
    left the caller's sight (deleted, its goal deleted or turned private, a care link ended, an
    account erased) comes as `op: "delete"`. Only the types whose read scope the token holds
    (`goals:read`: goals and steps, `reviews:read`, `encouragements:read`). An object may come
    more than once: the last entry for an id wins. A cursor of another account or made with
    other read scopes answers 400. A cursor older than the history the server keeps
    (`WAYPOINT_SYNC_RETENTION_DAYS`, 90 days by default) answers 410 with type
    `/problems/cursor-expired`: start over without a cursor."""
    return Response(await feed.sync_page(session, principal, cursor, limit), media_type=JSON)
