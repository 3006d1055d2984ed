"""FHIR reads: the goals the caller may see (the JSON API's rules and reads), mapped."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import Principal
from app.core.http import dumps
from app.fhir.mapping import fhir_goal
from app.goals import service as goals
from app.goals.documents import goal_document
from app.goals.listing import list_goals_page
from app.models import Goal


def read_goal(session: AsyncSession, principal: Principal, goal: Goal) -> dict[str, Any]:
    """A goal the caller may read (``ReadableGoal``) as a FHIR Goal, its reading logged."""
    goals.read_goal(session, principal, goal)
    return fhir_goal(orjson.loads(dumps(goal_document(goal))))


def patient_id(patient: str) -> uuid.UUID | None:
    """``<id>`` or ``Patient/<id>``; None when it cannot name anyone."""
    try:
        return uuid.UUID(patient.removeprefix("Patient/"))
    except ValueError:
        return None


async def search_goals(
    session: AsyncSession,
    principal: Principal,
    *,
    patient: str | None,
    count: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the goals the caller may see (of one patient), as FHIR Goals, and the cursor
    of the next page. A patient the caller may not see simply has no goals."""
    client_id = None
    if patient is not None:
        client_id = patient_id(patient)
        if client_id is None:
            return [], None
    body, next_cursor = await list_goals_page(
        session, principal, limit=count, cursor=cursor, client_id=client_id
    )
    return [fhir_goal(item) for item in orjson.loads(body)["items"]], next_cursor
