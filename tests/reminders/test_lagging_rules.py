"""The three lagging rules as one pure function, against a reference written out plainly
from the rules' own words, over random review histories and dates."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from app.reminders.lagging import ReviewMark, judge


def reference(
    today: dt.date,
    next_review_due: dt.date | None,
    review_every_days: int | None,
    history: list[tuple[int, int | None]],
) -> bool:
    """``history``: the reviews oldest first, as ``(rating, gas_score)``."""
    # 1. next_review_due more than review_every_days days before today.
    if next_review_due is not None and review_every_days is not None:
        days_before_today = (today - next_review_due).days
        if days_before_today > review_every_days:
            return True
    # 2. The two latest reviews both have a gas_score below 0.
    if len(history) >= 2:
        last, second_last = history[-1], history[-2]
        if (
            last[1] is not None
            and second_last[1] is not None
            and last[1] < 0
            and second_last[1] < 0
        ):
            return True
    # 3. The latest rating at least 3 below the highest of the (up to) three reviews before.
    if len(history) >= 2:
        before = history[-4:-1]
        best = max(rating for rating, _ in before)
        if best - history[-1][0] >= 3:
            return True
    return False


reviews = st.lists(
    st.tuples(st.integers(0, 10), st.one_of(st.none(), st.integers(-2, 2))), max_size=8
)
dates = st.dates(dt.date(2026, 1, 1), dt.date(2028, 12, 31))


@settings(max_examples=2000, deadline=None)
@given(
    today=dates,
    due=st.one_of(st.none(), dates),
    every=st.one_of(st.none(), st.integers(1, 365)),
    history=reviews,
)
def test_judge_agrees_with_the_reference(today, due, every, history):
    latest = [ReviewMark(rating, gas) for rating, gas in reversed(history)]
    verdict = judge(today, due, every, latest)
    assert verdict.lagging == reference(today, due, every, history)
    # Its parts: the calendar alone, and the reviews alone.
    assert verdict.missed_cycle == reference(today, due, every, [])
    assert verdict.by_reviews == reference(today, None, None, history)


@given(history=reviews, today=dates)
def test_only_the_four_latest_reviews_matter(history, today):
    latest = [ReviewMark(rating, gas) for rating, gas in reversed(history)]
    assert judge(today, None, None, latest) == judge(today, None, None, latest[:4])


def test_the_rules_at_their_edges():
    day = dt.date(2027, 3, 10)
    week = 7
    # Rule 1: exactly one cycle overdue is not yet a missed cycle; one day more is.
    assert not judge(day, day - dt.timedelta(days=7), week, []).lagging
    assert judge(day, day - dt.timedelta(days=8), week, []).missed_cycle
    # Rule 2: both below 0; a missing score or a 0 is not.
    assert judge(None, None, None, [ReviewMark(5, -1), ReviewMark(5, -2)]).by_reviews
    assert not judge(None, None, None, [ReviewMark(5, -1), ReviewMark(5, 0)]).lagging
    assert not judge(None, None, None, [ReviewMark(5, -1), ReviewMark(5, None)]).lagging
    assert not judge(None, None, None, [ReviewMark(5, -1)]).lagging
    # Rule 3: 3 below the best of the three before; the fifth review back does not count.
    marks = [ReviewMark(4, None), ReviewMark(6, None), ReviewMark(7, None), ReviewMark(5, None)]
    assert judge(None, None, None, marks).by_reviews
    assert not judge(None, None, None, [ReviewMark(5, None), ReviewMark(7, None)]).lagging
    old_best = [ReviewMark(4, None), *(ReviewMark(6, None) for _ in range(3)), ReviewMark(10, None)]
    assert not judge(None, None, None, old_best).lagging
