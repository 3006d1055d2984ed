"""Request deadlines: a request's database work that outlives its deadline is cut by shutting
its PostgreSQL connections' sockets, and answered 503."""

from __future__ import annotations

import asyncio
import os
import socket
from contextvars import ContextVar
from typing import Any

from fastapi import Request

from app.core.config import get_settings


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


class Deadlines:
    """Requests doing database work, and when each must be cut. A sweep every
    ``SWEEP_SECONDS`` cuts the late ones: cheaper than a timer per request (bench/README.md,
    "Figures behind the code's comments")."""

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
    of whenever the server wakes up. Cancelling the task instead would make psycopg wait
    longer still, trying to cancel the query on that same frozen server."""
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
