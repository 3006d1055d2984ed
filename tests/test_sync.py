"""GET /v1/sync: everything the caller may see, then every change since (api.md section 9)."""

from __future__ import annotations

import pytest

from tests.syncing import follow, link, listed
from tests.worlds import assert_problem


async def _goal(client, actor, **fields) -> dict:
    r = await client.post("/v1/goals", json={"title": "Walk", **fields}, headers=actor.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def _step(client, actor, goal_id: str, title: str = "Shoes") -> dict:
    r = await client.post(
        f"/v1/goals/{goal_id}/steps", json={"title": title}, headers=actor.headers
    )
    assert r.status_code == 201, r.text
    return r.json()


async def _review(client, actor, goal_id: str, rating: int = 5) -> dict:
    r = await client.post(
        f"/v1/goals/{goal_id}/reviews", json={"rating": rating}, headers=actor.headers
    )
    assert r.status_code == 201, r.text
    return r.json()


async def _world(client, make_user):
    patient = await make_user("client")
    therapist = await make_user("therapist")
    await link(client, therapist, patient)
    shared = await _goal(client, patient, title="Shared")
    private = await _goal(client, patient, title="Private", visibility="private")
    step = await _step(client, patient, shared["id"])
    await _step(client, patient, private["id"])
    await _review(client, patient, shared["id"])
    r = await client.post(
        "/v1/encouragements",
        json={"client_id": patient.id, "message": "Well done"},
        headers=therapist.headers,
    )
    assert r.status_code == 201, r.text
    return patient, therapist, shared, private, step


async def test_first_sync_is_everything_the_lists_show(client, make_user):
    patient, therapist, shared, private, _ = await _world(client, make_user)
    for actor in (patient, therapist):
        mirror: dict = {}
        await follow(client, actor.headers, mirror, None)
        assert mirror == await listed(client, actor.headers)
    therapist_mirror: dict = {}
    await follow(client, therapist.headers, therapist_mirror, None)
    assert ("goal", shared["id"]) in therapist_mirror
    assert ("goal", private["id"]) not in therapist_mirror


async def test_upserts_are_the_objects_own_get(client, make_user):
    patient, _, shared, _, step = await _world(client, make_user)
    r = await client.get("/v1/sync", headers=patient.headers)
    by_id = {c["id"]: c for c in r.json()["changes"]}
    for path, object_id in ((f"/v1/goals/{shared['id']}", shared["id"]),
                            (f"/v1/steps/{step['id']}", step["id"])):  # fmt: skip
        own = await client.get(path, headers=patient.headers)
        assert by_id[object_id]["data"] == own.json()
        # byte for byte: the same serialization as the GET
        assert own.content.decode() in r.content.decode()


async def test_changes_and_deletions_reach_a_follower(client, make_user):
    patient, therapist, shared, private, step = await _world(client, make_user)
    mirrors: dict = {}
    cursors = {}
    for actor in (patient, therapist):
        mirrors[actor.id] = {}
        cursors[actor.id] = await follow(client, actor.headers, mirrors[actor.id], None)
    r = await client.patch(f"/v1/steps/{step['id']}", json={"status": "done"},
                           headers=patient.headers)  # fmt: skip
    assert r.status_code == 200
    r = await client.delete(f"/v1/goals/{private['id']}", headers=patient.headers)
    assert r.status_code == 204
    for actor in (patient, therapist):
        cursors[actor.id] = await follow(
            client, actor.headers, mirrors[actor.id], cursors[actor.id]
        )
        assert mirrors[actor.id] == await listed(client, actor.headers)
    assert mirrors[patient.id][("step", step["id"])]["status"] == "done"
    # the goal deleted: the goal and its step and review leave, as deletions
    r = await client.delete(f"/v1/goals/{shared['id']}", headers=patient.headers)
    for actor in (patient, therapist):
        before = dict(mirrors[actor.id])
        cursors[actor.id] = await follow(
            client, actor.headers, mirrors[actor.id], cursors[actor.id]
        )
        assert mirrors[actor.id] == await listed(client, actor.headers)
        assert ("goal", shared["id"]) in before and ("goal", shared["id"]) not in mirrors[actor.id]
        assert not [k for k in mirrors[actor.id] if k[0] in ("step", "review")]


async def test_private_shared_again_and_link_ended_and_new(client, make_user):
    patient, therapist, shared, _, step = await _world(client, make_user)
    mirror: dict = {}
    cursor = await follow(client, therapist.headers, mirror, None)
    r = await client.patch(f"/v1/goals/{shared['id']}", json={"visibility": "private"},
                           headers=patient.headers)  # fmt: skip
    assert r.status_code == 200
    cursor = await follow(client, therapist.headers, mirror, cursor)
    assert ("goal", shared["id"]) not in mirror and ("step", step["id"]) not in mirror
    assert mirror == await listed(client, therapist.headers)
    r = await client.patch(f"/v1/goals/{shared['id']}", json={"visibility": "shared"},
                           headers=patient.headers)  # fmt: skip
    cursor = await follow(client, therapist.headers, mirror, cursor)
    assert ("goal", shared["id"]) in mirror and ("step", step["id"]) in mirror
    assert mirror == await listed(client, therapist.headers)
    # the link ends: everything of that client leaves the therapist's mirror
    links = (await client.get("/v1/care-links", headers=patient.headers)).json()["items"]
    r = await client.delete(f"/v1/care-links/{links[0]['id']}", headers=patient.headers)
    assert r.status_code == 204
    cursor = await follow(client, therapist.headers, mirror, cursor)
    assert mirror == {} == await listed(client, therapist.headers)
    # changes while unlinked never reach the therapist
    await _step(client, patient, shared["id"], "while unlinked")
    r = await client.get("/v1/sync", params={"cursor": cursor}, headers=therapist.headers)
    assert r.json()["changes"] == []
    # a new link brings everything back
    await link(client, therapist, patient)
    cursor = await follow(client, therapist.headers, mirror, cursor)
    assert mirror == await listed(client, therapist.headers)
    assert ("goal", shared["id"]) in mirror and len(mirror) >= 4


async def test_private_goals_never_reach_a_therapist(client, make_user):
    patient, therapist, _, private, _ = await _world(client, make_user)
    cursor = await follow(client, therapist.headers, {}, None)
    await client.patch(f"/v1/goals/{private['id']}", json={"title": "Still private"},
                       headers=patient.headers)  # fmt: skip
    await _step(client, patient, private["id"], "secret step")
    await client.delete(f"/v1/goals/{private['id']}", headers=patient.headers)
    r = await client.get("/v1/sync", params={"cursor": cursor}, headers=therapist.headers)
    assert r.json()["changes"] == []


async def test_pages_and_limits(client, make_user):
    patient = await make_user("client")
    for n in range(7):
        await _goal(client, patient, title=f"Goal {n}")
    mirror: dict = {}
    cursor = await follow(client, patient.headers, mirror, None, limit=2)
    assert len(mirror) == 7
    r = await client.get("/v1/sync", params={"cursor": cursor, "limit": 1000},
                         headers=patient.headers)  # fmt: skip
    assert r.json() == {"changes": [], "next_cursor": cursor, "has_more": False}
    r = await client.get("/v1/sync", params={"limit": 3}, headers=patient.headers)
    assert len(r.json()["changes"]) == 3 and r.json()["has_more"] is True
    for bad in (0, 1001, "x"):
        r = await client.get("/v1/sync", params={"limit": bad}, headers=patient.headers)
        assert_problem(r, 422, "validation-error")


async def test_bad_and_foreign_cursors_are_400(client, make_user):
    patient = await make_user("client")
    other = await make_user("client")
    narrow = await make_user("client", scope="goals:read")
    cursor = (await client.get("/v1/sync", headers=patient.headers)).json()["next_cursor"]
    for bad in ("nope", "W10", cursor[:-2]):
        r = await client.get("/v1/sync", params={"cursor": bad}, headers=patient.headers)
        assert_problem(r, 400)
    r = await client.get("/v1/sync", params={"cursor": cursor}, headers=other.headers)
    assert_problem(r, 400)
    del narrow


async def test_scopes_filter_the_types(client, make_user):
    patient, _, shared, _, _ = await _world(client, make_user)
    r = await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": patient.email,
              "password": "correct horse battery", "scope": "reviews:read"},
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    changes = (await client.get("/v1/sync", headers=headers)).json()["changes"]
    assert {c["type"] for c in changes} == {"review"}
    # a cursor made with other scopes is foreign here
    cursor = (await client.get("/v1/sync", headers=patient.headers)).json()["next_cursor"]
    assert_problem(await client.get("/v1/sync", params={"cursor": cursor}, headers=headers), 400)


@pytest.mark.parametrize("who", ["anonymous", "other_client", "unlinked_therapist"])
async def test_callers_who_may_not_see_get_nothing_of_it(client, make_user, who):
    patient, _, _, _, _ = await _world(client, make_user)
    if who == "anonymous":
        r = await client.get("/v1/sync")
        assert_problem(r, 401)
        return
    stranger = await make_user("client" if who == "other_client" else "therapist")
    r = await client.get("/v1/sync", headers=stranger.headers)
    assert r.status_code == 200
    assert r.json()["changes"] == []
