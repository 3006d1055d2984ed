"""The one place where reads and writes of a client's data by someone else are recorded."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import Principal
from app.core.clock import utcnow
from app.core.unit_of_work import CommitContext
from app.models import AccessLogEntry, new_id

_PENDING = "waypoint.pending_access"


def record_access(
    session: AsyncSession,
    principal: Principal,
    *,
    client_id: uuid.UUID,
    action: str,
    object_type: str,
    object_ids: list[uuid.UUID] | tuple[uuid.UUID, ...],
) -> None:
    """Note an access to ``client_id``'s objects; the client's own accesses are not logged."""
    if principal.user_id == client_id or not object_ids:
        return
    pending = session.info.setdefault(_PENDING, [])
    now = utcnow()
    pending.extend(
        {
            "id": new_id(),
            "client_id": client_id,
            "actor_id": principal.user_id,
            "actor_role": str(principal.role),
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "at": now,
        }
        for object_id in object_ids
    )


def record_reads(
    session: AsyncSession,
    principal: Principal,
    *,
    object_type: str,
    objects: Iterable[tuple[uuid.UUID, uuid.UUID]],
) -> None:
    """Note the reads of a page of objects, given as ``(client_id, object_id)`` pairs."""
    by_client: dict[uuid.UUID, list[uuid.UUID]] = {}
    for client_id, object_id in objects:
        by_client.setdefault(client_id, []).append(object_id)
    for client_id, ids in by_client.items():
        record_access(
            session,
            principal,
            client_id=client_id,
            action="read",
            object_type=object_type,
            object_ids=ids,
        )


async def write_access_log(context: CommitContext) -> None:
    """Before-commit hook: the accesses the request noted."""
    session = context.session
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    await context.start_writing()
    await session.execute(sa.insert(AccessLogEntry), pending)
