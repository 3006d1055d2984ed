"""The retention sweep, rule by rule and batch by batch, and the sync feed's check that a
cursor still points into the retained history."""

from __future__ import annotations

import asyncio
import datetime as dt

import structlog
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import metrics
from app.core.config import Settings, get_settings
from app.core.errors import CursorExpired
from app.core.sessions import new_session
from app.retention import repository
from app.retention.rules import RULES, Rule

log = structlog.get_logger("waypoint.retention")

DELETED = Counter(
    "waypoint_retention_deleted",
    "Rows the retention sweep deleted, per table (docs/retention.md).",
    ("table",),
)
LAST_SWEEP = metrics.gauge(
    "waypoint_retention_last_sweep_timestamp_seconds",
    "When a retention sweep of any worker last went through every rule (Unix time).",
    mode="max",
)

# A sweep deletes at most this many batches of one rule, then goes on to the next: a backlog
# (the first sweep after an upgrade, a year of rows) is worked off over several sweeps.
MAX_BATCHES_PER_RULE = 100


async def sweep_rule(
    rule: Rule, now: dt.datetime, settings: Settings, *, pause: float = 0.0
) -> int:
    """Delete what ``rule`` selects as of ``now``, one short transaction per batch, until a
    batch comes back short. How many rows were deleted."""
    deleted = 0
    for _ in range(MAX_BATCHES_PER_RULE):
        async with new_session(write=True) as session:
            rows = await repository.delete_batch(
                session, rule, rule.expired(settings, now), settings.retention_batch_size
            )
            if rule.after_delete is not None:
                await rule.after_delete(session, rows, now)
            await session.commit()
        DELETED.labels(rule.name).inc(len(rows))
        deleted += len(rows)
        if len(rows) < settings.retention_batch_size:
            break
        # Between batches the write lock is free for requests (SQLite has one for everyone).
        await asyncio.sleep(pause)
    return deleted


async def sweep_once(
    now: dt.datetime, *, settings: Settings | None = None, pause: float = 0.0
) -> dict[str, int]:
    """One sweep of every rule as of ``now``: rows deleted per table."""
    settings = settings or get_settings()
    counts: dict[str, int] = {}
    for rule in RULES:
        deleted = await sweep_rule(rule, now, settings, pause=pause)
        counts[rule.name] = counts.get(rule.name, 0) + deleted
    LAST_SWEEP.set(now.timestamp())
    if any(counts.values()):
        log.info("retention_swept", **{name: n for name, n in counts.items() if n})
    return counts


async def refuse_expired_cursor(session: AsyncSession, tx: int, seq: int) -> None:
    """410 ``cursor-expired`` when change rows after the cursor's ``(tx, seq)`` may have been
    deleted: the follower could miss a deletion and must start over with a full sync.

    Called after the page's reads: a sweep that deleted rows the page would have served had
    committed its horizon before them, so it is seen here."""
    horizon = await repository.sync_horizon(session)
    if horizon is not None and (tx, seq) < horizon:
        raise CursorExpired(
            "This cursor points before the history the server keeps; start over without a "
            "cursor (a full sync)."
        )
