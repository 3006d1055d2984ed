"""Steps: an ordered list under a goal, and the goal's progress counters kept exact.

Every step write locks its goal row first (``goal_from_path(..., for_update=True)``; SQLite
writers are serialized anyway), so positions stay 0-based and contiguous and the ``If-Match``
check and the write are one step. The counters on the goal move with atomic increments.
"""

from __future__ import annotations

import datetime as dt
import types
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.accesslog.service import record_access
from app.auth.dependencies import Principal
from app.celebrations.service import celebrate_steps
from app.changes.service import record_change
from app.core.clock import utcnow
from app.core.errors import NotFound, ValidationFailed
from app.core.http import check_if_match
from app.core.pagination import decode_cursor, encode_cursor
from app.core.reads import fetch_rows
from app.core.schemas import parse_object_id
from app.goals.access import goal_from_path, readable_goals, writable_goals
from app.models import Goal, Step, new_id
from app.steps.documents import STEP_COLUMNS, step_document
from app.steps.schemas import MAX_STEPS_PER_GOAL, StepCreate, StepUpdate
from app.webhooks.events import record_event

GOALS = Goal.__table__
STEPS = Step.__table__
_LIVE = STEPS.c.deleted_at.is_(None)


def _page_statement(after: bool) -> sa.Select[Any]:
    query = sa.select(*STEP_COLUMNS).where(STEPS.c.goal_id == sa.bindparam("goal_id"), _LIVE)
    if after:
        query = query.where(
            sa.tuple_(STEPS.c.position, STEPS.c.id)
            > sa.tuple_(
                sa.bindparam("after_position", type_=sa.Integer()),
                sa.bindparam("after_id", type_=STEPS.c.id.type),
            )
        )
    return query.order_by(STEPS.c.position, STEPS.c.id).limit(
        sa.bindparam("limit", type_=sa.Integer())
    )


_PAGE = {False: _page_statement(False), True: _page_statement(True)}


async def list_steps(
    session: AsyncSession, principal: Principal, goal: Goal, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of a readable goal's steps in ``position`` order."""
    params: dict[str, Any] = {"goal_id": goal.id, "limit": limit + 1}
    if cursor:
        params["after_position"], params["after_id"] = decode_cursor(cursor, int, uuid.UUID)
    rows = await fetch_rows(session, _PAGE[bool(cursor)], params)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].position, rows[-1].id)
    _log(session, principal, goal, "read", [row.id for row in rows])
    return [step_document(row) for row in rows], next_cursor


def _log(
    session: AsyncSession, principal: Principal, goal: Goal, action: str, ids: list[uuid.UUID]
) -> None:
    record_access(
        session, principal, client_id=goal.client_id, action=action, object_type="step",
        object_ids=ids,
    )  # fmt: skip


def _changed(
    session: AsyncSession, goal: Goal, step_ids: list[uuid.UUID], op: str = "upsert"
) -> None:
    for step_id in step_ids:
        record_change(
            session, client_id=goal.client_id, object_type="step", object_id=step_id, op=op,
            goal_id=goal.id,
        )  # fmt: skip


async def read_step(session: AsyncSession, principal: Principal, step_id: str) -> Step:
    step = (
        await session.execute(
            sa.select(Step)
            .join(Goal, Goal.id == Step.goal_id)
            .where(Step.id == parse_object_id(step_id), _LIVE, readable_goals(principal))
        )
    ).scalar_one_or_none()
    if step is None:
        raise NotFound("No such step.")
    record_access(
        session, principal, client_id=step.client_id, action="read", object_type="step",
        object_ids=[step.id],
    )  # fmt: skip
    return step


