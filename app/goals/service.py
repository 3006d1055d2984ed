"""Goals: create, read, update, delete; the rules of api.md section 4 (the list, the hot
path, is in ``listing.py``)."""

from __future__ import annotations

import datetime as dt
import types
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.accesslog.service import record_access
from app.auth.dependencies import Principal
from app.changes.service import CHANGE_LOG_LOCK, record_change, with_goal_change
from app.core.db import is_postgres, utcnow
from app.core.errors import Conflict, Forbidden, ValidationFailed
from app.core.http import check_if_match
from app.core.reads import fetch_rows
from app.encouragements.celebrations import celebrate_completed
from app.goals.access import (
    client_for_write,
    deletable_goals,
    goal_from_path,
    writable_goals,
)
from app.goals.documents import goal_document
from app.goals.schemas import GoalCreate, GoalUpdate
from app.models import Goal, Review, Step, User, new_id
from app.reviews.due import local_date
from app.webhooks import outbox
from app.webhooks.events import Event, EventType, new_event, record_event

GOALS = Goal.__table__
STEPS = Step.__table__
REVIEWS = Review.__table__
_INSERT = sa.insert(GOALS)
_CREATED_COLUMNS = (
    "id", "client_id", "created_by", "title", "description", "motivation", "success_criteria",
    "category", "priority", "status", "achievement_status", "visibility", "target_date",
    "review_every_days", "next_review_due", "external_id", "gas_levels", "gas_weight",
    "completed_at", "steps_total", "steps_done", "latest_rating", "latest_gas_score",
    "version", "created_at", "updated_at",
)  # fmt: skip
# PostgreSQL: the goal, its change row and its webhook deliveries in one statement.
_INSERT_WITH_CHANGE = with_goal_change(
    sa.insert(GOALS).values(
        {name: sa.bindparam(name, type_=GOALS.c[name].type) for name in _CREATED_COLUMNS}
    )
).add_cte(outbox.deliveries_cte())
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
# Built once: the request's own connection runs it without the ORM's per-call statement work.
_CLIENT_TIMEZONE = sa.select(User.__table__.c.timezone).where(
    User.__table__.c.id == sa.bindparam("client_id", type_=User.__table__.c.id.type)
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
) -> dt.date | None:
    """``since`` (the last review, else the creation) as a date in the client's timezone, plus
    the interval; null without one. The same rule reviews follow."""
    if review_every_days is None:
        return None
    params = {"client_id": client_id}
    if session.in_transaction():  # it may have written the client itself (seed-demo does)
        timezone = await (await session.connection()).scalar(_CLIENT_TIMEZONE, params)
    else:  # SQLite: read before BEGIN IMMEDIATE, not while holding the write lock
        timezone = next(iter(await fetch_rows(session, _CLIENT_TIMEZONE, params)), (None,))[0]
    return local_date(since, timezone or "UTC") + dt.timedelta(days=review_every_days)


def _record(
    session: AsyncSession,
    principal: Principal,
    goal: Any,
    *,
    op: str,
    action: str,
    change_written: bool = False,
) -> None:
    """The goal's change row (unless its statement already wrote it) and the access log."""
    if not change_written:
        record_change(
            session,
            client_id=goal.client_id,
            object_type="goal",
            object_id=goal.id,
            op=op,
            goal_id=goal.id,
        )
    record_access(
        session,
        principal,
        client_id=goal.client_id,
        action=action,
        object_type="goal",
        object_ids=[goal.id],
    )


def _event(event: EventType, goal: Any, document: dict[str, Any] | None = None) -> Event:
    """The webhook event of a goal, heard by its client and, when shared, linked therapists."""
    return new_event(
        event, object_id=goal.id, client_id=goal.client_id,
        shared=goal.visibility == "shared", document=document,
    )  # fmt: skip


def _announce(
    session: AsyncSession, event: EventType, goal: Any, document: dict[str, Any] | None = None
) -> None:
    record_event(
        session, event, object_id=goal.id, client_id=goal.client_id,
        shared=goal.visibility == "shared", document=document,
    )  # fmt: skip


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
    now = utcnow()
    row = {
        "id": new_id(),
        "client_id": client_id,
        "created_by": principal.user_id,
        "title": data.title,
        "description": data.description,
        "motivation": data.motivation,
        "success_criteria": data.success_criteria,
        "category": data.category,
        "priority": data.priority,
        "status": "active" if principal.is_client else "proposed",
        "achievement_status": None,
        "visibility": data.visibility,
        "target_date": data.target_date,
        "review_every_days": data.review_every_days,
        "next_review_due": await next_review_due(session, client_id, data.review_every_days, now),
        "external_id": data.external_id,
        "gas_levels": data.gas_levels.as_json() if data.gas_levels else None,
        "gas_weight": data.gas_weight,
        "completed_at": None,
        "steps_total": 0,
        "steps_done": 0,
        "latest_rating": None,
        "latest_gas_score": None,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    goal = types.SimpleNamespace(**row)
    document = goal_document(goal)
    postgres = is_postgres(session)
    try:
        if postgres:  # the goal, its change row and its webhook deliveries in one round trip
            created = _event("goal.created", goal, document)
            await (await session.connection()).execute(
                _INSERT_WITH_CHANGE,
                {
                    **row,
                    "change_lock": CHANGE_LOG_LOCK,
                    "change_at": now,
                    **outbox.cte_parameters(session, created, document, now),
                },
            )
        else:
            await (await session.connection()).execute(_INSERT, row)
    except IntegrityError:
        raise Conflict("This client already has a goal with that external_id.") from None
    _record(session, principal, goal, op="upsert", action="create", change_written=postgres)
    if not postgres:
        _announce(session, "goal.created", goal, document)
    return document


async def read_goal(session: AsyncSession, principal: Principal, goal_id: str) -> Goal:
    goal = await goal_from_path(session, principal, goal_id)
    record_access(
        session,
        principal,
        client_id=goal.client_id,
        action="read",
        object_type="goal",
        object_ids=[goal.id],
    )
    return goal


async def update_goal(
    session: AsyncSession,
    principal: Principal,
    goal_id: str,
    data: GoalUpdate,
    if_match: str | None,
) -> Goal:
    """Apply the fields sent. The row is locked first, so the ``If-Match`` check and the write
    are one step: of many writers holding the same version, exactly one succeeds."""
    goal = await goal_from_path(
        session, principal, goal_id, clause=writable_goals(principal), for_update=True
    )
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
    goal.version += 1
    goal.updated_at = now
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("This client already has a goal with that external_id.") from None
    if completing:
        await celebrate_completed(
            session, goal_id=goal.id, client_id=goal.client_id, title=goal.title, now=now
        )
    _record(session, principal, goal, op="upsert", action="update")
    _announce(session, "goal.updated", goal)
    return goal


async def delete_goal(
    session: AsyncSession, principal: Principal, goal_id: str, if_match: str | None
) -> None:
    """Soft delete: the goal, its steps and reviews leave every read and sync as deletions."""
    goal = await goal_from_path(
        session, principal, goal_id, clause=deletable_goals(principal), for_update=True
    )
    check_if_match(if_match, goal.version)
    now = utcnow()
    goal.deleted_at = now
    goal.updated_at = now
    goal.version += 1
    await session.flush()
    _record(session, principal, goal, op="delete", action="delete")
    _announce(session, "goal.deleted", goal, {"id": goal.id})
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
