"""Goals: create, read, update, delete, and their rules (docs/integrators.md, "Goals"); the
list, the hot path, is in ``listing.py``."""

from __future__ import annotations

import datetime as dt
import types
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.accesslog.service import record_access
from app.auth.dependencies import Principal
from app.celebrations.service import celebrate_completed
from app.changes.service import (
    record_change,
    record_goal_encouragements_change,
    record_goal_visibility_change,
)
from app.core.clock import local_date, utcnow
from app.core.errors import Conflict, Forbidden, ValidationFailed
from app.core.http import check_if_match
from app.goals.access import (
    client_for_write,
)
from app.goals.documents import goal_document
from app.goals.repository import client_timezone, insert_goal_with_change
from app.goals.schemas import GoalCreate, GoalUpdate
from app.models import Goal, Review, Step, new_id
from app.reminders import service as reminders
from app.webhooks.events import Event, EventType, new_event, record

GOALS = Goal.__table__
STEPS = Step.__table__
REVIEWS = Review.__table__
_EXTERNAL_ID_TAKEN = (
    sa.select(GOALS.c.id)
    .where(
        GOALS.c.client_id == sa.bindparam("client_id"),
        GOALS.c.external_id == sa.bindparam("external_id"),
        GOALS.c.deleted_at.is_(None),
        GOALS.c.id != sa.bindparam("goal_id"),
    )
    .limit(1)
)


async def _ensure_external_id_free(
    session: AsyncSession, client_id: uuid.UUID, external_id: str, goal_id: uuid.UUID | None
) -> None:
    taken = await session.scalar(
        _EXTERNAL_ID_TAKEN,
        {"client_id": client_id, "external_id": external_id, "goal_id": goal_id or new_id()},
    )
    if taken is not None:
        raise Conflict("This client already has a goal with that external_id.")


async def next_review_due(
    session: AsyncSession,
    client_id: uuid.UUID,
    review_every_days: int | None,
    since: dt.datetime,
    timezone: str | None = None,
) -> dt.date | None:
    """``since`` (the last review, else the creation) as a date in the client's timezone
    (read unless given), plus the interval; null without one. The same rule reviews follow."""
    if review_every_days is None:
        return None
    timezone = timezone or await client_timezone(session, client_id)
    return local_date(since, timezone or "UTC") + dt.timedelta(days=review_every_days)


async def _schedule(session: AsyncSession, goal: Any, timezone: str | None = None) -> None:
    """The goal's due date may need a reminder or a lagging check sooner than the client's
    next instant (``app.reminders``)."""
    if goal.status == "active" and goal.next_review_due is not None:
        timezone = timezone or await client_timezone(session, goal.client_id)
        await reminders.goal_due_changed(session, goal.client_id, goal, timezone or "UTC")


def _record(
    session: AsyncSession,
    principal: Principal,
    goal: Any,
    *,
    op: str,
    action: str,
) -> None:
    """The goal's change row and the access log."""
    record_change(
        session,
        client_id=goal.client_id,
        object_type="goal",
        object_id=goal.id,
        op=op,
        goal_id=goal.id,
        shared=goal.visibility == "shared",
    )
    _log(session, principal, goal, action)


def _event(event: EventType, goal: Any, document: dict[str, Any] | None = None) -> Event:
    """The webhook event of a goal, heard by its client and, when shared, linked therapists;
    ``document`` None: its GET document as it is at commit."""
    return new_event(
        event, object_id=goal.id, client_id=goal.client_id,
        shared=goal.visibility == "shared", document=document,
    )  # fmt: skip


def _log(session: AsyncSession, principal: Principal, goal: Any, action: str) -> None:
    record_access(
        session,
        principal,
        client_id=goal.client_id,
        action=action,
        object_type="goal",
        object_ids=[goal.id],
    )


