"""The database engines: one for writes (and SQLite's reads), one for PostgreSQL's reads."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.core import metrics
from app.core.config import get_settings
from app.core.database_url import async_url, ensure_sqlite_directory
from app.core.deadlines import request_connections
from app.core.sqlite_writers import configure_sqlite


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
    autocommit and back at each checkout cost more still).

    No ping at checkout (a round trip on every GET): a GET that finds its
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


async def dispose_engines() -> None:
    for engine in {get_engine(), get_read_engine()}:
        await engine.dispose()
