"""Every renderer of a resource answers its one declaration: ``load_documents`` (what sync,
export and webhooks carry) is byte for byte the object's own GET."""

from __future__ import annotations

import uuid

import pytest

from app.core.http import dumps
from app.core.sessions import new_session
from app.goals.schemas import GoalOut
from app.resources import RESOURCE_TYPES, load_documents

GAS = {"-2": "stays home", "-1": "one walk", "0": "three walks", "1": "five walks", "2": "daily"}


async def _load(object_type: str, ids: list[str]) -> dict[uuid.UUID, dict]:
    session = new_session(write=False)
    try:
        return await load_documents(session, object_type, [uuid.UUID(i) for i in ids])
    finally:
        await session.close()


async def _story(client, me) -> dict[str, str]:
    async def post(path: str, body: dict) -> dict:
        r = await client.post(path, json=body, headers=me.headers)
        assert r.status_code == 201, r.text
        return r.json()

    goal = await post(
        "/v1/goals", {"title": "Walk", "gas_levels": GAS, "target_date": "2027-01-02"}
    )
    step = await post(f"/v1/goals/{goal['id']}/steps", {"title": "Shoes", "due_date": "2027-01-01"})
    r = await client.patch(f"/v1/steps/{step['id']}", json={"status": "done"}, headers=me.headers)
    assert r.status_code == 200, r.text
    review = await post(f"/v1/goals/{goal['id']}/reviews", {"rating": 7, "gas_score": 1})
    note = await post("/v1/encouragements", {"goal_id": goal["id"], "message": "Go on"})
    return {
        "goal": goal["id"],
        "step": step["id"],
        "review": review["id"],
        "encouragement": note["id"],
    }


async def test_loaded_documents_are_the_objects_own_get(client, make_user):
    me = await make_user("client")
    ids = await _story(client, me)
    gets = {
        "goal": f"/v1/goals/{ids['goal']}",
        "step": f"/v1/steps/{ids['step']}",
        "review": f"/v1/reviews/{ids['review']}",
    }
    for object_type, path in gets.items():
        r = await client.get(path, headers=me.headers)
        loaded = await _load(object_type, [ids[object_type]])
        assert dumps(loaded[uuid.UUID(ids[object_type])]) == r.content, object_type
    # Encouragements have no GET of their own: the list's item is their document.
    page = await client.get("/v1/encouragements", headers=me.headers)
    item = next(i for i in page.json()["items"] if i["id"] == ids["encouragement"])
    loaded = await _load("encouragement", [ids["encouragement"]])
    assert dumps(loaded[uuid.UUID(ids["encouragement"])]) == dumps(item)


async def test_a_deleted_goal_takes_its_steps_and_reviews_out_of_the_documents(client, make_user):
    me = await make_user("client")
    ids = await _story(client, me)
    r = await client.delete(f"/v1/goals/{ids['goal']}", headers=me.headers)
    assert r.status_code == 204
    for object_type in ("goal", "step", "review"):
        assert await _load(object_type, [ids[object_type]]) == {}, object_type
    assert len(await _load("encouragement", [ids["encouragement"]])) == 1


@pytest.mark.parametrize("object_type", RESOURCE_TYPES)
async def test_unknown_ids_load_nothing(client, object_type):
    assert await _load(object_type, [str(uuid.uuid4())]) == {}


async def test_the_goal_document_has_exactly_the_declared_fields(client, make_user):
    me = await make_user("client")
    ids = await _story(client, me)
    loaded = (await _load("goal", [ids["goal"]]))[uuid.UUID(ids["goal"])]
    assert list(loaded) == list(GoalOut.model_fields)
