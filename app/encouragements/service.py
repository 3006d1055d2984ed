"""Encouragements: notes from a therapist to a linked client, or from a client to themself."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.accesslog.service import record_access, record_reads
from app.auth.dependencies import Principal
from app.changes.service import record_change
from app.core.clock import utcnow
from app.core.errors import NotFound
from app.core.pagination import decode_cursor, encode_cursor
from app.core.schemas import parse_object_id
from app.encouragements.documents import ENCOURAGEMENT_COLUMNS, encouragement_document
from app.encouragements.schemas import EncouragementCreate
from app.goals.access import client_for_write, goal_from_path, linked_clients, readable_goals
from app.models import Encouragement, Goal, Step
from app.webhooks.events import record_event


async def _client_of_subject(
    session: AsyncSession, principal: Principal, data: EncouragementCreate
) -> uuid.UUID | None:
    """A therapist's note about a goal or step goes to that goal's client."""
    if data.goal_id is not None:
        return (await goal_from_path(session, principal, data.goal_id)).client_id
    if data.step_id is not None:
        client_id = await session.scalar(
            sa.select(Step.client_id)
            .join(Goal, Goal.id == Step.goal_id)
            .where(Step.id == data.step_id, Step.deleted_at.is_(None), readable_goals(principal))
        )
        if client_id is None:
            raise NotFound("No such step.")
        return client_id
    return None


async def send(
    session: AsyncSession, principal: Principal, data: EncouragementCreate
) -> Encouragement:
    """A note to a client; its goal and step must be that client's and readable by the sender."""
    client_id = data.client_id
    if client_id is None and principal.is_therapist:
        client_id = await _client_of_subject(session, principal, data)
    client_id = await client_for_write(session, principal, client_id)
    goal_id = data.goal_id
    if data.step_id is not None:
        step_goal = await session.scalar(
            sa.select(Step.goal_id)
            .join(Goal, Goal.id == Step.goal_id)
            .where(
                Step.id == data.step_id,
                Step.deleted_at.is_(None),
                Step.client_id == client_id,
                readable_goals(principal),
            )
        )
        if step_goal is None or (goal_id is not None and goal_id != step_goal):
            raise NotFound("No such step.")
        goal_id = step_goal
    elif goal_id is not None:
        goal = await goal_from_path(session, principal, goal_id)
        if goal.client_id != client_id:
            raise NotFound("No such goal.")
    at = utcnow()
    note = Encouragement(
        client_id=client_id,
        author_id=principal.user_id,
        author_role=str(principal.role),
        goal_id=goal_id,
        step_id=data.step_id,
        message=data.message,
        kind="note",
        created_at=at,
        updated_at=at,
    )
    session.add(note)
    await session.flush()
    record_change(
        session,
        client_id=client_id,
        object_type="encouragement",
        object_id=note.id,
        op="upsert",
        goal_id=goal_id,
    )
    record_access(
        session,
        principal,
        client_id=client_id,
        action="create",
        object_type="encouragement",
        object_ids=[note.id],
    )
    record_event(
        session,
        "encouragement.created",
        object_id=note.id,
        client_id=client_id,
        shared=False,
        author_id=principal.user_id,
    )
    return note


def readable_encouragements(principal: Principal) -> sa.ColumnElement[bool]:
    """A client's received notes and celebrations; a therapist's sent notes to clients they are
    still linked with. Those on a deleted goal are gone for everyone."""
    return encouragements_readable_by(principal.is_client, principal.user_id)


def encouragements_readable_by(is_client: bool, caller: Any) -> sa.ColumnElement[bool]:
    """The rule itself, for a caller given as a value or as a bound parameter (statements
    built once, such as the sync feed's)."""
    not_on_deleted_goal = sa.or_(
        Encouragement.goal_id.is_(None),
        sa.exists().where(Goal.id == Encouragement.goal_id, Goal.deleted_at.is_(None)),
    )
    if is_client:
        return sa.and_(Encouragement.client_id == caller, not_on_deleted_goal)
    return sa.and_(
        Encouragement.author_id == caller,
        Encouragement.client_id.in_(linked_clients(caller)),
        not_on_deleted_goal,
    )


async def list_encouragements(
    session: AsyncSession,
    principal: Principal,
    *,
    goal_id: uuid.UUID | None,
    unread: bool | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    query = sa.select(*ENCOURAGEMENT_COLUMNS).where(readable_encouragements(principal))
    if goal_id is not None:
        query = query.where(Encouragement.goal_id == goal_id)
    if unread is True:
        query = query.where(Encouragement.read_at.is_(None))
    elif unread is False:
        query = query.where(Encouragement.read_at.is_not(None))
    if cursor:
        at, eid = decode_cursor(cursor, dt.datetime, uuid.UUID)
        query = query.where(sa.tuple_(Encouragement.created_at, Encouragement.id) < (at, eid))
    query = query.order_by(Encouragement.created_at.desc(), Encouragement.id.desc())
    rows = list((await session.execute(query.limit(limit + 1))).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id)
    record_reads(
        session,
        principal,
        object_type="encouragement",
        objects=((row.client_id, row.id) for row in rows),
    )
    return [encouragement_document(r) for r in rows], next_cursor


async def mark_read(session: AsyncSession, principal: Principal, raw_id: str) -> Encouragement:
    """The recipient marks a note read; a second call keeps the first ``read_at``."""
    eid = parse_object_id(raw_id)
    if not principal.is_client:
        raise NotFound("No such encouragement.")
    visible = sa.and_(Encouragement.id == eid, readable_encouragements(principal))
    at = utcnow()
    updated = await session.execute(
        sa.update(Encouragement)
        .where(visible, Encouragement.read_at.is_(None))
        .values(read_at=at, updated_at=at, version=Encouragement.version + 1)
        .execution_options(synchronize_session=False)
    )
    note = await session.scalar(
        sa.select(Encouragement).where(visible).execution_options(populate_existing=True)
    )
    if note is None:
        raise NotFound("No such encouragement.")
    if updated.rowcount:
        record_change(
            session,
            client_id=note.client_id,
            object_type="encouragement",
            object_id=note.id,
            op="upsert",
            goal_id=note.goal_id,
        )
    return note
