"""Steps: ordering, the 200 limit, status and completed_at, exact progress, celebrations."""

import asyncio
import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from app.models import Step, new_id
from app.steps.schemas import StepOut
from tests.support.worlds import add_step, assert_problem, celebrations, goal_of, new_goal


async def titles(client, actor, goal_id) -> list[str]:
    r = await client.get(f"/v1/goals/{goal_id}/steps?limit=200", headers=actor.headers)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [s["position"] for s in items] == list(range(len(items)))  # contiguous, 0-based
    return [s["title"] for s in items]


async def test_create_step_fields_and_headers(client, make_user):
    patient = await make_user("client")
    goal = await new_goal(client, patient)
    r = await client.post(
        f"/v1/goals/{goal['id']}/steps",
        json={"title": "  Buy shoes ", "notes": "comfortable", "due_date": "2027-01-05"},
        headers=patient.headers,
    )
    assert r.status_code == 201, r.text
    step = r.json()
    assert set(step) == set(StepOut.model_fields)
    assert r.headers["location"] == f"/v1/steps/{step['id']}" and r.headers["etag"] == '"1"'
    assert step["title"] == "Buy shoes" and step["notes"] == "comfortable"
    assert step["due_date"] == "2027-01-05" and step["status"] == "todo"
    assert step["position"] == 0 and step["completed_at"] is None
    assert step["goal_id"] == goal["id"] and step["created_by"] == patient.id
    r = await client.get(f"/v1/steps/{step['id']}", headers=patient.headers)
    assert r.status_code == 200 and r.json() == step and r.headers["etag"] == '"1"'
    r = await client.get(
        f"/v1/steps/{step['id']}", headers={**patient.headers, "If-None-Match": '"1"'}
    )
    assert r.status_code == 304
    after = await goal_of(client, patient, goal["id"])
    assert after["progress"]["steps_total"] == 1 and after["version"] == goal["version"] + 1


async def test_positions_insert_move_delete(client, make_user):
    patient = await make_user("client")
    gid = (await new_goal(client, patient))["id"]
    a = await add_step(client, patient, gid, title="a")
    b = await add_step(client, patient, gid, title="b")
    await add_step(client, patient, gid, title="c")
    await add_step(client, patient, gid, title="first", position=0)
    await add_step(client, patient, gid, title="mid", position=2)
    await add_step(client, patient, gid, title="last", position=99)
    assert await titles(client, patient, gid) == ["first", "a", "mid", "b", "c", "last"]
    # Shifted steps got a new version.
    assert (await client.get(f"/v1/steps/{b['id']}", headers=patient.headers)).json()["version"] > 1
    r = await client.patch(f"/v1/steps/{a['id']}", json={"position": 4}, headers=patient.headers)
    assert r.status_code == 200 and r.json()["position"] == 4
    assert await titles(client, patient, gid) == ["first", "mid", "b", "c", "a", "last"]
    r = await client.patch(f"/v1/steps/{a['id']}", json={"position": 0}, headers=patient.headers)
    assert await titles(client, patient, gid) == ["a", "first", "mid", "b", "c", "last"]
    r = await client.patch(f"/v1/steps/{a['id']}", json={"position": 1000}, headers=patient.headers)
    assert r.json()["position"] == 5
    assert await titles(client, patient, gid) == ["first", "mid", "b", "c", "last", "a"]
    r = await client.delete(f"/v1/steps/{b['id']}", headers=patient.headers)
    assert r.status_code == 204
    assert await titles(client, patient, gid) == ["first", "mid", "c", "last", "a"]
    assert_problem(await client.get(f"/v1/steps/{b['id']}", headers=patient.headers), 404)
    assert_problem(await client.delete(f"/v1/steps/{b['id']}", headers=patient.headers), 404)
    goal = await goal_of(client, patient, gid)
    assert goal["progress"]["steps_total"] == 5


