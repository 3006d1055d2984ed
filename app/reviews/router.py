"""Reviews: append-only check-ins on a goal (PATCH and DELETE answer 405)."""

from __future__ import annotations

from fastapi import Request, Response, status
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from app.auth.dependencies import principal_with
from app.auth.routing import domain_router
from app.auth.scopes import Scope
from app.core.errors import problem_responses
from app.core.http import json_response, page_response
from app.core.pagination import Cursor, Limit
from app.core.sessions import SessionDep
from app.goals.dependencies import GoalForReview, ReviewableGoal
from app.goals.documents import goal_document
from app.goals.schemas import GoalPage
from app.reviews import service
from app.reviews.documents import review_document
from app.reviews.schemas import ReviewCreate, ReviewOut, ReviewPage

router = domain_router(tags=["reviews"])
ReviewReader = principal_with(Scope.REVIEWS_READ)
ReviewWriter = principal_with(Scope.REVIEWS_WRITE)


@router.post(
    "/goals/{goal_id}/reviews",
    operation_id="reviews_create",
    status_code=status.HTTP_201_CREATED,
    response_model=ReviewOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_review(
    goal: GoalForReview,
    data: ReviewCreate,
    principal: ReviewWriter,
    session: SessionDep,
) -> Response:
    """Add a review (the owner, or a linked therapist on a shared goal; 404 for anyone else).

    In the same transaction the goal gets: `achievement_status` (when given),
    `progress.latest_rating`, `progress.latest_gas_score` (when given; a review without a
    `gas_score` keeps the previous one), `last_review_at`, `next_review_due` = the review's
    date in the **client's** timezone + `review_every_days` (null when the goal has none),
    `version` + 1 and `updated_at`. Reviews are append-only: there is no update or delete.
    """
    review = await service.add_review(session, principal, goal, data)
    return json_response(
        review_document(review), status.HTTP_201_CREATED, {"Location": f"/v1/reviews/{review.id}"}
    )


@router.get(
    "/goals/{goal_id}/reviews",
    operation_id="reviews_list",
    response_model=ReviewPage,
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def list_reviews(
    goal: ReviewableGoal,
    request: Request,
    principal: ReviewReader,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """A goal's reviews, newest first (keyset on `created_at`, `id`)."""
    items, next_cursor = await service.list_reviews(
        session, principal, goal, limit=limit, cursor=cursor
    )
    return page_response(request, items, next_cursor)


@router.get(
    "/reviews/due",
    operation_id="reviews_due",
    response_model=GoalPage,
    responses=problem_responses(400, 401, 403, 422),
)
async def due_reviews(
    request: Request,
    principal: ReviewReader,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """Goals whose review is due: `next_review_due` is today or earlier, where "today" is the
    date in the goal's **client's** timezone (`users.timezone`; for a therapist, each client's
    own today). Only goals the caller may read (a therapist: linked clients' shared goals) and
    only `status: "active"` ones (proposed, on-hold, completed and cancelled goals wait for no
    review). Oldest due first (keyset on `next_review_due`, `id`). Needs `reviews:read`.
    """
    rows, next_cursor = await service.due_goals(session, principal, limit=limit, cursor=cursor)
    return page_response(request, [goal_document(row) for row in rows], next_cursor)


@router.get(
    "/reviews/{review_id}",
    operation_id="reviews_get",
    response_model=ReviewOut,
    responses=problem_responses(401, 403, 404, 405),
)
async def get_review(review_id: str, principal: ReviewReader, session: SessionDep) -> Response:
    """One review, visible exactly when its goal is. Reviews are append-only: `PATCH` and
    `DELETE` here (and on the goal's review list) answer 405 with `Allow`."""
    return json_response(review_document(await service.get_review(session, principal, review_id)))


def _append_only(allow: str):  # noqa: ANN202
    async def method_not_allowed() -> None:
        raise HTTPException(405, "Reviews are append-only.", headers={"Allow": allow})

    return method_not_allowed


# Reviews are never changed or removed: say so with 405 and the methods that do exist (plain
# routes: no token, no transaction needed to refuse).
for _path, _allow in (("/goals/{goal_id}/reviews", "GET, POST"), ("/reviews/{review_id}", "GET")):
    router.add_api_route(
        _path,
        _append_only(_allow),
        methods=["PUT", "PATCH", "DELETE"],
        include_in_schema=False,
        route_class_override=APIRoute,
    )
