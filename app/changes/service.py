"""The change sequence: every create, update and delete of a client's data, in commit order.

Services call ``record_change``; the rows are written just before COMMIT (on PostgreSQL a
new goal's row goes with the goal's own INSERT, see ``with_goal_change``). On PostgreSQL a
transaction-scoped advisory lock is taken first, so sequence numbers are handed out in the
order transactions commit (SQLite already serializes writers). A sync follower that reads
``seq > cursor`` therefore never skips a change that commits after it looked.

On PostgreSQL the lock and the rows are one statement (one round trip): the rows are the
cross join of the lock's one-row subquery with the changes, and ``seq``'s default
(``nextval``) is computed when a joined row is projected, so no number is drawn before the
lock is held.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import utcnow
from app.core.unit_of_work import CommitContext
from app.models import Change, Encouragement, Goal, Review, Step

CHANGE_LOG_LOCK = 0x5741_5950  # "WAYP"
_PENDING = "waypoint.pending_changes"
_EXPANSIONS = "waypoint.pending_change_expansions"
_COLUMNS = ("client_id", "object_type", "object_id", "goal_id", "op", "audience_id", "shared")
# ``shared`` when not given: a goal's, step's or review's row is for linked therapists when the
# goal is shared as this transaction leaves it (writers hold the goal's row lock until COMMIT).
_LOCK_AND_INSERT = sa.text(
    "INSERT INTO changes (client_id, object_type, object_id, goal_id, op, at, audience_id, shared) "
    "SELECT rows.client_id, rows.object_type, rows.object_id, rows.goal_id, rows.op, :at, "
    "rows.audience_id, COALESCE(rows.shared, rows.object_type <> 'encouragement' AND EXISTS "
    "(SELECT 1 FROM goals g WHERE g.id = rows.goal_id AND g.visibility = 'shared')) "
    "FROM (SELECT pg_advisory_xact_lock(:key)) AS lock, "
    "unnest(CAST(:client_id AS uuid[]), CAST(:object_type AS text[]), "
    "CAST(:object_id AS uuid[]), CAST(:goal_id AS uuid[]), CAST(:op AS text[]), "
    "CAST(:audience_id AS uuid[]), CAST(:shared AS boolean[])) "
    "WITH ORDINALITY AS rows (client_id, object_type, object_id, goal_id, op, audience_id, "
    "shared, n) "
    "ORDER BY rows.n"
)
_LOCK = sa.text("SELECT pg_advisory_xact_lock(:key)")


def with_goal_change(insert: sa.Insert) -> sa.Insert:
    """PostgreSQL: ``insert`` of one new goal (its parameters named after its columns) and the
    goal's ``upsert`` change as one statement: one round trip fewer on the hottest write. The
    change row is drawn under the change-log lock, exactly as the before-commit hook draws it,
    and the lock is held from here to COMMIT. Extra parameters: ``change_lock``
    (``CHANGE_LOG_LOCK``) and ``change_at``."""
    changes = Change.__table__
    lock = sa.select(sa.func.pg_advisory_xact_lock(sa.bindparam("change_lock"))).subquery("lock")
    row = sa.select(
        sa.bindparam("client_id", type_=changes.c.client_id.type),
        sa.literal("goal"),
        sa.bindparam("id", type_=changes.c.object_id.type),
        sa.bindparam("id", type_=changes.c.goal_id.type),
        sa.literal("upsert"),
        sa.bindparam("change_at", type_=changes.c.at.type),
        sa.bindparam("visibility", type_=sa.String()) == sa.literal("shared"),
    ).select_from(lock)
    return (
        sa.insert(changes)
        .from_select(
            ["client_id", "object_type", "object_id", "goal_id", "op", "at", "shared"], row
        )
        .add_cte(insert.cte("created"))
    )


def record_change(
    session: AsyncSession,
    *,
    client_id: uuid.UUID,
    object_type: str,
    object_id: uuid.UUID,
    op: str,
    goal_id: uuid.UUID | None = None,
    audience_id: uuid.UUID | None = None,
    shared: bool | None = None,
) -> None:
    """Note a change, written before COMMIT. ``shared`` None: decided from the goal then."""
    session.info.setdefault(_PENDING, []).append(
        {
            "client_id": client_id,
            "object_type": object_type,
            "object_id": object_id,
            "goal_id": goal_id,
            "op": op,
            "audience_id": audience_id,
            "shared": shared,
        }
    )


def record_goal_visibility_change(session: AsyncSession, goal_id: uuid.UUID) -> None:
    """The goal turned private or shared: the goal, its steps and reviews change for linked
    therapists (they leave or come back into their sight)."""
    session.info.setdefault(_EXPANSIONS, []).append(("visibility", goal_id))


def record_goal_encouragements_change(session: AsyncSession, goal_id: uuid.UUID) -> None:
    """The goal was deleted: the encouragements about it leave every reader's sight."""
    session.info.setdefault(_EXPANSIONS, []).append(("encouragements", goal_id))


def record_link_change(
    session: AsyncSession, therapist_id: uuid.UUID, client_id: uuid.UUID
) -> None:
    """A care link started or ended: everything of the client the therapist ever had in sight
    changes for them (the feed then answers upserts or deletions as the link now stands)."""
    session.info.setdefault(_EXPANSIONS, []).append(("link", therapist_id, client_id))


