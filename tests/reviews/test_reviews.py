"""Reviews: append-only check-ins, their side effects on the goal, the authorization matrix."""

from __future__ import annotations

import datetime as dt

import anyio
import pytest
import sqlalchemy as sa

from app.reviews.schemas import ReviewOut
from tests.support.worlds import (
    Actor,
    assert_problem,
    caller_matrix,
    make_world,
    new_goal,
    scoped_headers,
)

WHO = caller_matrix(201)


@pytest.mark.parametrize(("who", "expected"), WHO)
async def test_add_review_matrix(client, make_user, who, expected):
    world = await make_world(client, make_user)
    lacking = await scoped_headers(client, world.owner, "goals:read reviews:read")
    goal = world.goal_for(who)
    r = await client.post(
        f"/v1/goals/{goal['id']}/reviews",
        json={"rating": 6, "gas_score": 1, "achievement_status": "improving"},
        headers=world.headers_for(who, lacking),
    )
    if expected == 201:
        assert r.status_code == 201, r.text
        body = r.json()
        assert r.headers["location"] == f"/v1/reviews/{body['id']}"
        role = "client" if who == "owner" else "therapist"
        assert body["author_role"] == role
        assert body["goal_id"] == goal["id"]
        assert set(body) == set(ReviewOut.model_fields)
        return
    slug = {401: "unauthorized", 403: "insufficient-scope", 404: "not-found"}[expected]
    assert_problem(r, expected, slug)
    # Nothing changed: no review, the goal untouched.
    listed = await client.get(f"/v1/goals/{goal['id']}/reviews", headers=world.owner.headers)
    assert listed.json()["items"] == []
    after = (await client.get(f"/v1/goals/{goal['id']}", headers=world.owner.headers)).json()
    assert after["version"] == goal["version"]
    assert after["progress"]["latest_rating"] is None
    assert after["achievement_status"] is None


READ_WHO = caller_matrix(200)


@pytest.mark.parametrize(("who", "expected"), READ_WHO)
async def test_list_and_get_review_matrix(client, make_user, who, expected):
    world = await make_world(client, make_user)
    lacking = await scoped_headers(client, world.owner, "goals:read reviews:write")
    goal = world.goal_for(who)
    made = await client.post(
        f"/v1/goals/{goal['id']}/reviews", json={"rating": 4}, headers=world.owner.headers
    )
    review_id = made.json()["id"]
    headers = world.headers_for(who, lacking)
    listed = await client.get(f"/v1/goals/{goal['id']}/reviews", headers=headers)
    one = await client.get(f"/v1/reviews/{review_id}", headers=headers)
    if expected == 200:
        assert listed.status_code == 200 and one.status_code == 200
        assert [item["id"] for item in listed.json()["items"]] == [review_id]
        assert one.json()["rating"] == 4
    else:
        slug = {401: "unauthorized", 403: "insufficient-scope", 404: "not-found"}[expected]
        assert_problem(listed, expected, slug)
        assert_problem(one, expected, slug)


async def test_review_updates_the_goal(client, make_user):
    world = await make_world(client, make_user)
    goal = world.shared
    before = dt.datetime.now(dt.UTC)
    r = await client.post(
        f"/v1/goals/{goal['id']}/reviews",
        json={
            "rating": 7,
            "gas_score": -1,
            "achievement_status": "improving",
            "reflection": "Mornings are easier.",
            "next_steps": "Keep the walks.",
        },
        headers=world.owner.headers,
    )
    assert r.status_code == 201, r.text
    review = r.json()
    assert review["reflection"] == "Mornings are easier."
    assert review["author_id"] == world.owner.id
    after = (await client.get(f"/v1/goals/{goal['id']}", headers=world.owner.headers)).json()
    assert after["achievement_status"] == "improving"
    assert after["progress"]["latest_rating"] == 7
    assert after["progress"]["latest_gas_score"] == -1
    assert after["version"] == goal["version"] + 1
    assert after["updated_at"] > goal["updated_at"]
    due = dt.date.fromisoformat(after["next_review_due"])
    assert due == before.date() + dt.timedelta(days=7) or due == dt.date.today() + dt.timedelta(
        days=7
    )

    # A second review without gas_score or achievement_status keeps those.
    r = await client.post(
        f"/v1/goals/{goal['id']}/reviews", json={"rating": 3}, headers=world.therapist.headers
    )
    assert r.status_code == 201
    again = (await client.get(f"/v1/goals/{goal['id']}", headers=world.owner.headers)).json()
    assert again["progress"]["latest_rating"] == 3
    assert again["progress"]["latest_gas_score"] == -1
    assert again["achievement_status"] == "improving"
    assert again["version"] == after["version"] + 1

    # Newest first.
    listed = (
        await client.get(f"/v1/goals/{goal['id']}/reviews", headers=world.owner.headers)
    ).json()
    assert [i["rating"] for i in listed["items"]] == [3, 7]


