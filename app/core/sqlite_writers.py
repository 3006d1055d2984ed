"""SQLite's connection settings, and the queue in which this process's writers wait for its
single write lock."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.util.concurrency import await_, in_greenlet

from app.core.config import get_settings
from app.core.faults import DatabaseBusy


def configure_sqlite(sync_engine: sa.Engine) -> None:
    """WAL, foreign keys, busy timeout; explicit BEGIN so writes can take the lock first; and
    the writers of this process queue for that lock in arrival order (see ``_WriterTurns``)."""

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(get_settings().sqlite_busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # A write transaction that starts as a reader can fail to upgrade under WAL without
        # waiting (SQLITE_BUSY_SNAPSHOT); taking the write lock at BEGIN makes writers queue.
        if not conn.get_execution_options().get("sqlite_immediate", False):
            conn.exec_driver_sql("BEGIN")
            return
        _WriterTurns.take(conn.info)
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _WriterTurns.give_back(conn.info)
            raise

    @event.listens_for(sync_engine, "commit")
    def _on_commit(conn: sa.Connection) -> None:
        # The event comes before the driver's commit: COMMIT here, so the next writer starts
        # only once this one's data is on disk (the driver's commit then finds nothing to do).
        # Read ``info`` first: a COMMIT that fails (a cancelled task, say) invalidates the
        # connection, and reading ``conn.info`` then raises an error that would hide the first.
        info = conn.info
        if _WriterTurns.held(info):
            try:
                conn.exec_driver_sql("COMMIT")
            finally:
                _WriterTurns.give_back(info)

    @event.listens_for(sync_engine, "rollback")
    def _on_rollback(conn: sa.Connection) -> None:
        # Rare (errors, refused writes): the next writer's BEGIN may wait a moment in SQLite's
        # busy handler for this ROLLBACK, which comes right after. A connection invalidated by
        # a failed statement (a cancelled task, say) has no ``info`` to read any more: the
        # pool's checkin below gives its turn back.
        if not conn.invalidated:
            _WriterTurns.give_back(conn.info)

    @event.listens_for(sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        _WriterTurns.give_back(record.info)  # whatever path a connection took back to the pool


class _WriterTurns:
    """SQLite has one writer at a time. Left to SQLite, the writers of a process that find the
    lock taken poll for it, sleeping longer each time: the lock sits idle while they sleep and
    the unlucky ones wait seconds (bench/README.md, "Figures behind the code's comments").
    Instead each writer waits for an asyncio lock (first come, first served) from BEGIN
    IMMEDIATE to COMMIT, so only one writer per process ever asks SQLite. Other processes still
    meet SQLite's busy handler. Only transactions run from the event loop (inside SQLAlchemy's
    greenlet) queue.

    A writer waits in this queue at most the busy timeout, as it would in SQLite's busy
    handler: when another process holds the lock (a backup, a shell), the writers behind the
    first one give up with it instead of each waiting its own timeout in turn."""

    KEY = "waypoint_writer_turn"
    _locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
        weakref.WeakKeyDictionary()
    )

    @classmethod
    def take(cls, info: dict[Any, Any]) -> None:
        if not in_greenlet():
            return
        loop = asyncio.get_running_loop()
        lock = cls._locks.get(loop)
        if lock is None:
            lock = cls._locks[loop] = asyncio.Lock()
        if not lock.locked():
            await_(lock.acquire())  # free: no timer needed (the common case)
            info[cls.KEY] = lock
            return
        timeout = get_settings().sqlite_busy_timeout_ms / 1000
        try:
            await_(_acquire_within(lock, timeout))
        except TimeoutError:
            raise DatabaseBusy("waited the busy timeout for this process's writer queue") from None
        info[cls.KEY] = lock

    @classmethod
    def held(cls, info: dict[Any, Any]) -> bool:
        return cls.KEY in info

    @classmethod
    def give_back(cls, info: dict[Any, Any]) -> None:
        lock = info.pop(cls.KEY, None)
        if lock is not None:
            lock.release()


async def _acquire_within(lock: asyncio.Lock, seconds: float) -> None:
    """``lock.acquire()`` for at most ``seconds`` (TimeoutError). Not ``asyncio.wait_for``: on
    Python 3.11 it returns the result when the lock is granted just as the task is cancelled,
    and the cancellation is lost (the task goes on holding the turn)."""
    async with asyncio.timeout(seconds):
        await lock.acquire()
