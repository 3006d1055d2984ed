"""Care invites and links: a therapist invites, the client accepts, either ends the link
(docs/integrators.md, "Care links: who sees what")."""

from __future__ import annotations

from fastapi import Request, Response, status

from app.auth.dependencies import CurrentPrincipal, principal_with
from app.auth.routing import domain_router
from app.auth.scopes import Scope
from app.carelinks import service
from app.carelinks.schemas import CareLinkOut, CareLinkPage, InviteOut, RedeemInviteRequest
from app.core.errors import problem_responses
from app.core.http import set_next_link
from app.core.pagination import Cursor, Limit
from app.core.schemas import parse_object_id
from app.core.sessions import SessionDep

Therapist = principal_with(Scope.THERAPIST)
Client = principal_with(Scope.CLIENT)

router = domain_router(tags=["carelinks"])


@router.post(
    "/care-invites",
    operation_id="care_invites_create",
    status_code=status.HTTP_201_CREATED,
    response_model=InviteOut,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_invite(principal: Therapist, session: SessionDep) -> InviteOut:
    """A single-use code, valid for 7 days, for a client to link with you."""
    return await service.create_invite(session, principal)


@router.post(
    "/care-links",
    operation_id="care_links_create",
    status_code=status.HTTP_201_CREATED,
    response_model=CareLinkOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def redeem_invite(
    data: RedeemInviteRequest, principal: Client, session: SessionDep
) -> CareLinkOut:
    """Link with the therapist who gave you this code. Unknown, used or expired codes: 404."""
    return await service.redeem_invite(session, principal, data.code)


@router.get(
    "/care-links",
    operation_id="care_links_list",
    response_model=CareLinkPage,
    responses=problem_responses(400, 401, 422),
)
async def list_links(
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CareLinkPage:
    """Your active care links, newest first."""
    items, next_cursor = await service.list_links(session, principal, limit, cursor)
    set_next_link(request, response, next_cursor)
    return CareLinkPage(items=items, next_cursor=next_cursor)


@router.delete(
    "/care-links/{link_id}",
    operation_id="care_links_delete",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 404),
)
async def end_link(link_id: str, principal: CurrentPrincipal, session: SessionDep) -> Response:
    """End a link (either party). The therapist loses access to the client's goals at once."""
    await service.end_link(session, principal, parse_object_id(link_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
