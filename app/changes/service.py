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
from app.models import Change

CHANGE_LOG_LOCK = 0x5741_5950  # "WAYP"
_PENDING = "waypoint.pending_changes"
_COLUMNS = ("client_id", "object_type", "object_id", "goal_id", "op")
_LOCK_AND_INSERT = sa.text(
    "INSERT INTO changes (client_id, object_type, object_id, goal_id, op, at) "
    "SELECT rows.client_id, rows.object_type, rows.object_id, rows.goal_id, rows.op, :at "
    "FROM (SELECT pg_advisory_xact_lock(:key)) AS lock, "
    "unnest(CAST(:client_id AS uuid[]), CAST(:object_type AS text[]), "
    "CAST(:object_id AS uuid[]), CAST(:goal_id AS uuid[]), CAST(:op AS text[])) "
    "WITH ORDINALITY AS rows (client_id, object_type, object_id, goal_id, op, n) "
    "ORDER BY rows.n"
)


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
    ).select_from(lock)
    return (
        sa.insert(changes)
        .from_select(["client_id", "object_type", "object_id", "goal_id", "op", "at"], row)
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
) -> None:
    session.info.setdefault(_PENDING, []).append(
        {
            "client_id": client_id,
            "object_type": object_type,
            "object_id": object_id,
            "goal_id": goal_id,
            "op": op,
        }
    )


async def write_pending_changes(session: AsyncSession) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    now = utcnow()
    if session.bind.dialect.name == "postgresql":
        await session.execute(
            _LOCK_AND_INSERT,
            {
                "key": CHANGE_LOG_LOCK,
                "at": now,
                **{name: [change[name] for change in pending] for name in _COLUMNS},
            },
        )
        return
    await session.execute(sa.insert(Change), [{**change, "at": now} for change in pending])


async def write_changes(context: CommitContext) -> None:
    """Before-commit hook: the changes the request's services recorded."""
    await write_pending_changes(context.session)
