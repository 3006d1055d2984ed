"""The scheduler's statements: the schedule rows, the goals' reminder and lagging marks, and
the reviews the lagging rules read. Where the databases differ, both forms are here."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.reads import fetch_rows
from app.core.sqlite_inline import sqlite_inline, sqlite_transaction_connection, sqlite_value
from app.models import (
    Goal,
    NotificationSettings,
    ReminderSchedule,
    Review,
    User,
)
from app.reminders.lagging import REVIEWS_NEEDED, ReviewMark

SCHEDULES = ReminderSchedule.__table__
GOALS = Goal.__table__
REVIEWS = Review.__table__
SETTINGS = NotificationSettings.__table__
_ACTIVE = sa.and_(GOALS.c.status == "active", GOALS.c.deleted_at.is_(None))


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(SCHEDULES)


def _earlier(session: AsyncSession, a: Any, b: Any) -> sa.ColumnElement[dt.datetime]:
    """The earlier of two instants: PostgreSQL's ``least``, SQLite's two-argument ``min``
    (its stored instants sort as text)."""
    name = "least" if session.bind.dialect.name == "postgresql" else "min"
    return getattr(sa.func, name)(a, b, type_=SCHEDULES.c.next_at.type)


async def lower_schedule(session: AsyncSession, client_id: uuid.UUID, at: dt.datetime) -> None:
    """The client's next instant becomes ``at`` unless it is already earlier."""
    insert = _insert(session).values(client_id=client_id, next_at=at)
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=[SCHEDULES.c.client_id],
            set_={"next_at": _earlier(session, SCHEDULES.c.next_at, insert.excluded.next_at)},
        )
    )


@functools.cache
def _lower_at_hour(dialect: str) -> Any:
    """``lower_schedule_at_hour``'s statement, built once per dialect: the 24 candidate
    instants are parameters ``at0`` .. ``at23``, the hour is read once by a simple CASE."""
    hour = sa.func.coalesce(
        sa.select(SETTINGS.c.reminder_hour)
        .where(SETTINGS.c.user_id == sa.bindparam("client_id", type_=SETTINGS.c.user_id.type))
        .scalar_subquery(),
        9,
    )
    pick = sa.case(
        {h: sa.bindparam(f"at{h}", type_=SCHEDULES.c.next_at.type) for h in range(24)},
        value=hour,
    )
    row = sa.select(sa.bindparam("client_id", type_=SCHEDULES.c.client_id.type), pick)
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(SCHEDULES)
    insert = insert.from_select(["client_id", "next_at"], row)
    name = "least" if dialect == "postgresql" else "min"
    earlier = getattr(sa.func, name)(
        SCHEDULES.c.next_at, insert.excluded.next_at, type_=SCHEDULES.c.next_at.type
    )
    return insert.on_conflict_do_update(
        index_elements=[SCHEDULES.c.client_id], set_={"next_at": earlier}
    )


async def lower_schedule_at_hour(
    session: AsyncSession, client_id: uuid.UUID, instants: Sequence[dt.datetime]
) -> None:
    """``lower_schedule`` to ``instants[h]``, ``h`` the client's reminder hour, read in the
    same statement (a new goal's writer knows the client's timezone but not their hour)."""
    params: dict[str, Any] = {f"at{h}": at for h, at in enumerate(instants)}
    params["client_id"] = client_id
    if session.bind.dialect.name == "postgresql":
        await session.execute(_lower_at_hour("postgresql"), params)
        return
    # SQLite: on the transaction's own connection, like the change rows (a goal create's
    # extra statement; through aiosqlite it would be a thread hop).
    sql, names, defaults = _sqlite_lower_at_hour()
    db = await sqlite_transaction_connection(session)
    sqlite_inline(db, sql, tuple(sqlite_value(params.get(n, defaults.get(n))) for n in names))


@functools.cache
def _sqlite_lower_at_hour() -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """SQLite's text of ``_lower_at_hour``, its parameters' order and their fixed values."""
    compiled = _lower_at_hour("sqlite").compile(dialect=sqlite.dialect())
    return str(compiled), tuple(compiled.positiontup or ()), dict(compiled.params)


async def replace_schedule(
    session: AsyncSession, client_id: uuid.UUID, at: dt.datetime | None
) -> None:
    """The client's next instant is ``at`` (recomputed from every goal); None: nothing."""
    if at is None:
        await session.execute(sa.delete(SCHEDULES).where(SCHEDULES.c.client_id == client_id))
        return
    insert = _insert(session).values(client_id=client_id, next_at=at)
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=[SCHEDULES.c.client_id], set_={"next_at": insert.excluded.next_at}
        )
    )


