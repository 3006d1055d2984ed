"""Waiting for a condition instead of sleeping and hoping: "this transaction is now blocked"
is something the database (PostgreSQL) or the app's writer queue (SQLite) can be asked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import sqlalchemy as sa

from app.core.sqlite_writers import _WriterTurns


async def until(
    condition: Callable[[], bool], seconds: float = 10.0, what: str = "", every: float = 0.001
) -> None:
    """Poll ``condition`` every ``every`` seconds until it holds; fail after ``seconds``. (A
    poll, not an event: the state it looks at has none, or lives in another connection.)"""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what or condition}"
        await asyncio.sleep(every)


def _lock_waiters(sync_engine: sa.Engine) -> int:
    """Backends of this database waiting for a lock held by another transaction."""
    with sync_engine.connect() as conn:
        return conn.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )


def _queued_sqlite_writers() -> int:
    """Writers of this event loop waiting for the process's SQLite write turn (the queue of
    ``app/core/sqlite_writers.py``; its lock's waiters are the only sign of them)."""
    lock = _WriterTurns._locks.get(asyncio.get_running_loop())
    waiters = getattr(lock, "_waiters", None) or ()
    return sum(not waiter.done() for waiter in waiters)


async def until_blocked(sync_engine: sa.Engine, count: int = 1) -> None:
    """Until ``count`` transactions wait for a lock: on PostgreSQL in the database, on SQLite
    in this process's writer queue."""
    if sync_engine.dialect.name == "postgresql":
        blocked = lambda: _lock_waiters(sync_engine) >= count  # noqa: E731
        await until(blocked, what="a transaction blocked", every=0.01)
    else:
        await until(lambda: _queued_sqlite_writers() >= count, what="a writer queued")
