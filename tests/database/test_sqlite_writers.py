"""SQLite: the writers of a process take turns in arrival order, from BEGIN IMMEDIATE to COMMIT,
and every way a write transaction ends gives the turn to the next one."""

import asyncio

import pytest
import sqlalchemy as sa

from app.core.engines import get_engine
from app.core.sessions import new_session
from app.core.sqlite_writers import _acquire_within, _WriterTurns
from tests.support.database import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's single writer")

INSERT = sa.text(
    "INSERT INTO changes (client_id, object_type, object_id, op, at) "
    "VALUES (:client, 'goal', :object, 'create', '2026-11-26 00:00:00')"
)


async def _write(order: list[str], name: str, *, commit: bool = True) -> None:
    session = new_session(write=True)
    try:
        await session.execute(INSERT, {"client": name, "object": name})
        order.append(name)
        if commit:
            await session.commit()
        else:
            await session.rollback()
    finally:
        await session.close()


class _WatchedTurns(asyncio.Lock):
    """The process's writer queue (``_WriterTurns``), telling the test each time a writer
    starts to wait in it."""

    def __init__(self) -> None:
        super().__init__()
        self.queued = asyncio.Event()

    async def acquire(self) -> bool:
        if self.locked():
            self.queued.set()
        return await super().acquire()


@pytest.fixture
async def turns(app_instance, monkeypatch) -> _WatchedTurns:
    lock = _WatchedTurns()
    monkeypatch.setitem(_WriterTurns._locks, asyncio.get_running_loop(), lock)
    return lock


@pytest.fixture
def begins(app_instance):
    """The BEGIN IMMEDIATE statements sent to SQLite."""
    sent: list[str] = []

    def listen(_conn, _cursor, statement, *_args):
        if statement == "BEGIN IMMEDIATE":
            sent.append(statement)

    engine = get_engine().sync_engine
    sa.event.listen(engine, "before_cursor_execute", listen)
    yield sent
    sa.event.remove(engine, "before_cursor_execute", listen)


async def test_writers_wait_for_the_one_in_its_transaction_and_follow_in_arrival_order(
    begins, turns, sync_engine
):
    holder = new_session(write=True)
    await holder.execute(INSERT, {"client": "first", "object": "first"})
    order: list[str] = []
    tasks = []
    for name in ("second", "third", "fourth"):  # each one arrives once the last one queued
        tasks.append(asyncio.create_task(_write(order, name)))
        await asyncio.wait_for(turns.queued.wait(), 10)
        turns.queued.clear()
    assert order == []
    assert len(begins) == 1  # the other three wait for their turn before asking SQLite
    await holder.commit()
    await holder.close()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert order == ["second", "third", "fourth"]
    assert len(begins) == 4
    with sync_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM changes")).scalar() == 4


@pytest.mark.parametrize("ending", ["rollback", "close", "error"])
async def test_every_end_of_a_write_gives_the_turn_back(app_instance, ending):
    holder = new_session(write=True)
    await holder.execute(INSERT, {"client": "holder", "object": "holder"})
    if ending == "rollback":
        await holder.rollback()
    elif ending == "close":
        pass  # closed below with its transaction still open
    else:
        with pytest.raises(sa.exc.IntegrityError):
            await holder.execute(INSERT, {"client": None, "object": "x"})
        await holder.rollback()
    await holder.close()
    order: list[str] = []
    await asyncio.wait_for(_write(order, "next"), 5)
    await asyncio.wait_for(_write(order, "after", commit=False), 5)
    await asyncio.wait_for(_write(order, "last"), 5)
    assert order == ["next", "after", "last"]


@pytest.mark.parametrize("statement", ["INSERT", "COMMIT"])
async def test_a_writer_cancelled_in_its_transaction_stops_and_gives_the_turn_back(
    app_instance, statement
):
    """A task cancelled while SQLite works for it (a worker stopped at shutdown, say) ends
    cancelled: the failed statement invalidates the connection, and neither the COMMIT nor
    the ROLLBACK that follows may replace the cancellation with another error (a worker's loop
    would take it for a database error and go on forever); the next writer gets its turn."""
    engine = get_engine().sync_engine
    order: list[str] = []

    fired: list[str] = []

    def cancel_once(_conn, _cursor, sent, *_args):
        if sent.startswith(statement) and not fired:
            fired.append(sent)
            asyncio.current_task().cancel()

    sa.event.listen(engine, "before_cursor_execute", cancel_once)
    try:
        cancelled = asyncio.create_task(_write(order, "cancelled"))
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(cancelled, 5)
        assert cancelled.cancelled()
        await asyncio.wait_for(_write(order, "next"), 5)
    finally:
        sa.event.remove(engine, "before_cursor_execute", cancel_once)
    assert fired and order[-1] == "next"


async def test_a_writer_cancelled_as_its_turn_comes_does_not_take_it():
    """The turn is given to a waiting writer and, in the same step, that writer is cancelled:
    it ends cancelled and the turn stays free (``asyncio.wait_for`` on Python 3.11 returned
    the turn instead, and the cancellation was lost)."""
    lock = asyncio.Lock()
    await lock.acquire()
    waiting = asyncio.create_task(_acquire_within(lock, 5))
    await asyncio.sleep(0)  # it waits in the queue
    lock.release()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not lock.locked()