async def test_review_without_interval_leaves_no_due_date(client, make_user):
    owner = await make_user("client")
    goal = await new_goal(client, owner)
    r = await client.post(
        f"/v1/goals/{goal['id']}/reviews", json={"rating": 5}, headers=owner.headers
    )
    assert r.status_code == 201
    after = (await client.get(f"/v1/goals/{goal['id']}", headers=owner.headers)).json()
    assert after["next_review_due"] is None
    assert after["progress"]["latest_rating"] == 5


@pytest.mark.parametrize(
    "body",
    [
        {"rating": -1},
        {"rating": 11},
        {"rating": "5"},
        {"rating": 5.5},
        {},
        {"rating": 5, "gas_score": 3},
        {"rating": 5, "gas_score": -3},
        {"rating": 5, "achievement_status": "in-progress"},
        {"rating": 5, "reflection": "x" * 5001},
        {"rating": 5, "next_steps": "x" * 5001},
        {"rating": 5, "author_id": "00000000-0000-0000-0000-000000000000"},
        {"rating": 5, "created_at": "2026-01-01T00:00:00Z"},
    ],
)
async def test_review_validation(client, make_user, body):
    owner = await make_user("client")
    goal = await new_goal(client, owner, review_every_days=3)
    r = await client.post(f"/v1/goals/{goal['id']}/reviews", json=body, headers=owner.headers)
    assert_problem(r, 422, "validation-error")
    after = (await client.get(f"/v1/goals/{goal['id']}", headers=owner.headers)).json()
    assert after["version"] == goal["version"]
    listed = await client.get(f"/v1/goals/{goal['id']}/reviews", headers=owner.headers)
    assert listed.json()["items"] == []


async def test_review_bounds_are_accepted(client, make_user):
    owner = await make_user("client")
    goal = await new_goal(client, owner)
    for body in ({"rating": 0, "gas_score": -2}, {"rating": 10, "gas_score": 2}):
        r = await client.post(f"/v1/goals/{goal['id']}/reviews", json=body, headers=owner.headers)
        assert r.status_code == 201, r.text


async def test_reviews_are_append_only(client, make_user):
    owner = await make_user("client")
    goal = await new_goal(client, owner)
    review = (
        await client.post(
            f"/v1/goals/{goal['id']}/reviews", json={"rating": 5}, headers=owner.headers
        )
    ).json()
    for method, url in (
        ("PATCH", f"/v1/reviews/{review['id']}"),
        ("DELETE", f"/v1/reviews/{review['id']}"),
        ("PUT", f"/v1/reviews/{review['id']}"),
        ("PATCH", f"/v1/goals/{goal['id']}/reviews"),
        ("DELETE", f"/v1/goals/{goal['id']}/reviews"),
    ):
        r = await client.request(method, url, json={"rating": 1}, headers=owner.headers)
        assert_problem(r, 405)
        assert "GET" in r.headers["allow"]
    one = (await client.get(f"/v1/reviews/{review['id']}", headers=owner.headers)).json()
    assert one == review