async def write_pending_changes(session: AsyncSession) -> None:
    pending = session.info.pop(_PENDING, None)
    expansions = session.info.pop(_EXPANSIONS, None)
    if not pending and not expansions:
        return
    now = utcnow()
    postgres = session.bind.dialect.name == "postgresql"
    if pending and postgres:
        await session.execute(
            _LOCK_AND_INSERT,
            {
                "key": CHANGE_LOG_LOCK,
                "at": now,
                **{name: [change[name] for change in pending] for name in _COLUMNS},
            },
        )
    elif pending:
        await _sqlite_insert(session, pending, now)
    elif postgres:
        await session.execute(_LOCK, {"key": CHANGE_LOG_LOCK})
    if pending:
        notes = [c["object_id"] for c in pending if c["object_type"] == "encouragement"]
        if notes:
            await session.execute(_author_rows(ENCOURAGEMENTS.c.id.in_(notes), now))
    for expansion in expansions or ():
        for statement in _expand(expansion, now):
            await session.execute(statement)


GOALS = Goal.__table__
STEPS = Step.__table__
REVIEWS = Review.__table__
ENCOURAGEMENTS = Encouragement.__table__
CHANGES = Change.__table__
_INSERT_COLUMNS = ["client_id", "object_type", "object_id", "goal_id", "op", "at"]
_INSERT_COLUMNS += ["audience_id", "shared"]


async def _sqlite_insert(session: AsyncSession, pending: list[dict], now: object) -> None:
    goal_ids = {c["goal_id"] for c in pending if c["shared"] is None and c["goal_id"]}
    shared_goals: set[uuid.UUID] = set()
    if goal_ids:
        shared_goals = set(
            await session.scalars(
                sa.select(GOALS.c.id).where(
                    GOALS.c.id.in_(goal_ids), GOALS.c.visibility == "shared"
                )
            )
        )
    rows = []
    for change in pending:
        shared = change["shared"]
        if shared is None:
            shared = change["object_type"] != "encouragement" and change["goal_id"] in shared_goals
        rows.append({**change, "shared": shared, "at": now})
    await session.execute(sa.insert(Change), rows)


def _author_rows(where: sa.ColumnElement[bool], now: object) -> sa.Insert:
    """A row for the therapist who wrote each of these encouragements (they see what they sent)."""
    e = ENCOURAGEMENTS.c
    return sa.insert(CHANGES).from_select(
        _INSERT_COLUMNS,
        sa.select(
            e.client_id, sa.literal("encouragement"), e.id, e.goal_id, sa.literal("upsert"),
            sa.literal(now, CHANGES.c.at.type), e.author_id, sa.false(),
        ).where(where, e.author_role == "therapist", e.author_id.is_not(None)),
    )  # fmt: skip


def _expand(expansion: tuple, now: object) -> list[sa.Insert]:
    at = sa.literal(now, CHANGES.c.at.type)
    upsert = sa.literal("upsert")
    kind = expansion[0]
    if kind == "visibility":
        goal_id = expansion[1]
        owner = sa.select(GOALS.c.client_id).where(GOALS.c.id == goal_id).scalar_subquery()
        parts = [
            sa.select(
                GOALS.c.client_id, sa.literal("goal"), GOALS.c.id, GOALS.c.id, upsert, at,
                sa.null(), sa.true(),
            ).where(GOALS.c.id == goal_id),
            sa.select(
                owner, sa.literal("step"), STEPS.c.id, STEPS.c.goal_id, upsert, at, sa.null(),
                sa.true(),
            ).where(STEPS.c.goal_id == goal_id, STEPS.c.deleted_at.is_(None)),
            sa.select(
                owner, sa.literal("review"), REVIEWS.c.id, REVIEWS.c.goal_id, upsert, at,
                sa.null(), sa.true(),
            ).where(REVIEWS.c.goal_id == goal_id),
        ]  # fmt: skip
        return [sa.insert(CHANGES).from_select(_INSERT_COLUMNS, part) for part in parts]
    if kind == "encouragements":
        e = ENCOURAGEMENTS.c
        on_goal = e.goal_id == expansion[1]
        return [
            sa.insert(CHANGES).from_select(
                _INSERT_COLUMNS,
                sa.select(
                    e.client_id, sa.literal("encouragement"), e.id, e.goal_id, upsert, at,
                    sa.null(), sa.false(),
                ).where(on_goal),
            ),
            _author_rows(on_goal, now),
        ]  # fmt: skip
    _, therapist_id, client_id = expansion
    c = CHANGES.c
    seen = (
        sa.select(
            c.client_id, c.object_type, c.object_id, sa.null(), upsert, at,
            sa.literal(therapist_id, c.audience_id.type), sa.false(),
        )
        .where(
            c.client_id == client_id,
            sa.or_(sa.and_(c.audience_id.is_(None), c.shared), c.audience_id == therapist_id),
        )
        .group_by(c.client_id, c.object_type, c.object_id)
    )  # fmt: skip
    return [sa.insert(CHANGES).from_select(_INSERT_COLUMNS, seen)]


async def write_changes(context: CommitContext) -> None:
    """Before-commit hook: the changes the request's services recorded."""
    await write_pending_changes(context.session)
