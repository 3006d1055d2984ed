"""Database faults answer 503 problem+json with ``Retry-After``, not 500 and not a hang.

A refused or lost connection, a connect or statement timeout, an exhausted pool, a SQLite
database locked by another process and a transaction the database kept aborting (deadlock,
serialization failure: retried by the unit of work first) all mean "nothing was done, try
again shortly": a client or a load balancer can tell that from a bug (500). Anything else the
database reports (a broken statement, a constraint nobody expected) stays a 500.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
import structlog
from fastapi import FastAPI, Request

from app.core import metrics
from app.core.errors import ProblemResponse, problem_response

log = structlog.get_logger("waypoint.db")
RETRY_AFTER_SECONDS = 2  # a restart or failover usually takes a few seconds
# SQLSTATE classes and codes that mean the server cannot serve now (not: the statement is bad).
_UNAVAILABLE_CLASSES = ("08", "53")  # connection exception, insufficient resources
_UNAVAILABLE_CODES = {"57P01", "57P02", "57P03"}  # admin shutdown, crash, starting up
_STATEMENT_TIMEOUT = "57014"  # query_canceled: statement_timeout
# Deadlock, serialization failure: the unit of work already ran the request again a few times.
_ABORTED = {"40P01", "40001"}


class DatabaseBusy(Exception):
    """A SQLite writer waited its whole busy timeout for the write lock (in this process's
    writer queue or in SQLite's busy handler)."""


def fault_kind(exc: BaseException, request: Request | None = None) -> str | None:
    """The kind of database fault (a metric label), or None when it is not one."""
    if request is not None and getattr(request.state, "db_deadline_passed", False):
        return "timeout"
    if isinstance(exc, DatabaseBusy):
        return "locked"
    if isinstance(exc, sa.exc.TimeoutError):
        return "pool_timeout"
    if not isinstance(exc, sa.exc.DBAPIError):
        return None
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        text = str(orig)
        return "locked" if "locked" in text or "busy" in text else None
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate == _STATEMENT_TIMEOUT:
        return "timeout"
    if sqlstate in _ABORTED:
        return "aborted"
    if sqlstate and (sqlstate.startswith(_UNAVAILABLE_CLASSES) or sqlstate in _UNAVAILABLE_CODES):
        return "unavailable"
    if exc.connection_invalidated:
        return "connection_lost"
    if isinstance(exc, sa.exc.OperationalError) and sqlstate is None:
        return "connect"  # refused, connect timeout, server closed the connection
    return None


async def _database_error(request: Request, exc: Exception) -> ProblemResponse:
    kind = fault_kind(exc, request)
    if kind is None:
        raise exc  # a bug, not a fault: logged and answered 500 by the request middleware
    metrics.DB_ERRORS.labels(kind).inc()
    log.warning("database_unavailable", kind=kind, error_type=type(exc).__name__)
    return service_unavailable("The database is not available right now. Try again shortly.")


def service_unavailable(detail: str, retry_after: int = RETRY_AFTER_SECONDS) -> ProblemResponse:
    return problem_response(
        503,
        "service-unavailable",
        "Service unavailable",
        detail,
        headers={"Retry-After": str(retry_after)},
    )


def install_fault_handlers(app: FastAPI) -> None:
    app.add_exception_handler(sa.exc.SQLAlchemyError, _database_error)
    app.add_exception_handler(DatabaseBusy, _database_error)