async def test_status_sets_and_clears_completed_at_and_progress(client, make_user):
    patient = await make_user("client")
    gid = (await new_goal(client, patient))["id"]
    steps = [await add_step(client, patient, gid) for _ in range(3)]
    url = f"/v1/steps/{steps[0]['id']}"
    done = (await client.patch(url, json={"status": "done"}, headers=patient.headers)).json()
    assert done["status"] == "done" and done["completed_at"].endswith("Z")
    assert done["version"] == 2
    progress = (await goal_of(client, patient, gid))["progress"]
    assert progress == {
        "steps_total": 3,
        "steps_done": 1,
        "percent": 33,
        "latest_rating": None,
        "latest_gas_score": None,
    }
    # Setting done again changes nothing and counts nothing.
    again = await client.patch(url, json={"status": "done"}, headers=patient.headers)
    assert again.json()["version"] == 2
    assert (await goal_of(client, patient, gid))["progress"]["steps_done"] == 1
    todo = (await client.patch(url, json={"status": "todo"}, headers=patient.headers)).json()
    assert todo["status"] == "todo" and todo["completed_at"] is None
    assert (await goal_of(client, patient, gid))["progress"]["steps_done"] == 0
    # Deleting a done step lowers both counters.
    await client.patch(url, json={"status": "done"}, headers=patient.headers)
    await client.delete(url, headers=patient.headers)
    progress = (await goal_of(client, patient, gid))["progress"]
    assert (progress["steps_total"], progress["steps_done"], progress["percent"]) == (2, 0, 0)


async def test_step_update_fields_and_validation(client, make_user):
    patient = await make_user("client")
    gid = (await new_goal(client, patient))["id"]
    step = await add_step(client, patient, gid, notes="n")
    url = f"/v1/steps/{step['id']}"
    r = await client.patch(
        url, json={"title": "New", "notes": None, "due_date": "2027-02-02"}, headers=patient.headers
    )
    assert r.status_code == 200
    assert r.json()["title"] == "New" and r.json()["notes"] is None
    assert r.json()["due_date"] == "2027-02-02" and r.headers["etag"] == '"2"'
    current = r.json()
    for body in (
        {"title": None},
        {"title": " "},
        {"status": "finished"},
        {"status": None},
        {"position": -1},
        {"position": None},
        {"goal_id": gid},
        {"version": 9},
        {"completed_at": "2026-01-01T00:00:00Z"},
        {"notes": "x" * 5001},
    ):
        assert_problem(await client.patch(url, json=body, headers=patient.headers), 422)
    assert (await client.get(url, headers=patient.headers)).json() == current
    for body in (
        {},
        {"title": ""},
        {"title": "x" * 201},
        {"title": "x", "status": "done"},
        {"title": "x", "position": -1},
        {"title": "x", "id": step["id"]},
        {"title": "x", "due_date": "soon"},
    ):
        r = await client.post(f"/v1/goals/{gid}/steps", json=body, headers=patient.headers)
        assert_problem(r, 422, "validation-error")
    assert await titles(client, patient, gid) == ["New"]


async def test_step_if_match(client, make_user):
    patient = await make_user("client")
    gid = (await new_goal(client, patient))["id"]
    step = await add_step(client, patient, gid)
    url = f"/v1/steps/{step['id']}"
    stale = {**patient.headers, "If-Match": '"7"'}
    assert_problem(await client.patch(url, json={"title": "x"}, headers=stale), 412)
    assert_problem(await client.delete(url, headers=stale), 412)
    assert (await client.get(url, headers=patient.headers)).json() == step
    fresh = {**patient.headers, "If-Match": '"1"'}
    assert (await client.patch(url, json={"status": "done"}, headers=fresh)).status_code == 200
    assert_problem(await client.delete(url, headers=fresh), 412)
    assert (
        await client.delete(url, headers={**patient.headers, "If-Match": '"2"'})
    ).status_code == 204


async def test_at_most_200_steps(client, make_user, sync_engine):
    patient = await make_user("client")
    gid = (await new_goal(client, patient))["id"]
    # Fill 199 directly, then go through the API for the last allowed one.
    now = dt.datetime.now(dt.UTC)
    rows = [
        {"id": new_id(), "goal_id": uuid.UUID(gid), "client_id": uuid.UUID(patient.id),
         "title": f"s{i}", "status": "todo", "position": i, "version": 1, "created_at": now,
         "updated_at": now}
        for i in range(199)
    ]  # fmt: skip
    with sync_engine.begin() as conn:
        conn.execute(sa.insert(Step.__table__), rows)
        conn.execute(sa.text("UPDATE goals SET steps_total = 199"))
    await add_step(client, patient, gid, title="200th")
    r = await client.post(f"/v1/goals/{gid}/steps", json={"title": "201"}, headers=patient.headers)
    assert_problem(r, 422, "validation-error")
    assert (await goal_of(client, patient, gid))["progress"]["steps_total"] == 200
    with sync_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM steps")).scalar_one() == 200


