"""The change sequence: every create, update and delete of a client's data, in commit order.

Services call ``record_change``; the rows are written just before COMMIT. On PostgreSQL a
transaction-scoped advisory lock is taken first, so sequence numbers are handed out in the
order transactions commit (SQLite already serializes writers). A sync follower that reads
``seq > cursor`` therefore never skips a change that commits after it looked.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import before_commit, utcnow
from app.models import Change

CHANGE_LOG_LOCK = 0x5741_5950  # "WAYP"
_PENDING = "waypoint.pending_changes"


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
    if session.bind.dialect.name == "postgresql":
        await session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHANGE_LOG_LOCK}
        )
    now = utcnow()
    await session.execute(sa.insert(Change), [{**change, "at": now} for change in pending])


@before_commit
async def _write_changes(session: AsyncSession, _request: Request, _response: Response) -> None:
    await write_pending_changes(session)
