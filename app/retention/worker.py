"""The retention sweep's background worker: every worker process of every server runs one.

Each sweeps every ``retention_sweep_seconds`` (jittered, the first time at a random point of
the first interval, so a fleet started together does not sweep all at once). Sweeps of several
workers at once are safe: on PostgreSQL they take different rows (``SKIP LOCKED``), on SQLite
they take turns, and a row already deleted is simply not found again."""

from __future__ import annotations

import asyncio
import random
from contextlib import suppress

import structlog

from app.core.clock import utcnow
from app.core.config import get_settings
from app.retention.service import sweep_once

log = structlog.get_logger("waypoint.retention")
JITTER = 0.2
# Between two batches: the write lock is left to requests for a moment.
BATCH_PAUSE_SECONDS = 0.05


async def sweep_retention(stop: asyncio.Event) -> None:
    """Sweep until ``stop`` is set, unless ``WAYPOINT_RETENTION_WORKER=false``."""
    settings = get_settings()
    if not settings.retention_worker:
        return
    interval = settings.retention_sweep_seconds
    wait = random.uniform(0, interval)
    while not await _stopped_within(stop, wait):
        try:
            await sweep_once(utcnow(), settings=settings, pause=BATCH_PAUSE_SECONDS)
        except Exception as exc:  # the database is away, say: the next sweep tries again
            log.warning("retention_sweep_error", error_type=type(exc).__name__)
        wait = interval * (1 + JITTER * random.random())


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    with suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
    return stop.is_set()