async def test_steps_pages_and_errors(client, make_user):
    patient = await make_user("client")
    gid = (await new_goal(client, patient))["id"]
    for i in range(7):
        await add_step(client, patient, gid, title=f"s{i}")
    seen, url = [], f"/v1/goals/{gid}/steps?limit=3"
    while url:
        r = await client.get(url, headers=patient.headers)
        body = r.json()
        seen += [s["title"] for s in body["items"]]
        url = None
        if body["next_cursor"]:
            assert r.headers["link"].endswith('rel="next"')
            url = f"/v1/goals/{gid}/steps?limit=3&cursor={body['next_cursor']}"
    assert seen == [f"s{i}" for i in range(7)]
    r = await client.get(f"/v1/goals/{gid}/steps?cursor=abc", headers=patient.headers)
    assert_problem(r, 400)
    for bad in (0, 201, "x"):
        r = await client.get(f"/v1/goals/{gid}/steps?limit={bad}", headers=patient.headers)
        assert_problem(r, 422, "validation-error")
    for path in ("nope", "00000000-0000-7000-8000-000000000000"):
        assert_problem(await client.get(f"/v1/goals/{path}/steps", headers=patient.headers), 404)
        assert_problem(await client.get(f"/v1/steps/{path}", headers=patient.headers), 404)


async def test_deleting_goal_hides_its_steps(client, make_user, sync_engine):
    patient = await make_user("client")
    gid = (await new_goal(client, patient))["id"]
    step = await add_step(client, patient, gid)
    assert (await client.delete(f"/v1/goals/{gid}", headers=patient.headers)).status_code == 204
    assert_problem(await client.get(f"/v1/steps/{step['id']}", headers=patient.headers), 404)
    assert_problem(await client.get(f"/v1/goals/{gid}/steps", headers=patient.headers), 404)
    r = await client.patch(
        f"/v1/steps/{step['id']}", json={"status": "done"}, headers=patient.headers
    )
    assert_problem(r, 404)
    with sync_engine.connect() as conn:
        ops = conn.execute(
            sa.text("SELECT op FROM changes WHERE object_type = 'step' ORDER BY seq")
        ).scalars()
        assert list(ops) == ["upsert", "delete"]


@pytest.mark.parametrize("count", [20])
async def test_concurrent_completions_keep_exact_counts(client, make_user, sync_engine, count):
    patient = await make_user("client")
    gid = (await new_goal(client, patient))["id"]
    steps = [await add_step(client, patient, gid) for _ in range(count)]

    async def complete(step):
        return await client.patch(
            f"/v1/steps/{step['id']}", json={"status": "done"}, headers=patient.headers
        )

    # Each step twice at once: the duplicate must not count twice.
    results = await asyncio.gather(*(complete(s) for s in steps + steps))
    assert all(r.status_code == 200 for r in results), [
        r.text for r in results if r.status_code != 200
    ]
    progress = (await goal_of(client, patient, gid))["progress"]
    assert (progress["steps_total"], progress["steps_done"], progress["percent"]) == (
        count,
        count,
        100,
    )
    assert len(celebrations(sync_engine)) == 2  # halfway and all, once each
    with sync_engine.connect() as conn:
        done = conn.execute(
            sa.text("SELECT count(*) FROM steps WHERE status = 'done' AND completed_at IS NOT NULL")
        ).scalar_one()
    assert done == count

    async def reopen(step):
        return await client.patch(
            f"/v1/steps/{step['id']}", json={"status": "todo"}, headers=patient.headers
        )

    results = await asyncio.gather(*(reopen(s) for s in steps[: count // 2]))
    assert all(r.status_code == 200 for r in results)
    progress = (await goal_of(client, patient, gid))["progress"]
    assert progress["steps_done"] == count - count // 2


async def test_concurrent_inserts_keep_positions_contiguous(client, make_user):
    patient = await make_user("client")
    gid = (await new_goal(client, patient))["id"]
    await add_step(client, patient, gid, title="anchor")

    async def insert(i):
        return await client.post(
            f"/v1/goals/{gid}/steps",
            json={"title": f"s{i}", "position": i % 2},
            headers=patient.headers,
        )

    results = await asyncio.gather(*(insert(i) for i in range(12)))
    assert all(r.status_code == 201 for r in results)
    names = await titles(client, patient, gid)  # asserts 0..n-1 positions
    assert len(names) == 13 and sorted(names) == sorted(["anchor"] + [f"s{i}" for i in range(12)])
    assert (await goal_of(client, patient, gid))["progress"]["steps_total"] == 13
