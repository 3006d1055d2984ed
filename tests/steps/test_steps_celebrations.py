"""Celebrations: half the steps, every step, and completion, each exactly once per goal."""

import asyncio

import sqlalchemy as sa

from tests.support.worlds import add_step, celebrations, goal_of, link, new_goal


async def test_celebrations_once_each_under_toggling(client, make_user, sync_engine):
    patient = await make_user("client")
    goal = await new_goal(client, patient, title="Sleep earlier")
    steps = [await add_step(client, patient, goal["id"]) for _ in range(4)]

    async def mark(i, status):
        r = await client.patch(
            f"/v1/steps/{steps[i]['id']}", json={"status": status}, headers=patient.headers
        )
        assert r.status_code == 200

    await mark(0, "done")
    assert celebrations(sync_engine) == []
    await mark(1, "done")  # 2 of 4: half
    assert len(celebrations(sync_engine)) == 1 and "Halfway" in celebrations(sync_engine)[0]
    for _ in range(3):
        await mark(1, "todo")
        await mark(1, "done")
    assert len(celebrations(sync_engine)) == 1
    await mark(2, "done")
    await mark(3, "done")  # all
    messages = celebrations(sync_engine)
    assert len(messages) == 2 and "Sleep earlier" in messages[1]
    await mark(3, "todo")
    await mark(3, "done")
    url = f"/v1/goals/{goal['id']}"
    for status in ("completed", "active", "completed", "on_hold", "completed"):
        r = await client.patch(url, json={"status": status}, headers=patient.headers)
        assert r.status_code == 200
    assert len(celebrations(sync_engine)) == 3
    with sync_engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT client_id, goal_id, author_role, step_id FROM encouragements LIMIT 1")
        ).one()
        kinds = conn.execute(
            sa.text("SELECT count(*) FROM changes WHERE object_type = 'encouragement'")
        ).scalar_one()
    assert str(row.client_id).replace("-", "") == patient.id.replace("-", "")
    assert row.author_role is None and row.step_id is None
    assert kinds == 3
    r = await client.get("/v1/encouragements", headers=patient.headers)
    if r.status_code == 200:  # the encouragements list lives in another module
        assert sum(e["kind"] == "celebration" for e in r.json()["items"]) == 3


async def test_one_step_goal_celebrates_once_and_deleting_open_step_can_celebrate(
    client, make_user, sync_engine
):
    patient = await make_user("client")
    gid = (await new_goal(client, patient))["id"]
    only = await add_step(client, patient, gid)
    await client.patch(f"/v1/steps/{only['id']}", json={"status": "done"}, headers=patient.headers)
    assert len(celebrations(sync_engine)) == 1  # all steps done; no separate "halfway"
    other = (await new_goal(client, patient))["id"]
    done = await add_step(client, patient, other)
    open_ = [await add_step(client, patient, other) for _ in range(2)]
    await client.patch(f"/v1/steps/{done['id']}", json={"status": "done"}, headers=patient.headers)
    assert len(celebrations(sync_engine)) == 1  # 1 of 3
    await client.delete(f"/v1/steps/{open_[0]['id']}", headers=patient.headers)
    assert len(celebrations(sync_engine)) == 2  # 1 of 2: halfway


async def test_concurrent_completion_celebrates_once(client, make_user, sync_engine):
    therapist = await make_user("therapist")
    patient = await make_user("client")

    await link(client, therapist, patient)
    gid = (await new_goal(client, patient))["id"]

    async def set_status(actor, status):
        r = await client.patch(f"/v1/goals/{gid}", json={"status": status}, headers=actor.headers)
        assert r.status_code == 200, r.text

    await asyncio.gather(
        *(
            set_status(actor, status)
            for actor in (patient, therapist) * 5
            for status in ("completed", "active")
        )
    )
    await set_status(patient, "completed")
    assert len(celebrations(sync_engine)) == 1
    goal = await goal_of(client, patient, gid)
    assert goal["status"] == "completed" and goal["completed_at"] is not None
