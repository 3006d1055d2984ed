"""The unit of work: one transaction per request, owned here.

The route class opens a session before the handler runs and commits it after the response is
built but before a byte is sent, so a failed commit can never turn into a 2xx. Services only
flush. Just before COMMIT the unit of work runs its before-commit hooks, an explicit ordered
list (``app.wiring.BEFORE_COMMIT``, handed over by ``create_app``): each takes a
``CommitContext`` and writes what the request's services noted in ``session.info``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.deadlines import Deadlines, request_connections
from app.core.errors import problem_responses
from app.core.metrics import RESPONSE_STARTED, TRANSACTION_RETRIES
from app.core.sessions import WRITE_METHODS, lost_connection, new_session

_KEEP_ON_ERROR = "waypoint.keep_on_error"
_AFTER_FAILURE = "waypoint.after_failure"
# PostgreSQL aborts one transaction of a deadlock (40P01) or of a conflict a serializable or
# repeatable-read transaction cannot resolve (40001). Nothing of it happened, so running the
# request again from its first statement is what the client would have done, only sooner.
# SQLite has no equivalent here: writers take the lock at BEGIN IMMEDIATE, so "database is
# locked" only comes after the whole busy timeout, and repeating that wait helps nobody.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
MAX_TRANSACTION_RETRIES = 3


@dataclass
class CommitContext:
    """What a before-commit hook may know of the work it closes."""

    session: AsyncSession
    method: str  # the request's method; "SCRIPT" for work done outside HTTP
    status_code: int
    response: Response | None = None  # None outside HTTP
    state: dict[str, Any] = field(default_factory=dict)  # shared by the request and its hooks

    async def start_writing(self) -> None:
        """Called by a hook about to write in a read-only request (a GET's access log).

        SQLite: the read snapshot ends first. Under WAL a reader cannot upgrade to a writer
        once someone else has committed, but a fresh transaction that starts by writing can.
        """
        if self.method == "GET" and self.session.bind.dialect.name == "sqlite":
            await self.session.commit()


BeforeCommit = Callable[[CommitContext], Awaitable[None]]


async def run_before_commit_hooks(context: CommitContext, hooks: Sequence[BeforeCommit]) -> None:
    for hook in hooks:
        await hook(context)


def keep_on_error(session: AsyncSession) -> None:
    """What was flushed so far counts even though the request ends in an error (a failed
    login is counted although the token endpoint answers 400)."""
    session.info[_KEEP_ON_ERROR] = True


def after_failure(session: AsyncSession, action: Callable[[], Awaitable[None]]) -> None:
    """Run ``action`` once the failing request's transaction has ended and its session is
    closed: work that must count although the request answers an error, done in a transaction
    of its own. Done inside the request instead, it would wait for the request's own write lock
    (SQLite's single writer, or rows the request holds) and never get it."""
    session.info.setdefault(_AFTER_FAILURE, []).append(action)


def commit_state(request: Request) -> dict[str, Any]:
    """The request's scratch that its before-commit hooks receive as ``CommitContext.state``."""
    return request.state.commit_state


def retryable_sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a deadlock or serialization failure, else None."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return None
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code if code in RETRYABLE_SQLSTATES else None


async def _run(request: Request, handler: Callable[[Request], Awaitable[Response]]) -> Response:
    write = request.method in WRITE_METHODS
    may_retry = not write
    retries_left = MAX_TRANSACTION_RETRIES
    hooks: Sequence[BeforeCommit] = request.app.state.before_commit
    while True:
        session = new_session(write=write)
        failure_actions: list[Callable[[], Awaitable[None]]] = []
        request.state.session = session
        request.state.commit_state = state = {}
        try:
            response = await handler(request)
            if response.status_code < 400:
                context = CommitContext(
                    session, request.method, response.status_code, response, state
                )
                await run_before_commit_hooks(context, hooks)
                await session.commit()
            else:
                await _end_failed(session)
            return response
        except BaseException as exc:
            failure_actions = session.info.pop(_AFTER_FAILURE, [])
            await _end_failed(session)
            passed = getattr(request.state, "db_deadline_passed", False)
            if may_retry and not passed and lost_connection(exc):
                may_retry = False
                await session.bind.dispose()  # its other connections are lost too
                continue
            sqlstate = retryable_sqlstate(exc)
            if sqlstate and retries_left and not passed and not request.scope.get(RESPONSE_STARTED):
                retries_left -= 1
                TRANSACTION_RETRIES.labels(sqlstate).inc()
                continue  # the body was read once and is kept by the request
            raise
        finally:
            await session.close()
            for action in failure_actions:
                await action()


async def _end_failed(session: AsyncSession) -> None:
    """An error answer: roll back, unless a service said its writes count anyway."""
    if session.info.pop(_KEEP_ON_ERROR, False):
        await session.commit()
    else:
        await session.rollback()


class UnitOfWorkRoute(APIRoute):
    """Every API route: one session per request, committed before the response leaves.

    A GET whose connection turns out to be lost is run once more, on a fresh pool: nothing of
    it was acknowledged, and reading again is harmless. Any request whose transaction was
    aborted by a deadlock or a serialization failure is run again from the start, at most
    ``MAX_TRANSACTION_RETRIES`` times, while nothing of its response has been sent
    (docs/hardening-concurrency.md).

    The database work of a request has a deadline (``request_deadline_seconds``): past it, the
    request's PostgreSQL connections are cut and it answers 503 (app/core/faults.py). Every
    route declares that 503, which also stands for a request shed by admission."""

    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        responses = {**problem_responses(503), **(kwargs.pop("responses", None) or {})}
        super().__init__(path, endpoint, responses=responses, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def run_in_transaction(request: Request) -> Response:
            held: list[Any] = []
            token = request_connections.set(held)
            Deadlines.enter(request, held)
            try:
                return await _run(request, handler)
            finally:
                Deadlines.leave(held)
                request_connections.reset(token)

        return run_in_transaction
