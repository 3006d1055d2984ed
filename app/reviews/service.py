"""Reviews: append-only check-ins that move the goal's progress and next review date."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.accesslog.service import record_access, record_reads
from app.auth.dependencies import Principal
from app.changes.service import record_change
from app.core.errors import NotFound
from app.core.pagination import decode_cursor, encode_cursor
from app.core.schemas import parse_object_id
from app.goals.access import linked_clients, readable_goals
from app.models import Goal, Review, User
from app.reminders import service as reminders
from app.reminders.lagging import ReviewMark
from app.reviews import due
from app.reviews.documents import REVIEW_COLUMNS, review_document
from app.reviews.schemas import ReviewCreate
from app.webhooks.events import record_event


async def add_review(
    session: AsyncSession,
    principal: Principal,
    goal: Goal,
    data: ReviewCreate,
    *,
    at: dt.datetime | None = None,
) -> Review:
    """Record a review and, in the same transaction, update the goal it is about.

    The goal row is locked (``GoalForReview``), so concurrent reviews of one goal apply one
    after the other and the goal ends with the values of the last one.
    """
    context = await reminders.review_context(session, goal.client_id, goal.id)
    at = at or due.now()  # ``at``: only for back-dated demo data
    review = Review(
        goal_id=goal.id,
        client_id=goal.client_id,
        author_id=principal.user_id,
        author_role=str(principal.role),
        rating=data.rating,
        gas_score=data.gas_score,
        achievement_status=data.achievement_status,
        reflection=data.reflection,
        next_steps=data.next_steps,
        created_at=at,
    )
    session.add(review)
    if data.achievement_status is not None:
        goal.achievement_status = data.achievement_status
    goal.latest_rating = data.rating
    if data.gas_score is not None:
        goal.latest_gas_score = data.gas_score
    goal.last_review_at = at
    goal.next_review_due = due.next_review_due(at, context.timezone, goal.review_every_days)
    goal.version += 1
    goal.updated_at = max(at, goal.updated_at)
    # Lagging alerts this review causes are in the feed when the POST answers.
    await reminders.judge_after_review(
        session, goal, ReviewMark(data.rating, data.gas_score), context, at
    )
    await session.flush()
    record_change(
        session,
        client_id=goal.client_id,
        object_type="review",
        object_id=review.id,
        op="upsert",
        goal_id=goal.id,
    )
    record_change(
        session,
        client_id=goal.client_id,
        object_type="goal",
        object_id=goal.id,
        op="upsert",
        goal_id=goal.id,
    )
    record_access(
        session,
        principal,
        client_id=goal.client_id,
        action="create",
        object_type="review",
        object_ids=[review.id],
    )
    record_event(
        session,
        "review.created",
        object_id=review.id,
        client_id=goal.client_id,
        shared=goal.visibility == "shared",
    )
    return review


async def list_reviews(
    session: AsyncSession,
    principal: Principal,
    goal: Goal,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A readable goal's reviews, newest first, keyset on ``(created_at, id)``."""
    query = sa.select(*REVIEW_COLUMNS).where(Review.goal_id == goal.id)
    if cursor:
        at, rid = decode_cursor(cursor, dt.datetime, uuid.UUID)
        query = query.where(sa.tuple_(Review.created_at, Review.id) < (at, rid))
    query = query.order_by(Review.created_at.desc(), Review.id.desc()).limit(limit + 1)
    rows = list((await session.execute(query)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id)
    record_access(
        session,
        principal,
        client_id=goal.client_id,
        action="read",
        object_type="review",
        object_ids=[r.id for r in rows],
    )
    return [review_document(r) for r in rows], next_cursor


async def get_review(session: AsyncSession, principal: Principal, review_id: str) -> Review:
    """One review, visible exactly when its goal is."""
    rid = parse_object_id(review_id)
    review = await session.scalar(
        sa.select(Review)
        .join(Goal, Goal.id == Review.goal_id)
        .where(Review.id == rid, readable_goals(principal))
    )
    if review is None:
        raise NotFound("No such review.")
    record_access(
        session,
        principal,
        client_id=review.client_id,
        action="read",
        object_type="review",
        object_ids=[review.id],
    )
    return review


async def _visible_timezones(session: AsyncSession, principal: Principal) -> list[str]:
    """The timezones of the clients whose goals the caller may see."""
    if principal.is_client:
        query = sa.select(User.timezone).where(User.id == principal.user_id)
    else:
        query = sa.select(User.timezone).where(User.id.in_(linked_clients(principal.user_id)))
    return list((await session.scalars(query.distinct())).all())


async def due_goals(
    session: AsyncSession,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[sa.Row], str | None]:
    """Active goals the caller may see whose review is due today or earlier in the client's
    own timezone, oldest due first, keyset on ``(next_review_due, id)``."""
    at = due.now()
    timezones = await _visible_timezones(session, principal)
    query = (
        sa.select(*Goal.__table__.c)
        .join(User, User.id == Goal.client_id)
        .where(
            readable_goals(principal),
            Goal.status == "active",
            Goal.next_review_due.is_not(None),
            due.due_clause(User.timezone, timezones, at),
        )
    )
    if cursor:
        day, gid = decode_cursor(cursor, dt.date, uuid.UUID)
        query = query.where(sa.tuple_(Goal.next_review_due, Goal.id) > (day, gid))
    query = query.order_by(Goal.next_review_due, Goal.id).limit(limit + 1)
    rows = list((await session.execute(query)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].next_review_due, rows[-1].id)
    record_reads(
        session,
        principal,
        object_type="goal",
        objects=((row.client_id, row.id) for row in rows),
    )
    return rows, next_cursor
