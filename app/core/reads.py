"""The hot read path: run one prebuilt SELECT and return its rows, as cheaply as each database
allows.

On SQLite the unit of work's driver (aiosqlite) hands every call to a thread and back; a page
of goals on an index costs SQLite less than those hops, so these reads run inline on a
plain ``sqlite3`` connection instead (WAL: readers never wait for the writer). One statement
is one consistent snapshot. PostgreSQL round trips are real I/O, so there the request's own
async connection is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import get_settings
from app.core.database_url import sync_url


@lru_cache
def sqlite_reader(url: str) -> sa.Engine:
    """A read-only engine on the same SQLite file (one per database URL)."""
    engine = sa.create_engine(sync_url(url), pool_size=5, max_overflow=10)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # each SELECT is its own read transaction
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(get_settings().sqlite_busy_timeout_ms)}")
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    return engine


async def fetch_page(
    session: AsyncSession, statement: sa.Select[Any], params: dict[str, Any]
) -> Sequence[Sequence[Any]]:
    """The rows of ``statement`` as plain tuples, for a caller that reads them by position.

    On PostgreSQL the statement, compiled once, runs on the request's own connection at the
    driver level: SQLAlchemy's result layer and its greenlet hop cost more here than the query
    (bench/README.md, "Figures behind the code's comments"). Listeners on the engine (SQL
    logging, the tests' statement counts) are still told about it.
    """
    if session.bind.dialect.name == "sqlite":
        return await fetch_rows(session, statement, params)
    connection = await session.connection()
    sql, constants = _compiled(statement, connection.dialect)
    sync_connection = connection.sync_connection
    assert sync_connection is not None
    sync_connection.dispatch.before_cursor_execute(sync_connection, None, sql, params, None, False)
    driver = (await connection.get_raw_connection()).driver_connection
    try:
        async with driver.cursor() as cursor:
            await cursor.execute(sql, {**constants, **params})
            return await cursor.fetchall()
    except connection.dialect.loaded_dbapi.Error as exc:
        # Told as SQLAlchemy tells it, so the unit of work knows a lost connection.
        lost = connection.dialect.is_disconnect(exc, driver, None)
        if lost:
            await connection.invalidate(exc)
        raise sa.exc.DBAPIError.instance(
            sql, params, exc, connection.dialect.loaded_dbapi.Error, connection_invalidated=lost
        ) from exc


@lru_cache(maxsize=256)
def _compiled(statement: sa.Select[Any], dialect: sa.Dialect) -> tuple[str, dict[str, Any]]:
    """The driver's SQL text and the values of the statement's own constants (``'shared'``
    in the visibility rule, say); parameters stay named and are adapted by the driver."""
    compiled = statement.compile(dialect=dialect)
    constants = {name: value for name, value in compiled.params.items() if value is not None}
    return compiled.string, constants


async def fetch_rows(
    session: AsyncSession, statement: sa.Executable, params: dict[str, Any]
) -> list[sa.Row[Any]]:
    bind = session.bind
    if bind.dialect.name == "sqlite":
        with sqlite_reader(bind.url.render_as_string(hide_password=False)).connect() as conn:
            return list(conn.execute(statement, params).all())
    connection = await session.connection()
    return list((await connection.execute(statement, params)).all())
