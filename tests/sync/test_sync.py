"""GET /v1/sync: everything the caller may see, then every change since."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from tests.support.syncing import follow, link, listed
from tests.support.worlds import GAS, assert_problem


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
        # equal as JSON, fields in the same order (the database renders the feed's documents)
        assert by_id[object_id]["data"] == own.json()
        assert list(by_id[object_id]["data"]) == list(own.json())


def _whole_second(sync_engine, table, object_id: str, **columns) -> None:
    """Timestamps on a whole second (no microseconds), set behind the API's back."""
    with sync_engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.id == uuid.UUID(object_id)).values(**columns))


async def test_every_field_kind_is_the_objects_own_get(client, make_user, sync_engine):
    """Snapshot and followed upserts, for a client and a therapist, against each object's own
    document: uuids, dates, timestamps with and without microseconds, nested GAS levels, text
    that needs escaping, numbers and nulls, in the declaration's field order."""
    from app.models import Encouragement, Goal, Review, Step

    patient = await make_user("client")
    therapist = await make_user("therapist")
    await link(client, therapist, patient)
    full = await _goal(
        client, patient, title='Quotes " and \\ backslash, \u00e9t\u00e9 \U0001f331',
        description="line\nbreak\ttab", motivation="m", success_criteria="s", category="c",
        priority="low", target_date="2027-01-31", review_every_days=5, external_id="x-1",
        gas_levels=GAS, gas_weight=9,
    )  # fmt: skip
    bare = await _goal(client, therapist, client_id=patient.id)  # nulls nearly everywhere
    r = await client.post(
        f"/v1/goals/{full['id']}/steps",
        json={"title": "s", "notes": "n", "due_date": "2027-01-01"},
        headers=patient.headers,
    )
    step = r.json()
    r = await client.patch(
        f"/v1/steps/{step['id']}", json={"status": "done"}, headers=patient.headers
    )
    assert r.status_code == 200, r.text
    plain_step = await _step(client, patient, bare["id"], title="t")
    r = await client.post(
        f"/v1/goals/{full['id']}/reviews",
        json={"rating": 7, "gas_score": -1, "reflection": "r", "next_steps": "n",
              "achievement_status": "in_progress"},
        headers=patient.headers,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    review = r.json()
    r = await client.post(
        "/v1/encouragements",
        json={"client_id": patient.id, "goal_id": full["id"], "message": 'Well "done"'},
        headers=therapist.headers,
    )
    assert r.status_code == 201, r.text
    second = dt.datetime(2026, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    _whole_second(sync_engine, Goal.__table__, bare["id"], created_at=second, updated_at=second)
    _whole_second(sync_engine, Step.__table__, step["id"], completed_at=second)
    _whole_second(sync_engine, Review.__table__, review["id"], created_at=second)
    _whole_second(sync_engine, Encouragement.__table__, r.json()["id"], created_at=second)

    async def documents(actor) -> dict[tuple[str, str], dict]:
        """Each object the lists show, as its own GET answers it (encouragements have none:
        the list's item is their document)."""
        own: dict[tuple[str, str], dict] = {}
        for (kind, ident), item in (await listed(client, actor.headers)).items():
            if kind != "encouragement":
                r = await client.get(f"/v1/{kind}s/{ident}", headers=actor.headers)
                assert r.status_code == 200, r.text
                item = r.json()
            own[(kind, ident)] = item
        return own

    for actor in (patient, therapist):
        mirror: dict = {}
        cursor = await follow(client, actor.headers, mirror, None)  # the snapshot
        own = await documents(actor)
        assert len(own) >= 6 and mirror == own  # the client also has a celebration
        assert all(list(mirror[key]) == list(own[key]) for key in own)
        # The same objects again as followed changes (the feed's other renderer path).
        r = await client.patch(
            f"/v1/goals/{full['id']}", json={"category": actor.role}, headers=actor.headers
        )
        assert r.status_code == 200, r.text
        r = await client.patch(
            f"/v1/steps/{plain_step['id']}", json={"title": actor.id}, headers=actor.headers
        )
        assert r.status_code == 200, r.text
        r = await client.patch(
            f"/v1/goals/{bare['id']}", json={"title": actor.id}, headers=actor.headers
        )  # its nulls, followed
        assert r.status_code == 200, r.text
        page = await client.get("/v1/sync", params={"cursor": cursor}, headers=actor.headers)
        followed = {(c["type"], c["id"]): c["data"] for c in page.json()["changes"]}
        own = await documents(actor)
        assert {("goal", full["id"]), ("goal", bare["id"]), ("step", plain_step["id"])} <= set(
            followed
        )
        for key, data in followed.items():
            assert data == own[key] and list(data) == list(own[key]), key


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
