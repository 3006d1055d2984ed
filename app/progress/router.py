"""Progress of a goal, as numbers and as a chart."""

from __future__ import annotations

from fastapi import Response

from app.auth.dependencies import principal_with
from app.auth.routing import domain_router
from app.auth.scopes import Scope
from app.core.errors import problem_responses
from app.core.sessions import SessionDep
from app.goals.dependencies import ReadableGoal
from app.progress import service
from app.progress.schemas import ProgressOut
from app.progress.trend import TREND_DESCRIPTION

router = domain_router(tags=["progress"])
GoalReader = principal_with(Scope.GOALS_READ)


@router.get(
    "/goals/{goal_id}/progress",
    operation_id="progress_get",
    response_model=ProgressOut,
    responses=problem_responses(401, 403, 404),
    description="Steps done, the recent ratings and their trend, for a goal the caller may "
    "read (404 otherwise). Needs `goals:read`.\n\n" + TREND_DESCRIPTION,
)
async def goal_progress(
    goal: ReadableGoal, principal: GoalReader, session: SessionDep
) -> ProgressOut:
    return await service.goal_progress(session, principal, goal)


@router.get(
    "/goals/{goal_id}/progress.svg",
    operation_id="progress_chart",
    response_class=Response,
    responses={
        200: {
            "content": {"image/svg+xml": {"schema": {"type": "string"}}},
            "description": "A 600x300 SVG chart.",
        },
        **problem_responses(401, 403, 404),
    },
)
async def goal_progress_chart(
    goal: ReadableGoal, principal: GoalReader, session: SessionDep
) -> Response:
    """A chart for apps and e-mails (600x300 `viewBox`): the ratings (0..10, left axis) of the
    most recent 100 reviews as a line with points, and the share of steps done (0..100 %, right
    axis) over time, from the steps' `completed_at`; dates in the client's timezone. Without
    reviews it says so. Needs `goals:read` and a goal the caller may read (404 otherwise)."""
    svg = await service.goal_progress_svg(session, principal, goal)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "private, no-cache"})