async def lease_due(
    session: AsyncSession, at: dt.datetime, lease_until: dt.datetime, batch: int
) -> list[uuid.UUID]:
    """Claim up to ``batch`` clients due by ``at``: their next instant moves to
    ``lease_until``, so no other run takes them meanwhile (and a run that dies leaves them to
    be taken again then). PostgreSQL: ``FOR UPDATE SKIP LOCKED``, runs claim side by side;
    SQLite: the write transaction itself takes turns."""
    due = (
        sa.select(SCHEDULES.c.client_id)
        .where(SCHEDULES.c.next_at <= at)
        .order_by(SCHEDULES.c.next_at)
        .limit(batch)
    )
    if session.bind.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = await session.execute(
        sa.update(SCHEDULES)
        .where(SCHEDULES.c.client_id.in_(due.scalar_subquery()))
        .values(next_at=lease_until)
        .returning(SCHEDULES.c.client_id)
    )
    return list(claimed.scalars())


async def finish_schedule(
    session: AsyncSession,
    client_id: uuid.UUID,
    lease_until: dt.datetime,
    at: dt.datetime | None,
) -> None:
    """After a claimed client was handled: their next instant is ``at``, or earlier if a
    write lowered it meanwhile (then it no longer equals the lease)."""
    mine = sa.and_(SCHEDULES.c.client_id == client_id)
    if at is None:
        await session.execute(sa.delete(SCHEDULES).where(mine, SCHEDULES.c.next_at == lease_until))
        return
    kept = sa.case(
        (SCHEDULES.c.next_at == lease_until, sa.literal(at, SCHEDULES.c.next_at.type)),
        else_=_earlier(session, SCHEDULES.c.next_at, sa.literal(at, SCHEDULES.c.next_at.type)),
    )
    await session.execute(sa.update(SCHEDULES).where(mine).values(next_at=kept))


_GOAL_DATES = (
    GOALS.c.client_id,
    GOALS.c.next_review_due,
    GOALS.c.review_every_days,
    GOALS.c.reminded_due,
    GOALS.c.lagging_missed,
)


async def goal_dates(session: AsyncSession, client_ids: Sequence[uuid.UUID]) -> list[Any]:
    """What the schedule reads of the clients' active goals that have a due date."""
    query = sa.select(*_GOAL_DATES).where(
        GOALS.c.client_id.in_(list(client_ids)), _ACTIVE, GOALS.c.next_review_due.is_not(None)
    )
    return list((await session.execute(query)).all())


async def mark_reminded(session: AsyncSession, client_id: uuid.UUID, through: dt.date) -> list[Any]:
    """The client's active goals due by ``through`` and not yet reminded for that due date,
    now marked reminded: ``(id, next_review_due, title)`` of each. The mark is the claim: a goal is
    reminded for one due date once, whatever else runs."""
    result = await session.execute(
        sa.update(GOALS)
        .where(
            GOALS.c.client_id == client_id,
            _ACTIVE,
            GOALS.c.next_review_due <= through,
            sa.or_(GOALS.c.reminded_due.is_(None), GOALS.c.reminded_due != GOALS.c.next_review_due),
        )
        .values(reminded_due=GOALS.c.next_review_due)
        .returning(GOALS.c.id, GOALS.c.next_review_due, GOALS.c.title)
    )
    return sorted(result.all(), key=lambda row: (row.next_review_due, row.id))


async def maybe_missed(session: AsyncSession, client_id: uuid.UUID, through: dt.date) -> list[Any]:
    """Active goals of the client that may have missed a cycle by ``through`` (due before it,
    not marked yet): the lagging rule itself decides."""
    query = sa.select(
        GOALS.c.id,
        GOALS.c.next_review_due,
        GOALS.c.review_every_days,
        GOALS.c.lagging,
        GOALS.c.visibility,
    ).where(
        GOALS.c.client_id == client_id,
        _ACTIVE,
        GOALS.c.review_every_days.is_not(None),
        GOALS.c.next_review_due < through,
        sa.not_(GOALS.c.lagging_missed),
    )
    return list((await session.execute(query)).all())