async def _step_for_write(
    session: AsyncSession, principal: Principal, step_id: str
) -> tuple[Goal, Step]:
    """The step and its goal, the goal row locked; 404 unless the caller may change it."""
    sid = parse_object_id(step_id)
    goal_id = await session.scalar(sa.select(STEPS.c.goal_id).where(STEPS.c.id == sid, _LIVE))
    if goal_id is None:
        raise NotFound("No such step.")
    try:
        goal = await goal_from_path(
            session, principal, goal_id, clause=writable_goals(principal), for_update=True
        )
    except NotFound:
        raise NotFound("No such step.") from None
    step = (
        await session.execute(
            sa.select(Step).where(Step.id == sid, _LIVE).execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if step is None:  # deleted while we waited for the lock
        raise NotFound("No such step.")
    return goal, step


async def _shift(
    session: AsyncSession,
    goal: Goal,
    *,
    by: int,
    lowest: int,
    highest: int | None,
    now: dt.datetime,
    skip: uuid.UUID | None = None,
) -> None:
    """Move the live steps with ``lowest <= position <= highest`` by ``by`` places."""
    where = [STEPS.c.goal_id == goal.id, _LIVE, STEPS.c.position >= lowest]
    if highest is not None:
        where.append(STEPS.c.position <= highest)
    if skip is not None:
        where.append(STEPS.c.id != skip)
    moved = await session.execute(
        sa.update(STEPS)
        .where(*where)
        .values(position=STEPS.c.position + by, version=STEPS.c.version + 1, updated_at=now)
        .returning(STEPS.c.id)
    )
    _changed(session, goal, list(moved.scalars()))


async def _count(
    session: AsyncSession,
    goal: Goal,
    *,
    total: int = 0,
    done: int = 0,
    now: dt.datetime,
) -> tuple[int, int]:
    """Move the goal's step counters atomically; its progress changed, so its version too."""
    row = (
        await session.execute(
            sa.update(GOALS)
            .where(GOALS.c.id == goal.id)
            .values(
                steps_total=GOALS.c.steps_total + total,
                steps_done=GOALS.c.steps_done + done,
                version=GOALS.c.version + 1,
                updated_at=now,
            )
            .returning(GOALS.c.steps_done, GOALS.c.steps_total)
        )
    ).one()
    record_change(
        session, client_id=goal.client_id, object_type="goal", object_id=goal.id, op="upsert",
        goal_id=goal.id,
    )  # fmt: skip
    return row.steps_done, row.steps_total


async def _celebrate(
    session: AsyncSession, goal: Goal, counts: tuple[int, int], now: dt.datetime
) -> None:
    steps_done, steps_total = counts
    await celebrate_steps(
        session, goal_id=goal.id, client_id=goal.client_id, title=goal.title,
        steps_done=steps_done, steps_total=steps_total, now=now,
    )  # fmt: skip


async def create_step(
    session: AsyncSession, principal: Principal, goal: Goal, data: StepCreate
) -> dict[str, Any]:
    """A new step under a goal the caller may change, its row locked (``WritableGoal``)."""
    total = goal.steps_total
    if total >= MAX_STEPS_PER_GOAL:
        raise ValidationFailed(f"A goal has at most {MAX_STEPS_PER_GOAL} steps.", loc=["body"])
    now = utcnow()
    position = total if data.position is None else min(data.position, total)
    if position < total:
        await _shift(session, goal, by=1, lowest=position, highest=None, now=now)
    row = {
        "id": new_id(),
        "goal_id": goal.id,
        "client_id": goal.client_id,
        "title": data.title,
        "notes": data.notes,
        "status": "todo",
        "position": position,
        "due_date": data.due_date,
        "completed_at": None,
        "created_by": principal.user_id,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    await session.execute(sa.insert(STEPS), row)
    await _count(session, goal, total=1, now=now)
    _changed(session, goal, [row["id"]])
    _log(session, principal, goal, "create", [row["id"]])
    return step_document(types.SimpleNamespace(**row))


async def update_step(
    session: AsyncSession,
    principal: Principal,
    step_id: str,
    data: StepUpdate,
    if_match: str | None,
) -> Step:
    goal, step = await _step_for_write(session, principal, step_id)
    check_if_match(if_match, step.version)
    changes = {name: getattr(data, name) for name in data.model_fields_set}
    if "position" in changes:
        changes["position"] = min(changes["position"], max(goal.steps_total - 1, 0))
    changes = {k: v for k, v in changes.items() if getattr(step, k) != v}
    if not changes:
        return step
    now = utcnow()
    if "position" in changes:
        old, new = step.position, changes["position"]
        if new < old:
            await _shift(session, goal, by=1, lowest=new, highest=old - 1, now=now, skip=step.id)
        else:
            await _shift(session, goal, by=-1, lowest=old + 1, highest=new, now=now, skip=step.id)
    done_delta = 0
    if "status" in changes:
        done_delta = 1 if changes["status"] == "done" else -1
        step.completed_at = now if done_delta == 1 else None
    for name, value in changes.items():
        setattr(step, name, value)
    step.version += 1
    step.updated_at = now
    await session.flush()
    if done_delta:
        counts = await _count(session, goal, done=done_delta, now=now)
        if done_delta > 0:
            await _celebrate(session, goal, counts, now)
            record_event(
                session, "step.completed", object_id=step.id, client_id=goal.client_id,
                shared=goal.visibility == "shared",
            )  # fmt: skip
    _changed(session, goal, [step.id])
    _log(session, principal, goal, "update", [step.id])
    return step


async def delete_step(
    session: AsyncSession, principal: Principal, step_id: str, if_match: str | None
) -> None:
    """Soft delete; the steps after it close the gap."""
    goal, step = await _step_for_write(session, principal, step_id)
    check_if_match(if_match, step.version)
    now = utcnow()
    step.deleted_at = now
    step.updated_at = now
    step.version += 1
    await session.flush()
    await _shift(session, goal, by=-1, lowest=step.position + 1, highest=None, now=now)
    counts = await _count(session, goal, total=-1, done=-1 if step.status == "done" else 0, now=now)
    await _celebrate(session, goal, counts, now)  # removing an open step can cross a milestone
    _changed(session, goal, [step.id], op="delete")
    _log(session, principal, goal, "delete", [step.id])
