"""Engines, sessions and the column types every table shares (the per-request transaction
is ``app.core.unit_of_work``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import sqlite3
import uuid
import weakref
from contextvars import ContextVar
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

from app.core import metrics
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
    """The SQLite file's directory exists and the file is readable by its owner only (0600):
    created so before SQLite opens it (SQLite gives the -wal and -shm files the database's
    mode), and narrowed when an older version created it wider."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        import contextlib
        import os
        from pathlib import Path

        path = Path(parsed.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        for suffix in ("", "-wal", "-shm"):
            sibling = Path(f"{path}{suffix}")
            if sibling.exists() and sibling.stat().st_mode & 0o077:
                sibling.chmod(0o600)


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
    handler. Only transactions run from the event loop (inside SQLAlchemy's greenlet) queue.

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
            await_(asyncio.wait_for(lock.acquire(), timeout))
        except TimeoutError:
            from app.core.faults import DatabaseBusy

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


@lru_cache
def get_engine() -> AsyncEngine:
    """The engine of write transactions (and of reads on SQLite)."""
    settings = get_settings()
    ensure_sqlite_directory(settings.database_url)
    url = async_url(settings.database_url)
    pool = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout_seconds,
    }
    if url.startswith("sqlite"):
        engine = create_async_engine(url, **pool)
        configure_sqlite(engine.sync_engine)
        watch_pool(engine.sync_engine, "write", ping=False)
    else:
        engine = create_async_engine(url, connect_args=postgres_connect_args(), **pool)
        # Writes ping their connection at checkout (they are not repeated, see
        # ``UnitOfWorkRoute``); the ping is ours rather than ``pool_pre_ping`` so that the
        # request's deadline covers it too.
        watch_pool(engine.sync_engine, "write", ping=True)
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
    reader = create_async_engine(
        engine.url,
        isolation_level="AUTOCOMMIT",
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        connect_args=postgres_connect_args(),
    )
    watch_pool(reader.sync_engine, "read", ping=False)
    return reader


def postgres_connect_args() -> dict[str, Any]:
    """libpq's connect timeout, and a statement timeout set for every session."""
    settings = get_settings()
    return {
        "connect_timeout": settings.db_connect_timeout_seconds,
        "options": f"-c statement_timeout={settings.db_statement_timeout_ms}",
    }


def request_deadline_seconds() -> float:
    """How long a request's database work may take before it is cut and answered 503: time
    to connect plus one statement's timeout (a frozen server answers neither)."""
    settings = get_settings()
    return settings.db_connect_timeout_seconds + settings.db_statement_timeout_ms / 1000


# The PostgreSQL connections the current request has checked out, so that its deadline can
# cut them (set by ``UnitOfWorkRoute``; SQLAlchemy's greenlets run in the request's context).
request_connections: ContextVar[list[Any] | None] = ContextVar(
    "waypointrequest_connections", default=None
)


def watch_pool(sync_engine: sa.Engine, name: str, *, ping: bool) -> None:
    """Note a request's connections for its deadline and, for writes on PostgreSQL, check a
    connection is alive before it is used; the pool's use is sampled by the metrics."""
    metrics.watch_pool(name, sync_engine.pool)

    @event.listens_for(sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        held = request_connections.get()
        if held is not None:
            held.append(dbapi_connection)
        if ping:
            try:
                sync_engine.dialect.do_ping(dbapi_connection)
            except Exception as exc:
                # The pool replaces the connection (up to twice) and forgets older ones.
                raise sa.exc.InvalidatePoolError("ping failed") from exc

    @event.listens_for(sync_engine, "checkin")
    def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
        held = request_connections.get()
        if held and dbapi_connection in held:
            held.remove(dbapi_connection)  # back in the pool: no longer this request's


class Deadlines:
    """Requests doing database work, and when each must be cut. A sweep every 250 ms cuts the
    late ones: a timer per request cost about 10 us of CPU here, this costs under 1 us."""

    SWEEP_SECONDS = 0.25
    running: dict[int, tuple[float, Request, list[Any]]] = {}
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def enter(cls, request: Request, held: list[Any]) -> None:
        loop = asyncio.get_running_loop()
        if cls._loop is not loop:
            cls._loop = loop
            loop.call_later(cls.SWEEP_SECONDS, cls._sweep, loop)
        due = loop.time() + request_deadline_seconds()
        cls.running[id(held)] = (due, request, held)

    @classmethod
    def leave(cls, held: list[Any]) -> None:
        cls.running.pop(id(held), None)

    @classmethod
    def _sweep(cls, loop: asyncio.AbstractEventLoop) -> None:
        if cls._loop is not loop:
            return  # another loop took over (tests run one per test)
        now = loop.time()
        for key, (due, request, held) in list(cls.running.items()):
            if due <= now:
                del cls.running[key]
                _cut_connections(request, held)
        loop.call_later(cls.SWEEP_SECONDS, cls._sweep, loop)


def _cut_connections(request: Request, connections: list[Any]) -> None:
    """The request's deadline passed: shut the sockets of the PostgreSQL connections it holds,
    so that a statement waiting for a frozen server fails now (as a lost connection) instead
    of whenever the server wakes up. Cancelling the task instead would make psycopg wait up to
    10 s more trying to cancel the query on that same frozen server."""
    for dbapi_connection in connections:
        driver = getattr(dbapi_connection, "driver_connection", None)
        pgconn = getattr(driver, "pgconn", None)
        if pgconn is None:
            continue
        try:
            fd = pgconn.socket
            sock = socket.socket(fileno=os.dup(fd))
        except Exception:  # already closed
            continue
        request.state.db_deadline_passed = True
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            sock.close()


async def dispose_engines() -> None:
    for engine in {get_engine(), get_read_engine()}:
        await engine.dispose()


def forget_engines() -> None:
    """Drop the cached engines and session factories (after the settings changed)."""
    get_engine.cache_clear()
    get_read_engine.cache_clear()
    _sessionmakers.cache_clear()


# -- SQLite: small writes inline ------------------------------------------------------------
# The unit of work's driver (aiosqlite) hands every call to its thread and back, three calls a
# statement (cursor, execute, close): about 0.25 ms of CPU a statement, more than SQLite's own
# work for a row or ten. The hottest writes' extra rows (the change feed's, the outbox's) run
# on the transaction's own ``sqlite3`` connection from the event loop instead.


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


def snapshot_session() -> AsyncSession:
    """A read-only session whose statements all see one snapshot (a long read such as an
    export: SQLite's deferred read transaction already does; on PostgreSQL REPEATABLE READ)."""
    engine = get_engine()
    if engine.dialect.name != "postgresql":
        return new_session(write=False)
    return AsyncSession(
        engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True),
        expire_on_commit=False,
        autoflush=False,
    )


def lost_connection(exc: BaseException) -> bool:
    """The database connection broke under the statement (a restart, a failover)."""
    return isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated


async def get_session(request: Request) -> AsyncSession:
    """The request's session (opened by ``UnitOfWorkRoute``). ``async`` on purpose: FastAPI
    runs a plain ``def`` dependency in the thread pool, a hop that costs more than a query."""
    return request.state.session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