async def test_review_on_unknown_or_deleted_goal_is_404(client, make_user):
    owner = await make_user("client")
    goal = await new_goal(client, owner)
    for goal_id in ("not-a-uuid", "0190f000-0000-7000-8000-000000000000"):
        r = await client.post(
            f"/v1/goals/{goal_id}/reviews", json={"rating": 5}, headers=owner.headers
        )
        assert_problem(r, 404, "not-found")
    assert (
        await client.delete(f"/v1/goals/{goal['id']}", headers=owner.headers)
    ).status_code == 204
    r = await client.post(
        f"/v1/goals/{goal['id']}/reviews", json={"rating": 5}, headers=owner.headers
    )
    assert_problem(r, 404, "not-found")


async def test_reviews_paginate_by_keyset(client, make_user):
    owner = await make_user("client")
    goal = await new_goal(client, owner)
    for rating in range(5):
        r = await client.post(
            f"/v1/goals/{goal['id']}/reviews", json={"rating": rating}, headers=owner.headers
        )
        assert r.status_code == 201
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await client.get(
            f"/v1/goals/{goal['id']}/reviews", params=params, headers=owner.headers
        )
        assert r.status_code == 200
        page = r.json()
        seen += [i["rating"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            assert "link" not in r.headers
            break
        assert 'rel="next"' in r.headers["link"]
    assert seen == [4, 3, 2, 1, 0]
    bad = await client.get(
        f"/v1/goals/{goal['id']}/reviews", params={"cursor": "garbage"}, headers=owner.headers
    )
    assert_problem(bad, 400)


async def test_idempotency_key_replays_a_review(client, make_user, sync_engine):
    owner = await make_user("client")
    goal = await new_goal(client, owner, review_every_days=7)
    headers = {**owner.headers, "Idempotency-Key": "review-1"}
    first = await client.post(
        f"/v1/goals/{goal['id']}/reviews", json={"rating": 8}, headers=headers
    )
    second = await client.post(
        f"/v1/goals/{goal['id']}/reviews", json={"rating": 8}, headers=headers
    )
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    with sync_engine.connect() as conn:
        count = conn.scalar(sa.text("SELECT count(*) FROM reviews"))
        version = conn.scalar(sa.text("SELECT version FROM goals"))
    assert count == 1
    assert version == goal["version"] + 1
    other = await client.post(
        f"/v1/goals/{goal['id']}/reviews", json={"rating": 2}, headers=headers
    )
    assert_problem(other, 409, "conflict")


async def test_review_writes_change_log_and_therapist_access(client, make_user, sync_engine):
    world = await make_world(client, make_user)
    r = await client.post(
        f"/v1/goals/{world.shared['id']}/reviews",
        json={"rating": 5},
        headers=world.therapist.headers,
    )
    assert r.status_code == 201
    with sync_engine.connect() as conn:
        changes = (
            conn.execute(
                sa.text("SELECT object_type FROM changes WHERE op = 'upsert' ORDER BY seq")
            )
            .scalars()
            .all()
        )
        accesses = (
            conn.execute(sa.text("SELECT action FROM access_log WHERE object_type = 'review'"))
            .scalars()
            .all()
        )
    assert changes[-2:] == ["review", "goal"]
    assert accesses == ["create"]


async def test_concurrent_reviews_apply_one_after_the_other(client, make_user):
    world = await make_world(client, make_user)
    goal = world.shared

    async def add(rating: int, actor: Actor) -> None:
        r = await client.post(
            f"/v1/goals/{goal['id']}/reviews", json={"rating": rating}, headers=actor.headers
        )
        assert r.status_code == 201, r.text

    async with anyio.create_task_group() as tg:
        for rating in range(8):
            tg.start_soon(add, rating, world.owner if rating % 2 else world.therapist)
    after = (await client.get(f"/v1/goals/{goal['id']}", headers=world.owner.headers)).json()
    reviews = (
        await client.get(f"/v1/goals/{goal['id']}/reviews", headers=world.owner.headers)
    ).json()["items"]
    assert len(reviews) == 8
    assert after["version"] == goal["version"] + 8  # no lost update
    # The goal carries the values of the review that was written last.
    assert after["progress"]["latest_rating"] == reviews[0]["rating"]
