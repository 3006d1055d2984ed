"""Who may see and change which goal: decided here, once, as SQL that takes the caller.

Every read, list, sync and export of goals (and of the steps and reviews under them) filters
with these clauses, so what a caller may not see is simply not found (404, never 403).
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import Principal
from app.core.errors import NotFound, ValidationFailed
from app.core.schemas import parse_object_id
from app.models import CareLink, Goal, User

# A caller's user id: a value, or a ``bindparam`` in a statement built once.
CallerId = uuid.UUID | sa.BindParameter[uuid.UUID]


def linked_clients(therapist_id: CallerId) -> sa.Select[tuple[uuid.UUID]]:
    """The clients a therapist works with right now (ended links count for nothing)."""
    return sa.select(CareLink.client_id).where(
        CareLink.therapist_id == therapist_id, CareLink.ended_at.is_(None)
    )


def goals_readable_by(is_client: bool, caller: CallerId) -> sa.ColumnElement[bool]:
    """The rule itself, for a caller given as a value or as a bound parameter (so that hot
    statements can be built once and reused with ``caller`` bound per request)."""
    if is_client:
        return sa.and_(Goal.client_id == caller, Goal.deleted_at.is_(None))
    return sa.and_(
        Goal.client_id.in_(linked_clients(caller)),
        Goal.visibility == "shared",
        Goal.deleted_at.is_(None),
    )


def readable_goals(principal: Principal) -> sa.ColumnElement[bool]:
    """Own goals for a client; shared goals of linked clients for a therapist."""
    return goals_readable_by(principal.is_client, principal.user_id)


# Updating a goal and adding, changing or removing its steps and reviews: same as reading.
writable_goals = readable_goals


def deletable_goals(principal: Principal) -> sa.ColumnElement[bool]:
    """The owner may delete any of their goals; a therapist only the ones they created."""
    if principal.is_client:
        return readable_goals(principal)
    return sa.and_(readable_goals(principal), Goal.created_by == principal.user_id)


# Run for the goal row as it is read, before that row is locked: so a write under a goal holds
# its client's row (``FOR KEY SHARE``, what the foreign key checks of the write take anyway)
# first, then the goal's.
_client_row_held = (
    sa.select(User.id)
    .where(User.id == Goal.client_id)
    .with_for_update(read=True, key_share=True)
    .correlate(Goal)
    .exists()
)


async def goal_from_path(
    session: AsyncSession,
    principal: Principal,
    goal_id: str | uuid.UUID,
    *,
    clause: sa.ColumnElement[bool] | None = None,
    for_update: bool = False,
) -> Goal:
    """Load a goal the caller may see (or the stricter ``clause``); 404 otherwise.

    ``for_update`` locks the row on PostgreSQL so that step positions, counters and versions
    change one writer at a time (SQLite writers are already serialized), and holds the
    client's ``users`` row before it: the order in which an account's erasure takes them
    (docs/hardening-concurrency.md).
    """
    gid = goal_id if isinstance(goal_id, uuid.UUID) else parse_object_id(goal_id)
    query = sa.select(Goal).where(
        Goal.id == gid, clause if clause is not None else readable_goals(principal)
    )
    if for_update:
        query = query.where(_client_row_held).with_for_update(of=Goal)
    goal = (
        await session.execute(query.execution_options(populate_existing=True))
    ).scalar_one_or_none()
    if goal is None:
        raise NotFound("No such goal.")
    return goal


async def is_linked(session: AsyncSession, therapist_id: uuid.UUID, client_id: uuid.UUID) -> bool:
    found = await session.scalar(
        sa.select(CareLink.id).where(
            CareLink.therapist_id == therapist_id,
            CareLink.client_id == client_id,
            CareLink.ended_at.is_(None),
        )
    )
    return found is not None


async def client_for_write(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID | None
) -> uuid.UUID:
    """The client a new object is for: yourself as a client, a linked client as a therapist.

    Anything else is 404 on ``client_id``, whether the account exists or not; a therapist who
    names no client gets 422.
    """
    if principal.is_client:
        if client_id is not None and client_id != principal.user_id:
            raise NotFound("No such client.")
        return principal.user_id
    if client_id is None:
        raise ValidationFailed(
            "client_id is required when a therapist writes: the linked client it is for.",
            loc=["body", "client_id"],
        )
    if not await is_linked(session, principal.user_id, client_id):
        raise NotFound("No such client.")
    return client_id
