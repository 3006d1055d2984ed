"""The unit of work runs a request again when the database aborted its transaction with a
deadlock or a serialization failure, a bounded number of times, counted in ``/metrics``, and
never once its response has started."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from fastapi import Response
from prometheus_client import REGISTRY
from starlette.requests import Request

import app.goals.service as goals_service
from app.core.metrics import RESPONSE_STARTED
from app.core.unit_of_work import MAX_TRANSACTION_RETRIES, _run


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def aborted(sqlstate: str) -> sa.exc.DBAPIError:
    """What SQLAlchemy raises when PostgreSQL aborts a statement with ``sqlstate``."""
    error = sa.exc.IntegrityError if sqlstate.startswith("23") else sa.exc.OperationalError
    return error("INSERT INTO goals ...", {}, _DriverError(sqlstate))


def retries(sqlstate: str) -> float:
    labels = {"sqlstate": sqlstate}
    return REGISTRY.get_sample_value("waypoint_transaction_retries_total", labels) or 0.0


def post_request() -> Request:
    app = SimpleNamespace(state=SimpleNamespace(before_commit=[]))
    scope = {"type": "http", "method": "POST", "path": "/v1/goals", "headers": [], "app": app}
    return Request(scope)


def failing(times: int, sqlstate: str, *, start_response: bool = False):
    """A handler that fails ``times`` times with ``sqlstate``, then answers 201."""
    calls: list[int] = []

    async def handler(request: Request) -> Response:
        calls.append(1)
        if start_response:
            request.scope[RESPONSE_STARTED] = True
        if len(calls) <= times:
            raise aborted(sqlstate)
        return Response(status_code=201)

    return handler, calls


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
async def test_an_aborted_transaction_is_run_again_and_counted(app_instance, sqlstate):
    handler, calls = failing(2, sqlstate)
    before = retries(sqlstate)
    response = await _run(post_request(), handler)
    assert response.status_code == 201
    assert len(calls) == 3
    assert retries(sqlstate) == before + 2


async def test_retries_are_bounded(app_instance):
    handler, calls = failing(MAX_TRANSACTION_RETRIES + 1, "40P01")
    before = retries("40P01")
    with pytest.raises(sa.exc.OperationalError):
        await _run(post_request(), handler)
    assert len(calls) == MAX_TRANSACTION_RETRIES + 1
    assert retries("40P01") == before + MAX_TRANSACTION_RETRIES


async def test_no_retry_once_the_response_has_started(app_instance):
    handler, calls = failing(1, "40P01", start_response=True)
    before = retries("40P01")
    with pytest.raises(sa.exc.OperationalError):
        await _run(post_request(), handler)
    assert len(calls) == 1
    assert retries("40P01") == before


async def test_other_database_errors_are_not_retried(app_instance):
    handler, calls = failing(1, "23505")
    with pytest.raises(sa.exc.IntegrityError):
        await _run(post_request(), handler)
    assert len(calls) == 1


async def test_a_create_that_deadlocked_once_is_stored_once(client, make_user, monkeypatch):
    """Through the whole app: the body read for the first attempt serves the second, and the
    first attempt's work is gone with its transaction."""
    patient = await make_user("client")
    insert = goals_service.insert_goal_with_change
    attempts: list[str] = []

    async def deadlock_once(session, row, announce=None):
        attempts.append(row["title"])
        await insert(session, row, announce)
        if len(attempts) == 1:
            raise aborted("40P01")

    monkeypatch.setattr(goals_service, "insert_goal_with_change", deadlock_once)
    before = retries("40P01")
    r = await client.post("/v1/goals", json={"title": "twice tried"}, headers=patient.headers)
    assert r.status_code == 201, r.text
    assert attempts == ["twice tried", "twice tried"]
    assert retries("40P01") == before + 1
    listed = (await client.get("/v1/goals", headers=patient.headers)).json()["items"]
    assert [goal["title"] for goal in listed] == ["twice tried"]


async def test_a_request_aborted_every_time_answers_503(client, make_user, monkeypatch):
    """Retries used up: nothing was stored, so the answer says "try again shortly"."""
    patient = await make_user("client")

    async def always_deadlocked(session, row, announce=None):
        raise aborted("40P01")

    monkeypatch.setattr(goals_service, "insert_goal_with_change", always_deadlocked)
    before = retries("40P01")
    r = await client.post("/v1/goals", json={"title": "never"}, headers=patient.headers)
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == "2"
    assert retries("40P01") == before + MAX_TRANSACTION_RETRIES
    monkeypatch.undo()
    listed = (await client.get("/v1/goals", headers=patient.headers)).json()["items"]
    assert listed == []
