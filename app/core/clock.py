"""The time every service and table default reads (timezone-aware UTC), and the calendar
date an instant falls on where a client lives."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def local_date(at: dt.datetime, timezone: str) -> dt.date:
    """The calendar date at instant ``at`` in ``timezone`` (unknown names count as UTC)."""
    try:
        zone = ZoneInfo(timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return at.astimezone(zone).date()
