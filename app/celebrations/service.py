"""Celebrations: the system's own encouragements when a goal's steps first reach half and all
done, and when the goal first becomes ``completed``.

Each is written at most once per goal, whatever toggling or concurrency happens: the writer
first *claims* the goal's mark with a conditional UPDATE (``... WHERE mark IS NULL AND the
milestone holds``) and only the one whose UPDATE hit a row inserts the encouragement.
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.changes.service import record_change
from app.models import Encouragement, Goal, new_id
from app.webhooks.events import record_event

GOALS = Goal.__table__
ENCOURAGEMENTS = Encouragement.__table__

HALF_STEPS = sa.and_(GOALS.c.steps_total > 0, GOALS.c.steps_done * 2 >= GOALS.c.steps_total)
ALL_STEPS = sa.and_(GOALS.c.steps_total > 0, GOALS.c.steps_done >= GOALS.c.steps_total)
COMPLETED = GOALS.c.status == "completed"


def _half_message(title: str) -> str:
    return (
        f"Halfway there on \u201c{title}\u201d! Half of your steps are done. "
        "Take a moment to notice how far you have come."
    )


def _all_steps_message(title: str) -> str:
    return (
        f"Every step of \u201c{title}\u201d is done. That took persistence, "
        "and you showed up for it. Well done!"
    )


def _completed_message(title: str) -> str:
    return (
        f"You completed \u201c{title}\u201d. This is worth celebrating: "
        "you set out to do something and you did it."
    )


async def _claim(
    session: AsyncSession,
    goal_id: uuid.UUID,
    mark: sa.Column[dt.datetime],
    milestone: sa.ColumnElement[bool],
    now: dt.datetime,
) -> bool:
    result = await session.execute(
        sa.update(GOALS)
        .where(GOALS.c.id == goal_id, mark.is_(None), milestone)
        .values({mark.key: now})
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


async def _celebrate(
    session: AsyncSession,
    *,
    goal_id: uuid.UUID,
    client_id: uuid.UUID,
    message: str,
    now: dt.datetime,
) -> None:
    encouragement_id = new_id()
    await session.execute(
        sa.insert(ENCOURAGEMENTS).values(
            id=encouragement_id,
            client_id=client_id,
            author_id=None,
            author_role=None,
            goal_id=goal_id,
            step_id=None,
            message=message,
            kind="celebration",
            read_at=None,
            version=1,
            created_at=now,
            updated_at=now,
        )
    )
    # The system's own note: only its client hears of it.
    record_event(
        session,
        "encouragement.created",
        object_id=encouragement_id,
        client_id=client_id,
        shared=False,
    )
    record_change(
        session,
        client_id=client_id,
        object_type="encouragement",
        object_id=encouragement_id,
        op="upsert",
        goal_id=goal_id,
    )


async def celebrate_steps(
    session: AsyncSession,
    *,
    goal_id: uuid.UUID,
    client_id: uuid.UUID,
    title: str,
    steps_done: int,
    steps_total: int,
    now: dt.datetime,
) -> None:
    """After the goal's step counters changed. ``steps_done``/``steps_total`` are only a hint
    that spares the UPDATEs when no milestone is near; the claim re-checks the row itself.

    Reaching every step at once (a one-step goal) sends one celebration, not two: the
    half-way mark is claimed silently so that it never fires later.
    """
    if steps_total == 0 or steps_done * 2 < steps_total:
        return
    half = await _claim(session, goal_id, GOALS.c.celebrated_half_at, HALF_STEPS, now)
    every = steps_done >= steps_total and await _claim(
        session, goal_id, GOALS.c.celebrated_all_steps_at, ALL_STEPS, now
    )
    if every:
        message = _all_steps_message(title)
    elif half:
        message = _half_message(title)
    else:
        return
    await _celebrate(session, goal_id=goal_id, client_id=client_id, message=message, now=now)


async def celebrate_completed(
    session: AsyncSession,
    *,
    goal_id: uuid.UUID,
    client_id: uuid.UUID,
    title: str,
    now: dt.datetime,
) -> None:
    """After a goal's status became ``completed``: celebrated the first time only."""
    if await _claim(session, goal_id, GOALS.c.celebrated_completed_at, COMPLETED, now):
        await _celebrate(
            session,
            goal_id=goal_id,
            client_id=client_id,
            message=_completed_message(title),
            now=now,
        )
