"""The benchmark's application: the production app (``create_app()``) with two baselines.

``bench/serve.py`` serves it; the production app has no way to mount these routes. Both use
the API's own route class, so the middleware, the token check and the unit of work cost exactly
what they cost on ``/v1/goals``; what is left is the floor of a read and of a write. They stay
out of the OpenAPI document. The bare insert writes a goal row only (no change row, webhook
event or access log): it measures the floor of a write, not a goal's creation.
"""

from __future__ import annotations

import datetime as dt
import types
import uuid

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request, Response

from app.api import add_routes
from app.auth.dependencies import principal_with
from app.auth.routing import AuthenticatedRoute
from app.core.clock import utcnow
from app.core.http import dumps
from app.core.pagination import encode_cursor
from app.goals.documents import GOAL, goal_document
from app.main import create_app
from app.models import Goal, new_id

router = APIRouter(route_class=AuthenticatedRoute, include_in_schema=False)

GoalsReader = principal_with("goals:read")
GoalsWriter = principal_with("goals:write")
CEILING_PAGE_SIZE = 50
_GOALS = Goal.__table__
_BARE_INSERT = sa.insert(_GOALS)


def _ceiling_goal(n: int, client_id: uuid.UUID, at: dt.datetime) -> dict[str, object]:
    """One goal as ``GET /v1/goals`` renders it (the goal's own renderer), with realistic
    field lengths; a field added to the goal renders as null here."""
    steps_total = n % 7 + 1
    row = dict.fromkeys(GOAL.columns)
    row.update(
        id=new_id(),
        client_id=client_id,
        created_by=client_id,
        title=f"Walk to the park three times a week ({n})",
        description="Short walks, starting with ten minutes, with a friend when possible.",
        motivation="Feeling less stuck at home and sleeping better.",
        success_criteria="Three walks a week for a month.",
        category="activity",
        priority=("low", "medium", "high")[n % 3],
        status="active",
        achievement_status="in_progress",
        visibility="shared",
        target_date=at.date() + dt.timedelta(days=30 + n),
        review_every_days=7,
        next_review_due=at.date() + dt.timedelta(days=n % 7),
        external_id=None,
        gas_levels=None,
        gas_weight=1,
        completed_at=None,
        version=n % 5 + 1,
        created_at=at - dt.timedelta(days=60, minutes=n),
        updated_at=at - dt.timedelta(minutes=n),
        steps_total=steps_total,
        steps_done=n % (steps_total + 1),
        latest_rating=n % 10 + 1,
        latest_gas_score=n % 5 - 2,
    )
    return goal_document(types.SimpleNamespace(**row))


def _ceiling_page() -> tuple[bytes, str]:
    client_id = new_id()
    at = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    items = [_ceiling_goal(n, client_id, at) for n in range(CEILING_PAGE_SIZE)]
    last = items[-1]
    cursor = encode_cursor(last["updated_at"], last["id"])
    body = dumps({"items": items, "next_cursor": cursor})
    return body, f'</v1/goals?limit={CEILING_PAGE_SIZE}&cursor={cursor}>; rel="next"'


CEILING_BODY, CEILING_LINK = _ceiling_page()


@router.get("/bench/ceiling", operation_id="bench_ceiling")
async def ceiling(_: GoalsReader) -> Response:
    """Token check, then a constant pre-serialized page of 50 goals: the read ceiling."""
    return Response(CEILING_BODY, media_type="application/json", headers={"Link": CEILING_LINK})


@router.post("/bench/bare-insert", operation_id="bench_bare_insert", status_code=201)
async def bare_insert(request: Request, principal: GoalsWriter) -> Response:
    """Token check, one minimal goal row in one Core INSERT, committed by the unit of work."""
    now = utcnow()
    goal_id = new_id()
    await request.state.session.execute(
        _BARE_INSERT,
        {
            "id": goal_id,
            "client_id": principal.user_id,
            "title": "bench bare insert",
            "status": "active",
            "visibility": "shared",
            "gas_weight": 1,
            "steps_total": 0,
            "steps_done": 0,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        },
    )
    return Response(
        orjson.dumps({"id": str(goal_id)}), status_code=201, media_type="application/json"
    )


def create_bench_app() -> FastAPI:
    """The production app, and the baselines added to its routes."""
    app = create_app()
    add_routes(app, router)
    return app
