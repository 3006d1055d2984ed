"""Reminders and lagging, as the writes that move a client's goals see them: a new goal or a
changed due date lowers the client's next instant; a review judges the goal's lagging rules
in its own transaction; changed settings or a changed timezone recompute the instant."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.changes.service import record_change
from app.reminders import repository, withdrawals
from app.reminders.alerts import alert_lagging
from app.reminders.clock import local_instant
from app.reminders.clock import today as local_today
from app.reminders.lagging import ReviewMark, judge
from app.reminders.recipients import recipients
from app.reminders.schedule import Clock, GoalDates, next_instant, wanted_dates


async def clock_of(session: AsyncSession, client_id: uuid.UUID) -> Clock:
    """The client's timezone and reminder choices (UTC and the defaults if gone)."""
    person = (await recipients(session, [client_id])).get(client_id)
    if person is None:
        return Clock("UTC", 9, True)
    return Clock(person.timezone, person.reminder_hour, person.review_reminders)


def _dates(goal: Any) -> GoalDates:
    return GoalDates(
        goal.next_review_due, goal.review_every_days, goal.reminded_due, goal.lagging_missed
    )


async def goal_due_changed(
    session: AsyncSession, client_id: uuid.UUID, goal: Any, timezone: str
) -> None:
    """A goal was created or its due date, interval or status changed: the client's next
    instant comes no later than what this goal needs (at the client's reminder hour, read by
    the same statement). An earlier instant than needed is harmless: the scheduler finds
    nothing due and sets the right one."""
    if getattr(goal, "status", "active") != "active" or goal.next_review_due is None:
        return
    dates = wanted_dates(_dates(goal), Clock(timezone, 0, True))
    if not dates:
        return
    day = min(dates)
    instants = [local_instant(day, hour, timezone) for hour in range(24)]
    await repository.lower_schedule_at_hour(session, client_id, instants)


async def reschedule_client(session: AsyncSession, client_id: uuid.UUID) -> None:
    """Recompute the client's next instant from all their goals (settings or timezone
    changed)."""
    clock = await clock_of(session, client_id)
    goals = await repository.goal_dates(session, [client_id])
    await repository.replace_schedule(
        session, client_id, next_instant((_dates(g) for g in goals), clock)
    )


async def review_context(
    session: AsyncSession, client_id: uuid.UUID, goal_id: uuid.UUID
) -> repository.ReviewContext:
    """What a new review needs to know: the client's clock and the goal's latest reviews."""
    return await repository.review_context(session, client_id, goal_id)


async def judge_after_review(
    session: AsyncSession,
    goal: Any,
    new: ReviewMark,
    context: repository.ReviewContext,
    at: dt.datetime,
) -> None:
    """A review was added to ``goal`` (its row locked and already updated): the lagging rules
    judged on its latest reviews and today's date, alerts when it starts lagging, and the
    client's next instant for the new due date when that is sooner than the stored one."""
    verdict = judge(
        local_today(at, context.timezone), goal.next_review_due, goal.review_every_days,
        [new, *context.earlier],
    )  # fmt: skip
    was = goal.lagging
    goal.lagging_reviews = verdict.by_reviews
    goal.lagging_missed = verdict.missed_cycle
    goal.lagging = goal.status == "active" and verdict.lagging
    if goal.lagging and not was:
        await alert_lagging(
            session, client_id=goal.client_id, goal_id=goal.id,
            shared=goal.visibility == "shared", at=at,
        )  # fmt: skip
    if goal.status != "active" or goal.next_review_due is None:
        return
    clock = Clock(context.timezone, context.reminder_hour, context.review_reminders)
    dates = wanted_dates(_dates(goal), clock)
    if dates:
        instant = local_instant(min(dates), clock.reminder_hour, clock.timezone)
        if context.next_at is None or instant < context.next_at:
            await repository.lower_schedule(session, goal.client_id, instant)


async def status_changed(session: AsyncSession, goal: Any, at: dt.datetime) -> bool:
    """A goal's status changed: only an active goal lags. True when it starts lagging again
    (back to active with its rules still holding), which alerts as a new episode."""
    was = goal.lagging
    goal.lagging = goal.status == "active" and (goal.lagging_reviews or goal.lagging_missed)
    if goal.lagging and not was:
        await alert_lagging(
            session, client_id=goal.client_id, goal_id=goal.id,
            shared=goal.visibility == "shared", at=at,
        )  # fmt: skip
    return goal.lagging != was


def goal_changed(
    session: AsyncSession, client_id: uuid.UUID, goal_id: uuid.UUID, shared: bool
) -> None:
    """The scheduler changed a goal's document (its ``lagging``): the sync feed's change."""
    record_change(
        session, client_id=client_id, object_type="goal", object_id=goal_id, op="upsert",
        goal_id=goal_id, shared=shared,
    )  # fmt: skip


async def goal_hidden(
    session: AsyncSession, client_id: uuid.UUID, goal_id: uuid.UUID, *, from_therapists: bool
) -> None:
    """A goal turned private (``from_therapists``) or was deleted: its lagging alerts not yet
    delivered stop for those who can no longer see it. The notifications already in their
    feeds stay; the goal answers them 404."""
    await withdrawals.withdraw_lagging_events(
        session, client_id, goal_id=goal_id, keep_client=from_therapists
    )
    for withdraw in (withdrawals.withdraw_lagging_deliveries, withdrawals.withdraw_lagging_mail):
        await withdraw(
            session, client_id, goal_id=goal_id, recipient=None, keep_client=from_therapists
        )


async def link_ended(session: AsyncSession, client_id: uuid.UUID, therapist_id: uuid.UUID) -> None:
    """A care link ended: the therapist's lagging alerts about the client not yet delivered
    (webhooks, e-mail) stop."""
    for withdraw in (withdrawals.withdraw_lagging_deliveries, withdrawals.withdraw_lagging_mail):
        await withdraw(session, client_id, goal_id=None, recipient=therapist_id, keep_client=True)
