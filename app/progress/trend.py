"""Pure rules for progress: the percentage and the trend of ratings."""

from __future__ import annotations

from collections.abc import Sequence

REVIEW_POINTS = 100  # the most recent reviews a progress answer and chart show
TREND_WINDOW = 3
TREND_THRESHOLD = 1.0

TREND_DESCRIPTION = f"""`trend` compares recent ratings with the ones just before them. With
the ratings r oldest to newest and n of them: null when n < 2; otherwise
k = min({TREND_WINDOW}, n // 2), d = mean(last k ratings) - mean(the k ratings before those);
`improving` when d >= {TREND_THRESHOLD:g}, `worsening` when d <= -{TREND_THRESHOLD:g}, else
`steady`. (2 reviews: the last against the one before; 6 or more: the last 3 against the 3
before.) `reviews` holds the most recent {REVIEW_POINTS} reviews, oldest first; the trend is
computed from them. `percent` is floor(100 * steps_done / steps_total), 0 without steps."""


def rating_trend(ratings: Sequence[int]) -> str | None:
    """See ``TREND_DESCRIPTION``; ``ratings`` oldest first."""
    n = len(ratings)
    if n < 2:
        return None
    k = min(TREND_WINDOW, n // 2)
    recent = ratings[-k:]
    before = ratings[-2 * k : -k]
    difference = sum(recent) / k - sum(before) / k
    if difference >= TREND_THRESHOLD:
        return "improving"
    if difference <= -TREND_THRESHOLD:
        return "worsening"
    return "steady"
