"""SQLite: small writes run inline on the transaction's own ``sqlite3`` connection.

The unit of work's driver (aiosqlite) hands every call to its thread and back, three calls a
statement (cursor, execute, close), which costs more CPU than SQLite's own work for a row or
ten (bench/README.md, "Figures behind the code's comments"). The hottest writes' extra rows
(the change feed's, the outbox's) run on the transaction's own ``sqlite3`` connection from the
event loop instead.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession


async def sqlite_transaction_connection(session: AsyncSession) -> sqlite3.Connection:
    """SQLite: the ``sqlite3`` connection of the session's transaction (begun if it was not).
    SQLAlchemy's aiosqlite dialect opens it with ``check_same_thread=False``; nothing else runs
    on it meanwhile (a session's work is awaited in order)."""
    raw = await (await session.connection()).get_raw_connection()
    return raw.driver_connection._conn  # aiosqlite offers no public accessor


def sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy stores it on SQLite: a uuid as 32 hex digits, a timestamp as naive
    UTC text (``UTCDateTime``), a bool as 0 or 1."""
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


def sqlite_inline(
    db: sqlite3.Connection, sql: str, params: tuple[Any, ...] | list[tuple[Any, ...]]
) -> sqlite3.Cursor:
    """``sql`` on ``db``, once with a tuple of parameters or once per tuple of a list
    (``executemany``); a driver error is raised as SQLAlchemy raises it, so the unit of work and
    the fault handlers tell a locked database from a bug as for any statement."""
    try:
        if isinstance(params, list):
            return db.executemany(sql, params)
        return db.execute(sql, params)
    except sqlite3.Error as exc:
        raise sa.exc.DBAPIError.instance(sql, params, exc, sqlite3.Error) from exc
