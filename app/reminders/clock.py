"""Local reminder times as instants, following each zone's rules (``zoneinfo``).

A local date and hour name an instant as a wall clock in the client's timezone reads it. Two
cases need a rule: an hour that does not exist that day (the clocks jump forward over it)
fires at the next valid time, the first instant after the jump; an hour that occurs twice (the
clocks fall back) fires once, at its first occurrence. ``fold=0`` gives both: for a time in
the gap it applies the offset from before the jump, which lands as far past the jump as the
wall time was past its start (02:00 in a gap from 02:00 to 03:00 is 03:00); for a repeated
time it picks the first.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from app.core.clock import local_date

UTC = dt.UTC


def zone(name: str) -> ZoneInfo:
    """The client's zone; an unknown name counts as UTC, as for due dates."""
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def local_instant(day: dt.date, hour: int, timezone: str) -> dt.datetime:
    """The instant (UTC) at which ``hour`` o'clock of ``day`` comes in ``timezone``."""
    wall = dt.datetime(day.year, day.month, day.day, hour, tzinfo=zone(timezone), fold=0)
    return wall.astimezone(UTC)


def today(at: dt.datetime, timezone: str) -> dt.date:
    return local_date(at, timezone)
