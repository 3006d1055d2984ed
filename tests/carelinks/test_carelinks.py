"""Care invites and links: codes, redeeming, listing, ending, and who may do what."""

import datetime as dt

import pytest
import sqlalchemy as sa

from app.carelinks.schemas import CareLinkOut, InviteOut
from tests.support.worlds import assert_problem, invite, link


async def test_invite_code_is_random_hashed_and_expires_in_seven_days(
    client, make_user, sync_engine
):
    therapist = await make_user("therapist")
    r = await client.post("/v1/care-invites", headers=therapist.headers)
    assert r.status_code == 201
    body = r.json()
    assert set(body) == set(InviteOut.model_fields)
    assert body["expires_at"].endswith("Z")
    expires = dt.datetime.fromisoformat(body["expires_at"])
    left = expires - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=6, hours=23) < left <= dt.timedelta(days=7)
    assert len(body["code"].replace("-", "")) >= 16  # 80 bits in base32
    other = await invite(client, therapist)
    assert other != body["code"]
    with sync_engine.connect() as conn:
        hashes = conn.execute(sa.text("SELECT code_hash FROM care_invites")).scalars().all()
    assert len(hashes) == 2
    assert body["code"] not in hashes and all(len(h) == 64 for h in hashes)


async def test_redeem_creates_link_with_both_parties(client, make_user):
    therapist = await make_user("therapist", name="Dr Rivera")
    patient = await make_user("client", name="Sam")
    code = await invite(client, therapist)
    # Case, dashes and spaces do not matter when typing the code in.
    r = await client.post(
        "/v1/care-links",
        json={"code": " " + code.lower().replace("-", " ") + " "},
        headers=patient.headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == set(CareLinkOut.model_fields)
    assert body["therapist"] == {"id": therapist.id, "display_name": "Dr Rivera"}
    assert body["client"] == {"id": patient.id, "display_name": "Sam"}
    assert body["created_at"].endswith("Z")
    for actor in (therapist, patient):
        page = (await client.get("/v1/care-links", headers=actor.headers)).json()
        assert page == {"items": [body], "next_cursor": None}


async def test_code_is_single_use(client, make_user):
    therapist = await make_user("therapist")
    first, second = await make_user("client"), await make_user("client")
    code = await invite(client, therapist)
    r = await client.post("/v1/care-links", json={"code": code}, headers=first.headers)
    assert r.status_code == 201
    r = await client.post("/v1/care-links", json={"code": code}, headers=second.headers)
    assert_problem(r, 404, "not-found")
    assert (await client.get("/v1/care-links", headers=second.headers)).json()["items"] == []


async def test_unknown_and_expired_codes_are_404(client, make_user, sync_engine):
    therapist = await make_user("therapist")
    patient = await make_user("client")
    r = await client.post(
        "/v1/care-links", json={"code": "AAAA-BBBB-CCCC-DDDD"}, headers=patient.headers
    )
    assert_problem(r, 404, "not-found")
    code = await invite(client, therapist)
    with sync_engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE care_invites SET expires_at = :t"),
            {"t": dt.datetime(2020, 1, 1)},
        )
    r = await client.post("/v1/care-links", json={"code": code}, headers=patient.headers)
    assert_problem(r, 404, "not-found")
    assert (await client.get("/v1/care-links", headers=patient.headers)).json()["items"] == []


async def test_already_linked_is_409_and_keeps_the_second_code_unused(client, make_user):
    therapist = await make_user("therapist")
    patient = await make_user("client")
    other = await make_user("client")
    await link(client, therapist, patient)
    code = await invite(client, therapist)
    r = await client.post("/v1/care-links", json={"code": code}, headers=patient.headers)
    assert_problem(r, 409, "conflict")
    # The failed attempt did not burn the code.
    r = await client.post("/v1/care-links", json={"code": code}, headers=other.headers)
    assert r.status_code == 201


async def test_roles_and_validation(client, make_user):
    therapist = await make_user("therapist")
    patient = await make_user("client")
    assert_problem(await client.post("/v1/care-invites", headers=patient.headers), 403, "forbidden")
    code = await invite(client, therapist)
    r = await client.post("/v1/care-links", json={"code": code}, headers=therapist.headers)
    assert_problem(r, 403, "forbidden")
    for body in ({}, {"code": ""}, {"code": code, "therapist_id": therapist.id}, {"code": 5}):
        r = await client.post("/v1/care-links", json=body, headers=patient.headers)
        assert_problem(r, 422, "validation-error")
    # None of those used the code.
    r = await client.post("/v1/care-links", json={"code": code}, headers=patient.headers)
    assert r.status_code == 201
    for method, path in (
        ("POST", "/v1/care-invites"),
        ("POST", "/v1/care-links"),
        ("GET", "/v1/care-links"),
        ("DELETE", f"/v1/care-links/{r.json()['id']}"),
    ):
        assert_problem(await client.request(method, path, json={}), 401, "unauthorized")