async def mark_missed(
    session: AsyncSession,
    goal_id: uuid.UUID,
    next_review_due: dt.date,
    *,
    was_lagging: bool,
    at: dt.datetime,
) -> bool:
    """Rule 1 held for the goal as judged: mark it, unless a review moved its due date
    meanwhile. True when this made the goal lagging (it was not, in any rule), which is when
    its alerts go out."""
    still = sa.and_(
        GOALS.c.id == goal_id,
        _ACTIVE,
        GOALS.c.next_review_due == next_review_due,
        sa.not_(GOALS.c.lagging_missed),
    )
    if was_lagging:
        await session.execute(sa.update(GOALS).where(still).values(lagging_missed=True))
        return False
    result = await session.execute(
        sa.update(GOALS)
        .where(still, sa.not_(GOALS.c.lagging))
        .values(lagging_missed=True, lagging=True, version=GOALS.c.version + 1, updated_at=at)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


# A review's context in one statement: the client's clock and choices and their schedule's
# next instant (kind 0), and the goal's latest reviews (kind 1). The review path was one
# statement here before reminders (the timezone); read inline on SQLite (``fetch_rows``).
_USERS = User.__table__
_CLIENT = sa.bindparam("client_id", type_=_USERS.c.id.type)
_GOAL = sa.bindparam("goal_id", type_=GOALS.c.id.type)
_NONE_INT = sa.null().cast(sa.Integer())
_NONE_AT = sa.null().cast(SCHEDULES.c.next_at.type)
_CLOCK_ROW = (
    sa.select(
        sa.literal(0, sa.Integer()).label("kind"),
        _USERS.c.timezone,
        SETTINGS.c.reminder_hour,
        SETTINGS.c.review_reminders,
        SCHEDULES.c.next_at,
        _NONE_INT.label("rating"),
        _NONE_INT.label("gas_score"),
        _NONE_AT.label("created_at"),
    )
    .select_from(
        _USERS.outerjoin(SETTINGS, SETTINGS.c.user_id == _USERS.c.id).outerjoin(
            SCHEDULES, SCHEDULES.c.client_id == _USERS.c.id
        )
    )
    .where(_USERS.c.id == _CLIENT)
)
_LATEST = (
    sa.select(REVIEWS.c.rating, REVIEWS.c.gas_score, REVIEWS.c.created_at, REVIEWS.c.id)
    .where(REVIEWS.c.goal_id == _GOAL)
    .order_by(REVIEWS.c.created_at.desc(), REVIEWS.c.id.desc())
    .limit(REVIEWS_NEEDED - 1)
    .subquery()
)
_MARK_ROWS = sa.select(
    sa.literal(1, sa.Integer()).label("kind"),
    sa.null().cast(_USERS.c.timezone.type),
    _NONE_INT,
    sa.null().cast(sa.Boolean()),
    _NONE_AT,
    _LATEST.c.rating,
    _LATEST.c.gas_score,
    _LATEST.c.created_at,
)
_REVIEW_CONTEXT = sa.union_all(_CLOCK_ROW, _MARK_ROWS)


@dataclass(frozen=True, slots=True)
class ReviewContext:
    timezone: str
    reminder_hour: int
    review_reminders: bool
    next_at: dt.datetime | None  # the client's stored next instant
    earlier: list[ReviewMark]  # the goal's latest reviews, newest first


async def review_context(
    session: AsyncSession, client_id: uuid.UUID, goal_id: uuid.UUID
) -> ReviewContext:
    rows = await fetch_rows(session, _REVIEW_CONTEXT, {"client_id": client_id, "goal_id": goal_id})
    clock = next((row for row in rows if row[0] == 0), None)
    marks = sorted((row for row in rows if row[0] == 1), key=lambda row: row[7], reverse=True)
    next_at = clock[4] if clock is not None else None
    if isinstance(next_at, str):  # SQLite through a compound SELECT: the stored text
        next_at = dt.datetime.fromisoformat(next_at).replace(tzinfo=dt.UTC)
    return ReviewContext(
        timezone=(clock[1] if clock is not None else None) or "UTC",
        reminder_hour=9 if clock is None or clock[2] is None else int(clock[2]),
        review_reminders=True if clock is None or clock[3] is None else bool(clock[3]),
        next_at=next_at,
        earlier=[ReviewMark(row[5], row[6]) for row in marks],
    )


async def due_backlog(session: AsyncSession, at: dt.datetime) -> tuple[int, dt.datetime | None]:
    """How many clients are due by ``at``, and the oldest instant among them."""
    row = (
        await session.execute(
            sa.select(sa.func.count(), sa.func.min(SCHEDULES.c.next_at)).where(
                SCHEDULES.c.next_at <= at
            )
        )
    ).one()
    return int(row[0]), row[1]
