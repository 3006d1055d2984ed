"""Goals (docs/integrators.md, "Goals"). Responses are serialized once with orjson;
``response_model`` still documents each shape for OpenAPI."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, Request, Response, status

from app.auth.dependencies import principal_with
from app.auth.routing import domain_router
from app.auth.scopes import Scope
from app.core.errors import problem_responses
from app.core.http import (
    IfMatch,
    IfNoneMatch,
    etag,
    json_response,
    link_header,
    not_modified,
    not_modified_response,
)
from app.core.pagination import Cursor, Limit
from app.core.schemas import PlainText, Rfc3339DateTime
from app.core.sessions import SessionDep
from app.goals import service
from app.goals.dependencies import DeletableGoal, ReadableGoal, WritableGoal
from app.goals.documents import goal_document
from app.goals.listing import list_goals_page
from app.goals.schemas import ExternalId, GoalCreate, GoalOut, GoalPage, GoalStatus, GoalUpdate

Reader = principal_with(Scope.GOALS_READ)
Writer = principal_with(Scope.GOALS_WRITE)
router = domain_router(tags=["goals"])


@router.get(
    "/goals",
    operation_id="goals_list",
    response_model=GoalPage,
    responses=problem_responses(400, 401, 403, 422),
)
async def list_goals(
    request: Request,
    principal: Reader,
    session: SessionDep,
    client_id: Annotated[uuid.UUID | None, Query(description="Only this client's goals.")] = None,
    status: Annotated[GoalStatus | None, Query()] = None,
    external_id: Annotated[ExternalId | None, PlainText, Query()] = None,
    updated_since: Annotated[
        Rfc3339DateTime | None, Query(description="Only goals updated at or after this instant.")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """The goals you may see, newest `updated_at` first, each with its progress."""
    body, next_cursor = await list_goals_page(
        session,
        principal,
        limit=limit,
        cursor=cursor,
        client_id=client_id,
        status=status,
        external_id=external_id,
        updated_since=updated_since,
    )
    return Response(body, media_type="application/json", headers=link_header(request, next_cursor))


@router.post(
    "/goals",
    operation_id="goals_create",
    status_code=status.HTTP_201_CREATED,
    response_model=GoalOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_goal(data: GoalCreate, principal: Writer, session: SessionDep) -> Response:
    """A client's own goal starts `active`; a therapist proposes one (`proposed`) for a linked
    client, shared only."""
    goal = await service.create_goal(session, principal, data)
    return json_response(
        goal,
        status.HTTP_201_CREATED,
        {"Location": f"/v1/goals/{goal['id']}", "ETag": etag(goal["version"])},
    )


@router.get(
    "/goals/{goal_id}",
    operation_id="goals_get",
    response_model=GoalOut,
    responses={304: {"description": "Not modified"}, **problem_responses(401, 403, 404)},
)
async def read_goal(
    goal: ReadableGoal, principal: Reader, session: SessionDep, if_none_match: IfNoneMatch = None
) -> Response:
    service.read_goal(session, principal, goal)
    if not_modified(if_none_match, goal.version):
        return not_modified_response(goal.version)
    return json_response(goal_document(goal), headers={"ETag": etag(goal.version)})


@router.patch(
    "/goals/{goal_id}",
    operation_id="goals_update",
    response_model=GoalOut,
    responses=problem_responses(401, 403, 404, 409, 412, 422),
)
async def update_goal(
    goal: WritableGoal,
    data: GoalUpdate,
    principal: Writer,
    session: SessionDep,
    if_match: IfMatch = None,
) -> Response:
    """Change the fields you send. `completed` sets `completed_at`; a client declines a
    proposed goal with `cancelled`."""
    goal = await service.update_goal(session, principal, goal, data, if_match)
    return json_response(goal_document(goal), headers={"ETag": etag(goal.version)})


@router.delete(
    "/goals/{goal_id}",
    operation_id="goals_delete",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 412),
)
async def delete_goal(
    goal: DeletableGoal, principal: Writer, session: SessionDep, if_match: IfMatch = None
) -> Response:
    """Soft delete. A therapist may delete only the goals they created."""
    await service.delete_goal(session, principal, goal, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
