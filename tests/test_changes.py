"""The change sequence behind /v1/sync: one row per change, numbered in commit order."""

import asyncio
import uuid

import sqlalchemy as sa

from app.auth.dependencies import Principal
from app.auth.scopes import Role
from app.commit_hooks import BEFORE_COMMIT
from app.core.db import new_session
from app.core.unit_of_work import CommitContext, run_before_commit_hooks
from app.goals.schemas import GoalCreate
from app.goals.service import create_goal
from tests.worlds import new_goal


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


async def test_a_transaction_that_commits_later_gets_a_later_number(client, make_user, sync_engine):
    """Numbers are handed out in commit order: while one writer's change is drawn but not yet
    committed, another writer waits instead of committing a later number first (a follower
    reading ``seq > cursor`` would then skip the earlier one)."""
    patient = await make_user("client")
    principal = Principal(uuid.UUID(patient.id), Role.CLIENT, frozenset({"client", "goals:write"}))

    drawn = asyncio.Event()

    async def create(title: str, hold: asyncio.Event | None = None) -> str:
        session = new_session(write=True)
        try:
            goal = await create_goal(session, principal, GoalCreate(title=title))
            await run_before_commit_hooks(CommitContext(session, "POST", 201), BEFORE_COMMIT)
            if hold is not None:
                drawn.set()
                await hold.wait()
            await session.commit()
            return str(goal["id"])
        finally:
            await session.close()

    release = asyncio.Event()
    first = asyncio.create_task(create("first", release))
    await asyncio.wait_for(drawn.wait(), 10)  # the first writer has its number, not committed
    second = asyncio.create_task(create("second"))
    await asyncio.sleep(0.3)
    assert not second.done()  # it waits for the first writer's COMMIT
    release.set()
    first_id, second_id = await asyncio.wait_for(asyncio.gather(first, second), 10)
    order = [_hex(object_id) for _, _, _, object_id, _, _ in _changes(sync_engine)]
    assert order == [_hex(first_id), _hex(second_id)]
