"""Lagging behind: the three rules of docs/reminders.md as one pure function.

An active goal lags when

1. its ``next_review_due`` is more than ``review_every_days`` days before today (in the
   client's timezone): a whole review cycle was missed;
2. its two latest reviews both have a ``gas_score`` below 0;
3. its latest review's ``rating`` is at least 3 below the highest ``rating`` of the (up to)
   three reviews before it.

Rule 1 is about the calendar, rules 2 and 3 about the reviews, so callers keep the two parts
apart: a review judges all three; the scheduler, at the client's reminder hour, only rule 1.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

# Rules 2 and 3 look at the latest review and the three before it.
REVIEWS_NEEDED = 4
RATING_DROP = 3


@dataclass(frozen=True, slots=True)
class ReviewMark:
    """What the rules read of a review."""

    rating: int
    gas_score: int | None


@dataclass(frozen=True, slots=True)
class Verdict:
    missed_cycle: bool  # rule 1
    by_reviews: bool  # rule 2 or 3

    @property
    def lagging(self) -> bool:
        return self.missed_cycle or self.by_reviews


def judge(
    today: dt.date | None,
    next_review_due: dt.date | None,
    review_every_days: int | None,
    latest: Sequence[ReviewMark],
) -> Verdict:
    """The rules for one active goal. ``latest``: its reviews, newest first (only the first
    four matter); ``today``: the client's date, None to leave rule 1 out."""
    missed = (
        today is not None
        and next_review_due is not None
        and review_every_days is not None
        and (today - next_review_due).days > review_every_days
    )
    falling_gas = len(latest) >= 2 and all(
        mark.gas_score is not None and mark.gas_score < 0 for mark in latest[:2]
    )
    before = latest[1:REVIEWS_NEEDED]
    dropped = bool(before) and latest[0].rating <= max(m.rating for m in before) - RATING_DROP
    return Verdict(missed_cycle=missed, by_reviews=falling_gas or dropped)


def missed_cycle_from(next_review_due: dt.date, review_every_days: int) -> dt.date:
    """The first local date on which rule 1 holds, if no review comes before it."""
    return next_review_due + dt.timedelta(days=review_every_days + 1)
