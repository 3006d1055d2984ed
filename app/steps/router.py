"""Steps of a goal (docs/integrators.md, "Steps")."""

from __future__ import annotations

from fastapi import Request, Response, status

from app.auth.dependencies import principal_with
from app.auth.routing import domain_router
from app.auth.scopes import Scope
from app.core.errors import problem_responses
from app.core.http import (
    IfMatch,
    IfNoneMatch,
    etag,
    json_response,
    not_modified,
    not_modified_response,
    page_response,
)
from app.core.pagination import Cursor, Limit
from app.core.sessions import SessionDep
from app.goals.dependencies import ReadableGoal, WritableGoal
from app.steps import service
from app.steps.documents import step_document
from app.steps.schemas import StepCreate, StepOut, StepPage, StepUpdate

Reader = principal_with(Scope.GOALS_READ)
Writer = principal_with(Scope.GOALS_WRITE)

router = domain_router(tags=["steps"])


@router.get(
    "/goals/{goal_id}/steps",
    operation_id="steps_list",
    response_model=StepPage,
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def list_steps(
    goal: ReadableGoal,
    request: Request,
    principal: Reader,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """The goal's steps in `position` order."""
    items, next_cursor = await service.list_steps(session, principal, goal, limit, cursor)
    return page_response(request, items, next_cursor)


@router.post(
    "/goals/{goal_id}/steps",
    operation_id="steps_create",
    status_code=status.HTTP_201_CREATED,
    response_model=StepOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_step(
    goal: WritableGoal, data: StepCreate, principal: Writer, session: SessionDep
) -> Response:
    """Add a step (appended unless `position` says where). At most 200 per goal."""
    step = await service.create_step(session, principal, goal, data)
    return json_response(
        step,
        status.HTTP_201_CREATED,
        {"Location": f"/v1/steps/{step['id']}", "ETag": etag(step["version"])},
    )


@router.get(
    "/steps/{step_id}",
    operation_id="steps_get",
    response_model=StepOut,
    responses={304: {"description": "Not modified"}, **problem_responses(401, 403, 404)},
)
async def read_step(
    step_id: str, principal: Reader, session: SessionDep, if_none_match: IfNoneMatch = None
) -> Response:
    step = await service.read_step(session, principal, step_id)
    if not_modified(if_none_match, step.version):
        return not_modified_response(step.version)
    return json_response(step_document(step), headers={"ETag": etag(step.version)})


@router.patch(
    "/steps/{step_id}",
    operation_id="steps_update",
    response_model=StepOut,
    responses=problem_responses(401, 403, 404, 412, 422),
)
async def update_step(
    step_id: str,
    data: StepUpdate,
    principal: Writer,
    session: SessionDep,
    if_match: IfMatch = None,
) -> Response:
    """Change a step; `done` sets `completed_at`, `todo` clears it; `position` moves it."""
    step = await service.update_step(session, principal, step_id, data, if_match)
    return json_response(step_document(step), headers={"ETag": etag(step.version)})


@router.delete(
    "/steps/{step_id}",
    operation_id="steps_delete",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 412),
)
async def delete_step(
    step_id: str, principal: Writer, session: SessionDep, if_match: IfMatch = None
) -> Response:
    """Remove a step; the ones after it move up."""
    await service.delete_step(session, principal, step_id, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
