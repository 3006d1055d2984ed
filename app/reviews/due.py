""" "Today" is the client's own today: review dates and due checks follow ``users.timezone``.

``now()`` is the one clock for reviews, due lists and the dashboard (tests freeze it).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable

import sqlalchemy as sa

from app.core.clock import local_date, utcnow
from app.models import Goal


def now() -> dt.datetime:
    return utcnow()


def next_review_due(
    reviewed_at: dt.datetime, timezone: str, review_every_days: int | None
) -> dt.date | None:
    """The review date in the client's timezone plus the goal's interval; null without one."""
    if not review_every_days:
        return None
    return local_date(reviewed_at, timezone) + dt.timedelta(days=review_every_days)


def due_clause(
    timezone_column: sa.ColumnElement[str],
    timezones: Iterable[str],
    at: dt.datetime,
    *,
    strictly_before: bool = False,
) -> sa.ColumnElement[bool]:
    """``goals.next_review_due <= the client's today`` (``<`` with ``strictly_before``).

    At any instant every timezone's date is one of at most three dates, so the clause is an OR
    of at most three ``timezone IN (...) AND next_review_due <= date`` groups, built from the
    timezones that can occur (``timezones``); ``timezone_column`` is the client's timezone.
    """
    by_date: dict[dt.date, list[str]] = defaultdict(list)
    for name in set(timezones):
        by_date[local_date(at, name)].append(name)
    if not by_date:
        return sa.false()
    groups = [
        sa.and_(
            timezone_column.in_(sorted(names)),
            Goal.next_review_due < day if strictly_before else Goal.next_review_due <= day,
        )
        for day, names in sorted(by_date.items())
    ]
    return sa.or_(*groups)


def clients_today(clients: Iterable[tuple[uuid.UUID, str]], at: dt.datetime) -> dict:
    """``{client_id: their local date}`` for ``(client_id, timezone)`` pairs."""
    return {client_id: local_date(at, tz) for client_id, tz in clients}
