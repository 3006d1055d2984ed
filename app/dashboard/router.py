"""The therapist's dashboard."""

from __future__ import annotations

from fastapi import Request, Response

from app.auth.dependencies import principal_with
from app.auth.routing import domain_router
from app.auth.scopes import Scope
from app.core.errors import problem_responses
from app.core.http import set_next_link
from app.core.pagination import Cursor, Limit
from app.core.sessions import SessionDep
from app.dashboard import service
from app.dashboard.schemas import ClientSummaryPage

router = domain_router(tags=["dashboard"])
TherapistReader = principal_with(Scope.THERAPIST, Scope.GOALS_READ)


@router.get(
    "/clients",
    operation_id="dashboard_clients",
    response_model=ClientSummaryPage,
    responses=problem_responses(400, 401, 403, 422),
)
async def list_clients(
    request: Request,
    response: Response,
    principal: TherapistReader,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ClientSummaryPage:
    """The caller's linked clients (therapists only: a client gets 403; needs `goals:read`),
    ordered by `display_name` then `id` (keyset). Only shared goals count; private goals count
    nowhere. Computed in a fixed number of queries whatever the page size."""
    items, next_cursor = await service.client_summaries(
        session, principal, limit=limit, cursor=cursor
    )
    set_next_link(request, response, next_cursor)
    return ClientSummaryPage(items=items, next_cursor=next_cursor)
