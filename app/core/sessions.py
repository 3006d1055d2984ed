"""Sessions: the factories of read and write sessions, and the request's session as a FastAPI
dependency (the per-request transaction is ``app.core.unit_of_work``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.engines import get_engine, get_read_engine

# A request with one of these methods gets a write session (on SQLite: BEGIN IMMEDIATE).
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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


def forget_engines() -> None:
    """Drop the cached engines and session factories (after the settings changed)."""
    get_engine.cache_clear()
    get_read_engine.cache_clear()
    _sessionmakers.cache_clear()


def insert_unless_present(session: AsyncSession, table: sa.Table) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the session's database's own dialect."""
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)
