"""When a client next needs the scheduler: pure rules over the client's clock and goals.

Each active goal with a due date asks for the scheduler on up to two local dates, at the
client's reminder hour: its ``next_review_due`` (a review reminder, once per due date, unless
reminders are off) and the first date on which it has missed a whole review cycle (lagging
rule 1, judged whatever the settings, since the goal document shows it). The client's next
instant is the earliest of these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from app.reminders.clock import local_instant
from app.reminders.clock import today as local_today
from app.reminders.lagging import missed_cycle_from


@dataclass(frozen=True, slots=True)
class Clock:
    """A client's local time and reminder choices."""

    timezone: str
    reminder_hour: int
    review_reminders: bool


@dataclass(frozen=True, slots=True)
class GoalDates:
    """What the schedule reads of an active goal."""

    next_review_due: dt.date | None
    review_every_days: int | None
    reminded_due: dt.date | None
    lagging_missed: bool


def wanted_dates(goal: GoalDates, clock: Clock) -> list[dt.date]:
    if goal.next_review_due is None:
        return []
    dates = []
    if clock.review_reminders and goal.reminded_due != goal.next_review_due:
        dates.append(goal.next_review_due)
    if goal.review_every_days is not None and not goal.lagging_missed:
        dates.append(missed_cycle_from(goal.next_review_due, goal.review_every_days))
    return dates


def next_instant(goals: Iterable[GoalDates], clock: Clock) -> dt.datetime | None:
    """The earliest instant any of the goals needs the scheduler; None when none does."""
    dates = [day for goal in goals for day in wanted_dates(goal, clock)]
    if not dates:
        return None
    # One hour in one zone: a later date is never an earlier instant.
    return local_instant(min(dates), clock.reminder_hour, clock.timezone)


def last_reminder_date(at: dt.datetime, clock: Clock) -> dt.date:
    """The latest local date whose reminder hour has come by ``at``: what is due on it or
    before is due now."""
    day = local_today(at, clock.timezone)
    if local_instant(day, clock.reminder_hour, clock.timezone) <= at:
        return day
    return day - dt.timedelta(days=1)