async def test_scoped_tokens_still_manage_links(client, make_user):
    """Care links need only the role scope, no goals scope."""
    therapist = await make_user("therapist", scope="reviews:read")
    patient = await make_user("client", scope="reviews:read")
    assert "goals:read" not in patient.scope
    created = await link(client, therapist, patient)
    assert len((await client.get("/v1/care-links", headers=patient.headers)).json()["items"]) == 1
    r = await client.delete(f"/v1/care-links/{created['id']}", headers=patient.headers)
    assert r.status_code == 204


@pytest.mark.parametrize("ender", ["therapist", "client"])
async def test_either_party_ends_link_and_therapist_loses_access_at_once(client, make_user, ender):
    therapist = await make_user("therapist")
    patient = await make_user("client")
    created = await link(client, therapist, patient)
    goal = await client.post("/v1/goals", json={"title": "Walk daily"}, headers=patient.headers)
    assert goal.status_code == 201, goal.text
    goal_id = goal.json()["id"]
    r = await client.get(f"/v1/goals/{goal_id}", headers=therapist.headers)
    assert r.status_code == 200
    who = therapist if ender == "therapist" else patient
    r = await client.delete(f"/v1/care-links/{created['id']}", headers=who.headers)
    assert r.status_code == 204
    # The therapist's token predates the end of the link and still stops working for the goal.
    assert_problem(await client.get(f"/v1/goals/{goal_id}", headers=therapist.headers), 404)
    r = await client.get("/v1/goals", headers=therapist.headers)
    assert r.json()["items"] == []
    r = await client.post(
        "/v1/goals", json={"title": "x", "client_id": patient.id}, headers=therapist.headers
    )
    assert_problem(r, 404, "not-found")
    for actor in (therapist, patient):
        assert (await client.get("/v1/care-links", headers=actor.headers)).json()["items"] == []
    # Ending twice, or ending someone else's link: 404.
    r = await client.delete(f"/v1/care-links/{created['id']}", headers=who.headers)
    assert_problem(r, 404, "not-found")
    # A fresh invite links them again.
    await link(client, therapist, patient)
    assert (await client.get(f"/v1/goals/{goal_id}", headers=therapist.headers)).status_code == 200


async def test_strangers_cannot_end_a_link(client, make_user):
    therapist = await make_user("therapist")
    patient = await make_user("client")
    created = await link(client, therapist, patient)
    for stranger in (await make_user("therapist"), await make_user("client")):
        r = await client.delete(f"/v1/care-links/{created['id']}", headers=stranger.headers)
        assert_problem(r, 404, "not-found")
    assert_problem(await client.delete("/v1/care-links/not-a-uuid", headers=patient.headers), 404)
    page = (await client.get("/v1/care-links", headers=therapist.headers)).json()
    assert [item["id"] for item in page["items"]] == [created["id"]]


async def test_ending_by_therapist_is_in_the_access_log(client, make_user, sync_engine):
    therapist = await make_user("therapist")
    patient = await make_user("client")
    created = await link(client, therapist, patient)
    await client.delete(f"/v1/care-links/{created['id']}", headers=therapist.headers)
    with sync_engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT action, object_type FROM access_log WHERE actor_id IS NOT NULL")
        ).all()
    assert ("delete", "care_link") in [tuple(r) for r in rows]


async def test_links_list_pages(client, make_user):
    therapist = await make_user("therapist")
    patients = [await make_user("client") for _ in range(5)]
    ids = {(await link(client, therapist, p))["id"] for p in patients}
    seen = []
    url = "/v1/care-links?limit=2"
    while url:
        r = await client.get(url, headers=therapist.headers)
        assert r.status_code == 200
        page = r.json()
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"]:
            assert 'rel="next"' in r.headers["link"]
            url = f"/v1/care-links?limit=2&cursor={page['next_cursor']}"
        else:
            assert "link" not in r.headers
            url = None
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    assert_problem(await client.get("/v1/care-links?cursor=zz", headers=therapist.headers), 400)
    for bad in (0, 201):
        r = await client.get(f"/v1/care-links?limit={bad}", headers=therapist.headers)
        assert_problem(r, 422, "validation-error")
