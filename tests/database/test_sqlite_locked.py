"""SQLite locked by another process (a backup, a stray ``sqlite3`` shell holding a write lock):
writes answer 503 + Retry-After after the busy timeout, never 500 and never a hang; reads go
on (WAL); once the lock is gone writes succeed again without a restart."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from sqlalchemy.engine import make_url

from app.core import metrics
from app.core.config import get_settings
from app.core.engines import dispose_engines
from app.core.sessions import forget_engines
from tests.support.database import BACKEND, DATABASE_URL
from tests.support.worlds import assert_problem

pytestmark = pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's write lock (SQLite only)")
BUSY_MS = 300


@pytest.fixture
async def short_busy_timeout(app_instance, monkeypatch):
    monkeypatch.setenv("WAYPOINT_SQLITE_BUSY_TIMEOUT_MS", str(BUSY_MS))
    get_settings.cache_clear()
    await dispose_engines()
    forget_engines()
    yield
    await dispose_engines()
    forget_engines()
    monkeypatch.delenv("WAYPOINT_SQLITE_BUSY_TIMEOUT_MS")
    get_settings.cache_clear()


@pytest.fixture
def write_lock_holder():
    """Another connection (as another process would) holding the database's write lock."""
    holder = sqlite3.connect(make_url(DATABASE_URL).database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield holder
    if holder.in_transaction:
        holder.execute("ROLLBACK")
    holder.close()


async def test_a_locked_database_answers_503_after_the_busy_timeout(
    short_busy_timeout, client, make_user, request
):
    patient = await make_user("client")
    before = await client.post("/v1/goals", json={"title": "Before"}, headers=patient.headers)
    assert before.status_code == 201
    locked = metrics.DB_ERRORS.labels("locked")._value.get()
    holder = request.getfixturevalue("write_lock_holder")

    began = time.perf_counter()
    refused = await client.post("/v1/goals", json={"title": "Locked"}, headers=patient.headers)
    waited = time.perf_counter() - began
    assert_problem(refused, 503, "service-unavailable")
    assert int(refused.headers["Retry-After"]) >= 1
    assert BUSY_MS / 1000 * 0.9 <= waited < 3

    # Several writers at once: each gives up after about one busy timeout, not one per writer
    # ahead of it in this process's writer queue.
    began = time.perf_counter()
    answers = await asyncio.gather(
        *(
            client.post("/v1/goals", json={"title": f"Locked {i}"}, headers=patient.headers)
            for i in range(5)
        )
    )
    assert [a.status_code for a in answers] == [503] * 5
    assert time.perf_counter() - began < 3
    assert metrics.DB_ERRORS.labels("locked")._value.get() >= locked + 6

    # Reads do not need the write lock (WAL).
    page = await client.get("/v1/goals", headers=patient.headers)
    assert page.status_code == 200
    assert [g["title"] for g in page.json()["items"]] == ["Before"]

    holder.execute("ROLLBACK")  # the other process lets go: writes work again, no restart
    after = await client.post("/v1/goals", json={"title": "After"}, headers=patient.headers)
    assert after.status_code == 201, after.text
    titles = {
        g["title"] for g in (await client.get("/v1/goals", headers=patient.headers)).json()["items"]
    }
    assert titles == {"Before", "After"}


def test_an_inline_write_on_a_locked_database_is_a_fault_not_a_bug(tmp_path):
    """The change rows and the outbox run on the transaction's ``sqlite3`` connection
    (``sqlite_inline``): a driver error is raised as SQLAlchemy's, so a lock held elsewhere
    maps to a 503 like any statement's, and a broken statement stays a bug."""
    import sqlalchemy as sa

    from app.core.faults import fault_kind
    from app.core.sqlite_inline import sqlite_inline

    path = tmp_path / "inline.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    writer = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        with pytest.raises(sa.exc.DBAPIError) as locked:
            sqlite_inline(writer, "INSERT INTO t (x) VALUES (?)", [(1,), (2,)])
        assert fault_kind(locked.value) == "locked"
        with pytest.raises(sa.exc.DBAPIError) as broken:
            sqlite_inline(writer, "SELECT y FROM t WHERE x = ?", (1,))
        assert fault_kind(broken.value) is None
        holder.execute("COMMIT")
        assert sqlite_inline(writer, "INSERT INTO t (x) VALUES (?)", [(1,), (2,)]).rowcount == 2
    finally:
        writer.close()
        holder.close()
