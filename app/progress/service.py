"""Progress of one goal: counts, the recent ratings, their trend and the chart's data."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.accesslog.service import record_access
from app.auth.dependencies import Principal
from app.goals.documents import percent_done
from app.models import Goal, Review, Step, User
from app.progress.chart import ChartData, render_progress_svg
from app.progress.schemas import ProgressOut, ReviewPoint
from app.progress.trend import REVIEW_POINTS, rating_trend
from app.reviews import due


async def _recent_reviews(session: AsyncSession, goal_id: uuid.UUID) -> list[sa.Row]:
    newest = (
        sa.select(Review.created_at, Review.rating, Review.gas_score)
        .where(Review.goal_id == goal_id)
        .order_by(Review.created_at.desc(), Review.id.desc())
        .limit(REVIEW_POINTS)
    )
    return list(reversed((await session.execute(newest)).all()))


def _log_read(session: AsyncSession, principal: Principal, goal: Goal) -> None:
    record_access(
        session,
        principal,
        client_id=goal.client_id,
        action="read",
        object_type="goal",
        object_ids=[goal.id],
    )


async def goal_progress(session: AsyncSession, principal: Principal, goal: Goal) -> ProgressOut:
    _log_read(session, principal, goal)
    reviews = await _recent_reviews(session, goal.id)
    return ProgressOut(
        goal_id=goal.id,
        steps_total=goal.steps_total,
        steps_done=goal.steps_done,
        percent=percent_done(goal.steps_done, goal.steps_total),
        reviews=[
            ReviewPoint(created_at=r.created_at, rating=r.rating, gas_score=r.gas_score)
            for r in reviews
        ],
        trend=rating_trend([r.rating for r in reviews]),  # type: ignore[arg-type]
    )


async def goal_progress_svg(session: AsyncSession, principal: Principal, goal: Goal) -> str:
    _log_read(session, principal, goal)
    reviews = await _recent_reviews(session, goal.id)
    steps = (
        await session.execute(
            sa.select(Step.completed_at).where(Step.goal_id == goal.id, Step.deleted_at.is_(None))
        )
    ).all()
    timezone = await session.scalar(sa.select(User.timezone).where(User.id == goal.client_id))
    return render_progress_svg(
        ChartData(
            title=goal.title,
            ratings=[(r.created_at, r.rating) for r in reviews],
            completions=[s.completed_at for s in steps if s.completed_at is not None],
            steps_total=len(steps),
            start=goal.created_at,
            end=due.now(),
            timezone=timezone or "UTC",
        )
    )
