"""The change sequence behind /v1/sync: one row per change, numbered in commit order."""

import asyncio
import uuid

import sqlalchemy as sa

from app.auth.dependencies import Principal
from app.auth.scopes import Role
from app.core.sessions import new_session
from app.core.unit_of_work import CommitContext, run_before_commit_hooks
from app.goals.schemas import GoalCreate
from app.goals.service import create_goal
from app.wiring import BEFORE_COMMIT
from tests.support.syncing import link
from tests.support.waiting import until_blocked
from tests.support.worlds import new_goal


def _changes(sync_engine) -> list[tuple]:
    with sync_engine.connect() as conn:
        return [
            tuple(str(v) if isinstance(v, uuid.UUID) else v for v in row)
            for row in conn.execute(
                sa.text(
                    "SELECT seq, client_id, object_type, object_id, goal_id, op FROM changes "
                    "ORDER BY seq"
                )
            )
        ]


def _hex(value: str) -> str:
    return uuid.UUID(value).hex


async def test_a_created_goal_has_its_change_row(client, make_user, sync_engine):
    patient = await make_user("client")
    goal = await new_goal(client, patient)
    [(_, client_id, object_type, object_id, goal_id, op)] = _changes(sync_engine)
    assert (_hex(client_id), object_type, _hex(object_id), _hex(goal_id), op) == (
        _hex(patient.id),
        "goal",
        _hex(goal["id"]),
        _hex(goal["id"]),
        "upsert",
    )


def _postgres(sync_engine) -> bool:
    return sync_engine.dialect.name == "postgresql"


class HeldWriter:
    """A goal create through the app's own write path, its change rows written (the
    before-commit hooks run) and then, when ``hold``, held before COMMIT until ``commit``."""

    def __init__(self, principal: Principal, title: str, hold: bool = True) -> None:
        self.ready = asyncio.Event()
        self.release = asyncio.Event()
        if not hold:
            self.release.set()
        self.task = asyncio.create_task(self._run(principal, title))

    async def _run(self, principal: Principal, title: str) -> str:
        session = new_session(write=True)
        try:
            goal = await create_goal(session, principal, GoalCreate(title=title))
            await run_before_commit_hooks(CommitContext(session, "POST", 201), BEFORE_COMMIT)
            self.ready.set()
            await self.release.wait()
            await session.commit()
            return str(goal["id"])
        finally:
            await session.close()

    async def held(self) -> "HeldWriter":
        await asyncio.wait_for(self.ready.wait(), 10)
        return self

    async def commit(self) -> str:
        self.release.set()
        return await asyncio.wait_for(self.task, 10)


def _principal(actor) -> Principal:
    return Principal(uuid.UUID(actor.id), Role.CLIENT, frozenset({"client", "goals:write"}))


async def _sync(client, actor, cursor: str) -> tuple[list[dict], str]:
    r = await client.get("/v1/sync", params={"cursor": cursor}, headers=actor.headers)
    assert r.status_code == 200, r.text
    page = r.json()
    seqs = [change["seq"] for change in page["changes"]]
    assert seqs == sorted(seqs)
    return page["changes"], page["next_cursor"]


async def test_a_follower_never_skips_a_transaction_that_commits_later(
    client, make_user, sync_engine
):
    """A writes its change row and holds its COMMIT; B, which began after, commits. A sync
    then must not serve B's row: its cursor would pass A's, and A's row would never come. On
    PostgreSQL B does not wait for A (no lock between writers) and the feed holds B back
    below the oldest running transaction; SQLite serializes the writers. Once A commits the
    follower gets both, A's first."""
    patient = await make_user("client")
    cursor = (await client.get("/v1/sync", headers=patient.headers)).json()["next_cursor"]
    first = await HeldWriter(_principal(patient), "first").held()
    second = HeldWriter(_principal(patient), "second", hold=False)
    if _postgres(sync_engine):
        await asyncio.wait_for(second.task, 10)  # committed while A is still open
    else:
        await until_blocked(sync_engine)  # SQLite: it waits for A's COMMIT
        assert not second.task.done()
    changes, held_cursor = await _sync(client, patient, cursor)
    assert changes == []
    assert held_cursor == cursor  # the follower stands where it stood
    first_id = await first.commit()
    second_id = await asyncio.wait_for(second.task, 10)
    changes, _ = await _sync(client, patient, held_cursor)
    assert [(c["op"], c["id"]) for c in changes] == [("upsert", first_id), ("upsert", second_id)]


async def test_the_feed_position_of_a_first_sync_lies_below_running_transactions(
    client, make_user, sync_engine
):
    """A first sync while A is open: A's goal is not in its snapshot, and its row must follow
    even though a later transaction committed before the first sync began."""
    patient = await make_user("client")
    first = await HeldWriter(_principal(patient), "first").held()
    if _postgres(sync_engine):
        second_id = await HeldWriter(_principal(patient), "second", hold=False).commit()
    r = await client.get("/v1/sync", headers=patient.headers)
    snapshot = [c["id"] for c in r.json()["changes"]]
    first_id = await first.commit()
    assert first_id not in snapshot
    if _postgres(sync_engine):
        assert snapshot == [second_id]
    else:
        second_id = await HeldWriter(_principal(patient), "second", hold=False).commit()
    changes, _ = await _sync(client, patient, r.json()["next_cursor"])
    assert first_id in [c["id"] for c in changes]
    assert second_id in [c["id"] for c in changes]


async def test_a_care_link_ending_waits_for_the_clients_writes_in_flight_only(
    client, make_user, sync_engine
):
    """The link's expansion must see every row of the client that a therapist could read
    while still linked: on PostgreSQL it waits for the client's writer holding its COMMIT
    (SQLite: for every writer), while another client's link ends at once."""
    if not _postgres(sync_engine):
        return await _link_end_on_sqlite(client, make_user, sync_engine)
    patient, other = await make_user("client"), await make_user("client")
    therapist = await make_user("therapist")
    links = [await link(client, therapist, who) for who in (patient, other)]
    writer = await HeldWriter(_principal(patient), "in flight").held()

    async def end(who, link_id: str) -> int:
        r = await client.delete(f"/v1/care-links/{link_id}", headers=who.headers)
        return r.status_code

    ending = asyncio.create_task(end(patient, links[0]["id"]))
    assert await asyncio.wait_for(end(other, links[1]["id"]), 10) == 204
    await until_blocked(sync_engine)
    assert not ending.done()  # it waits for the patient's writer
    goal_id = await writer.commit()
    assert await asyncio.wait_for(ending, 10) == 204
    # The goal's row is behind the link's rows' expansion: the therapist, whose snapshot
    # cannot include it, gets the deletion among the link's rows.
    with sync_engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT audience_id FROM changes WHERE object_id = :id ORDER BY tx, seq"),
            {"id": uuid.UUID(goal_id)},
        ).all()
    assert [str(audience) for (audience,) in rows] == ["None", therapist.id]


async def _link_end_on_sqlite(client, make_user, sync_engine) -> None:
    patient, therapist = await make_user("client"), await make_user("therapist")
    care_link = await link(client, therapist, patient)
    writer = await HeldWriter(_principal(patient), "in flight").held()
    ending = asyncio.create_task(
        client.delete(f"/v1/care-links/{care_link['id']}", headers=patient.headers)
    )
    await until_blocked(sync_engine)
    assert not ending.done()
    await writer.commit()
    assert (await asyncio.wait_for(ending, 10)).status_code == 204