async def create_goal(
    session: AsyncSession, principal: Principal, data: GoalCreate
) -> dict[str, Any]:
    """A client's own goal starts ``active``; one a therapist proposes starts ``proposed``."""
    client_id = await client_for_write(session, principal, data.client_id)
    if principal.is_therapist and data.visibility == "private":
        raise ValidationFailed(
            "A therapist proposes shared goals; only the client can make a goal private.",
            loc=["body", "visibility"],
        )
    if data.external_id is not None:
        await _ensure_external_id_free(session, client_id, data.external_id, None)
    timezone = None
    if data.review_every_days is not None:
        timezone = await client_timezone(session, client_id)
    now = utcnow()
    row = {
        **data.model_dump(exclude={"client_id"}),  # every field the caller may set
        "id": new_id(),
        "client_id": client_id,
        "created_by": principal.user_id,
        "status": "active" if principal.is_client else "proposed",
        "achievement_status": None,
        "next_review_due": await next_review_due(
            session, client_id, data.review_every_days, now, timezone
        ),
        "completed_at": None,
        "steps_total": 0,
        "steps_done": 0,
        "latest_rating": None,
        "latest_gas_score": None,
        "lagging": False,
        "lagging_reviews": False,
        "lagging_missed": False,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    goal = types.SimpleNamespace(**row)
    document = goal_document(goal)
    # A concurrent request can still take the external_id, or erase the client, before the
    # insert: the database refuses it, answered by app.core.constraints.
    await insert_goal_with_change(session, row, announce=_event("goal.created", goal, document))
    _log(session, principal, goal, "create")
    await _schedule(session, types.SimpleNamespace(**row, reminded_due=None), timezone)
    return document


def read_goal(session: AsyncSession, principal: Principal, goal: Goal) -> Goal:
    """A goal the caller may read (see ``ReadableGoal``), its reading logged."""
    _log(session, principal, goal, "read")
    return goal


async def update_goal(
    session: AsyncSession,
    principal: Principal,
    goal: Goal,
    data: GoalUpdate,
    if_match: str | None,
) -> Goal:
    """Apply the fields sent to a goal the caller may change, its row locked (``WritableGoal``),
    so the ``If-Match`` check and the write are one step: of many writers holding the same
    version, exactly one succeeds."""
    check_if_match(if_match, goal.version)
    changes = {k: v for k, v in data.changes().items() if getattr(goal, k) != v}
    if principal.is_therapist and changes.get("visibility") == "private":
        raise Forbidden("Only the client can make a goal private.")
    if not changes:
        return goal
    if changes.get("external_id") is not None:
        await _ensure_external_id_free(session, goal.client_id, changes["external_id"], goal.id)
    now = utcnow()
    completing = changes.get("status") == "completed"
    if "status" in changes:
        goal.completed_at = now if completing else None
    if "review_every_days" in changes:
        goal.next_review_due = await next_review_due(
            session,
            goal.client_id,
            changes["review_every_days"],
            goal.last_review_at or goal.created_at,
        )
    for name, value in changes.items():
        setattr(goal, name, value)
    if "status" in changes:
        await reminders.status_changed(session, goal, now)
    goal.version += 1
    goal.updated_at = now
    await session.flush()  # a concurrent taker of the external_id: app.core.constraints
    if changes.keys() & {"status", "review_every_days"}:
        await _schedule(session, goal)
    if changes.get("visibility") == "private":
        await reminders.goal_hidden(session, goal.client_id, goal.id, from_therapists=True)
    if completing:
        await celebrate_completed(
            session, goal_id=goal.id, client_id=goal.client_id, title=goal.title, now=now
        )
    _record(session, principal, goal, op="upsert", action="update")
    record(session, _event("goal.updated", goal))
    if "visibility" in changes:
        record_goal_visibility_change(session, goal.client_id, goal.id)
    return goal


async def delete_goal(
    session: AsyncSession, principal: Principal, goal: Goal, if_match: str | None
) -> None:
    """Soft delete (``DeletableGoal``): the goal, its steps and reviews leave every read and
    sync as deletions."""
    check_if_match(if_match, goal.version)
    now = utcnow()
    goal.deleted_at = now
    goal.updated_at = now
    goal.version += 1
    await session.flush()
    _record(session, principal, goal, op="delete", action="delete")
    record(session, _event("goal.deleted", goal, {"id": goal.id}))
    await reminders.goal_hidden(session, goal.client_id, goal.id, from_therapists=False)
    record_goal_encouragements_change(session, goal.client_id, goal.id)
    children = await session.execute(
        sa.select(sa.literal("step"), STEPS.c.id)
        .where(STEPS.c.goal_id == goal.id, STEPS.c.deleted_at.is_(None))
        .union_all(
            sa.select(sa.literal("review"), REVIEWS.c.id).where(REVIEWS.c.goal_id == goal.id)
        )
    )
    for object_type, object_id in children:
        record_change(
            session,
            client_id=goal.client_id,
            object_type=object_type,
            object_id=object_id,
            op="delete",
            goal_id=goal.id,
        )
