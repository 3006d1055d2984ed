"""Engines, sessions and the column types every table shares (the per-request transaction
is ``app.core.unit_of_work``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import weakref
from functools import lru_cache
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util.concurrency import await_, in_greenlet

from app.core.config import get_settings

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """Timezone-aware UTC timestamps on both databases (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def async_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if parsed.get_backend_name() == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database: {parsed.get_backend_name()}")


def sync_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return str(parsed.set(drivername="sqlite"))
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def ensure_sqlite_directory(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        from pathlib import Path

        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def configure_sqlite(sync_engine: sa.Engine) -> None:
    """WAL, foreign keys, busy timeout; explicit BEGIN so writes can take the lock first; and
    the writers of this process queue for that lock in arrival order (see ``_WriterTurns``)."""

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
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
        if _WriterTurns.held(conn.info):
            try:
                conn.exec_driver_sql("COMMIT")
            finally:
                _WriterTurns.give_back(conn.info)

    @event.listens_for(sync_engine, "rollback")
    def _on_rollback(conn: sa.Connection) -> None:
        # Rare (errors, refused writes): the next writer's BEGIN may wait a moment in SQLite's
        # busy handler for this ROLLBACK, which comes right after.
        _WriterTurns.give_back(conn.info)

    @event.listens_for(sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        _WriterTurns.give_back(record.info)  # whatever path a connection took back to the pool


class _WriterTurns:
    """SQLite has one writer at a time. Left to SQLite, the writers of a process that find the
    lock taken poll for it, sleeping longer each time: the lock sits idle while they sleep and
    the unlucky ones wait seconds (write p99 about 2 s at 50 connections). Instead each writer
    waits for an asyncio lock (first come, first served) from BEGIN IMMEDIATE to COMMIT, so
    only one writer per process ever asks SQLite. Other processes still meet SQLite's busy
    handler. Only transactions run from the event loop (inside SQLAlchemy's greenlet) queue."""

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
        await_(lock.acquire())
        info[cls.KEY] = lock

    @classmethod
    def held(cls, info: dict[Any, Any]) -> bool:
        return cls.KEY in info

    @classmethod
    def give_back(cls, info: dict[Any, Any]) -> None:
        lock = info.pop(cls.KEY, None)
        if lock is not None:
            lock.release()


@lru_cache
def get_engine() -> AsyncEngine:
    """The engine of write transactions (and of reads on SQLite)."""
    settings = get_settings()
    ensure_sqlite_directory(settings.database_url)
    url = async_url(settings.database_url)
    pool = {"pool_size": settings.db_pool_size, "max_overflow": settings.db_max_overflow}
    if url.startswith("sqlite"):
        engine = create_async_engine(url, **pool)
        configure_sqlite(engine.sync_engine)
    else:
        engine = create_async_engine(url, pool_pre_ping=True, **pool)
    return engine


@lru_cache
def get_read_engine() -> AsyncEngine:
    """The engine of GET requests. On PostgreSQL its own pool, whose connections stay in
    autocommit: under READ COMMITTED each statement sees its own snapshot either way, and
    BEGIN/COMMIT would cost two round trips per GET (switching a pooled connection to
    autocommit and back at each checkout measured about 0.5 ms of a goals page here).

    No ping at checkout (a round trip, 0.25 ms of CPU per GET here): a GET that finds its
    connection lost runs once more on a fresh pool instead (see ``UnitOfWorkRoute``). Writes
    keep the ping: they are not repeated."""
    engine = get_engine()
    if engine.dialect.name != "postgresql":
        return engine
    settings = get_settings()
    return create_async_engine(
        engine.url,
        isolation_level="AUTOCOMMIT",
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )


async def dispose_engines() -> None:
    for engine in {get_engine(), get_read_engine()}:
        await engine.dispose()


def forget_engines() -> None:
    """Drop the cached engines and session factories (after the settings changed)."""
    get_engine.cache_clear()
    get_read_engine.cache_clear()
    _sessionmakers.cache_clear()


def insert_unless_present(session: AsyncSession, table: sa.Table) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the session's database's own dialect."""
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


@lru_cache
def _sessionmakers() -> tuple[async_sessionmaker[AsyncSession], async_sessionmaker[AsyncSession]]:
    reader = async_sessionmaker(get_read_engine(), expire_on_commit=False, autoflush=False)
    writer = async_sessionmaker(
        get_engine().execution_options(sqlite_immediate=True),
        expire_on_commit=False,
        autoflush=False,
    )
    return reader, writer


def new_session(write: bool) -> AsyncSession:
    reader, writer = _sessionmakers()
    return (writer if write else reader)()


def lost_connection(exc: BaseException) -> bool:
    """The database connection broke under the statement (a restart, a failover)."""
    return isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated


async def get_session(request: Request) -> AsyncSession:
    """The request's session (opened by ``UnitOfWorkRoute``). ``async`` on purpose: FastAPI
    runs a plain ``def`` dependency in the thread pool, a hop that costs more than a query."""
    return request.state.session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
