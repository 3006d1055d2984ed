"""Encouragements: who may send to whom, the lists, marking read, celebrations."""

from __future__ import annotations

import pytest

from app.encouragements.schemas import EncouragementOut
from tests.support.worlds import (
    add_step,
    assert_problem,
    caller_matrix,
    make_world,
    new_goal,
    scoped_headers,
)


async def received(client, actor, **params) -> list[dict]:
    r = await client.get("/v1/encouragements", params=params, headers=actor.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


SEND = caller_matrix(201)


@pytest.mark.parametrize(("who", "expected"), SEND)
async def test_send_matrix(client, make_user, who, expected):
    world = await make_world(client, make_user)
    lacking = await scoped_headers(client, world.therapist, "encouragements:read goals:read")
    goal = world.goal_for(who)
    body = {"client_id": world.owner.id, "goal_id": goal["id"], "message": "You've got this."}
    r = await client.post("/v1/encouragements", json=body, headers=world.headers_for(who, lacking))
    if expected == 201:
        assert r.status_code == 201, r.text
        note = r.json()
        assert set(note) == set(EncouragementOut.model_fields)
        assert note["kind"] == "note"
        assert note["client_id"] == world.owner.id
        assert note["goal_id"] == goal["id"]
        assert note["read_at"] is None
        assert note["author_role"] == ("client" if who == "owner" else "therapist")
        assert [n["id"] for n in await received(client, world.owner)] == [note["id"]]
        return
    slug = {401: "unauthorized", 403: "insufficient-scope", 404: "not-found"}[expected]
    assert_problem(r, expected, slug)
    assert await received(client, world.owner) == []


async def test_who_receives(client, make_user):
    world = await make_world(client, make_user)
    owner, therapist = world.owner, world.therapist
    # A client writes to themself: client_id omitted or their own.
    for body in ({"message": "Be kind to yourself"}, {"client_id": owner.id, "message": "Again"}):
        r = await client.post("/v1/encouragements", json=body, headers=owner.headers)
        assert r.status_code == 201, r.text
        assert r.json()["client_id"] == owner.id
    # ... but never to someone else, even their therapist.
    for target in (therapist.id, world.other_client.id):
        r = await client.post(
            "/v1/encouragements", json={"client_id": target, "message": "Hi"}, headers=owner.headers
        )
        assert_problem(r, 404, "not-found")
    # A therapist must name a linked client (422 naming client_id when there is none).
    r = await client.post("/v1/encouragements", json={"message": "Hi"}, headers=therapist.headers)
    problem = assert_problem(r, 422, "validation-error")
    assert problem["errors"][0]["loc"] == ["body", "client_id"]
    r = await client.post(
        "/v1/encouragements",
        json={"client_id": world.other_client.id, "message": "Hi"},
        headers=therapist.headers,
    )
    assert_problem(r, 404, "not-found")
    assert await received(client, world.other_client) == []
    assert len(await received(client, owner)) == 2


async def test_goal_and_step_must_be_the_clients(client, make_user):
    world = await make_world(client, make_user)
    owner, therapist = world.owner, world.therapist
    others_goal = await new_goal(client, world.other_client, title="Someone else's")
    step = await add_step(client, owner, world.shared["id"])
    other_goal = await new_goal(client, owner, title="Second goal")
    private_step = await add_step(client, owner, world.private["id"])
    cases = [
        (owner, {"goal_id": others_goal["id"]}),
        (therapist, {"client_id": owner.id, "goal_id": others_goal["id"]}),
        (therapist, {"client_id": owner.id, "step_id": private_step["id"]}),
        (owner, {"goal_id": other_goal["id"], "step_id": step["id"]}),
        (owner, {"goal_id": "0190f000-0000-7000-8000-000000000000"}),
        (owner, {"step_id": "0190f000-0000-7000-8000-000000000000"}),
    ]
    for sender, fields in cases:
        r = await client.post(
            "/v1/encouragements", json={"message": "Nice", **fields}, headers=sender.headers
        )
        assert_problem(r, 404, "not-found")
    assert await received(client, owner) == []
    # A step alone brings its goal along.
    r = await client.post(
        "/v1/encouragements",
        json={"client_id": owner.id, "step_id": step["id"], "message": "First step!"},
        headers=therapist.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["goal_id"] == world.shared["id"]
    assert r.json()["step_id"] == step["id"]


@pytest.mark.parametrize(
    "body",
    [
        {"message": ""},
        {"message": "   "},
        {"message": "x" * 1001},
        {},
        {"message": "hi", "kind": "celebration"},
        {"message": "hi", "author_id": "0190f000-0000-7000-8000-000000000000"},
        {"message": "hi", "goal_id": "not-a-uuid"},
    ],
)
async def test_send_validation(client, make_user, body):
    owner = await make_user("client")
    r = await client.post("/v1/encouragements", json=body, headers=owner.headers)
    assert_problem(r, 422, "validation-error")
    assert await received(client, owner) == []


async def test_lists_mark_read_and_filters(client, make_user):
    world = await make_world(client, make_user)
    owner, therapist = world.owner, world.therapist
    notes = []
    for i in range(3):
        r = await client.post(
            "/v1/encouragements",
            json={"client_id": owner.id, "goal_id": world.shared["id"], "message": f"note {i}"},
            headers=therapist.headers,
        )
        notes.append(r.json())
    mine = await client.post("/v1/encouragements", json={"message": "self"}, headers=owner.headers)
    # The client: everything received, newest first. The therapist: what they sent.
    assert [n["message"] for n in await received(client, owner)] == [
        "self", "note 2", "note 1", "note 0",
    ]  # fmt: skip
    assert [n["message"] for n in await received(client, therapist)] == [
        "note 2", "note 1", "note 0",
    ]  # fmt: skip
    assert await received(client, world.stranger_therapist) == []
    assert await received(client, world.other_client) == []
    goal_only = await received(client, owner, goal_id=world.shared["id"])
    assert [n["message"] for n in goal_only] == ["note 2", "note 1", "note 0"]

    # Only the recipient marks read; a second call keeps the first read_at.
    target = notes[1]["id"]
    for someone in (therapist, world.stranger_therapist, world.other_client):
        r = await client.post(f"/v1/encouragements/{target}/read", headers=someone.headers)
        assert_problem(r, 404, "not-found")
    assert_problem(await client.post(f"/v1/encouragements/{target}/read"), 401)
    lacking = await scoped_headers(client, owner, "encouragements:read")
    r = await client.post(f"/v1/encouragements/{target}/read", headers=lacking)
    assert_problem(r, 403, "insufficient-scope")
    assert all(n["read_at"] is None for n in await received(client, owner))

    first = await client.post(f"/v1/encouragements/{target}/read", headers=owner.headers)
    assert first.status_code == 200
    assert first.json()["read_at"] is not None
    second = await client.post(f"/v1/encouragements/{target}/read", headers=owner.headers)
    assert second.status_code == 200
    assert second.json()["read_at"] == first.json()["read_at"]
    assert_problem(await client.post("/v1/encouragements/nope/read", headers=owner.headers), 404)

    unread = await received(client, owner, unread="true")
    assert target not in [n["id"] for n in unread] and len(unread) == 3
    assert [n["id"] for n in await received(client, owner, unread="false")] == [target]

    # Keyset pages.
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/encouragements", params=params, headers=owner.headers)
        page = r.json()
        seen += [n["id"] for n in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [mine.json()["id"], *[n["id"] for n in reversed(notes)]]

    # Reading needs encouragements:read.
    no_read = await scoped_headers(client, owner, "goals:read")
    assert_problem(await client.get("/v1/encouragements", headers=no_read), 403)
    assert_problem(await client.get("/v1/encouragements"), 401)


async def test_encouragements_on_a_deleted_goal_disappear(client, make_user):
    world = await make_world(client, make_user)
    r = await client.post(
        "/v1/encouragements",
        json={"client_id": world.owner.id, "goal_id": world.shared["id"], "message": "Go on"},
        headers=world.therapist.headers,
    )
    note = r.json()
    assert (
        await client.delete(f"/v1/goals/{world.shared['id']}", headers=world.owner.headers)
    ).status_code == 204
    assert await received(client, world.owner) == []
    assert await received(client, world.therapist) == []
    r = await client.post(f"/v1/encouragements/{note['id']}/read", headers=world.owner.headers)
    assert_problem(r, 404, "not-found")


async def test_ended_link_hides_sent_notes_from_the_therapist(client, make_user):
    world = await make_world(client, make_user)
    await client.post(
        "/v1/encouragements",
        json={"client_id": world.owner.id, "message": "Keep going"},
        headers=world.therapist.headers,
    )
    links = (await client.get("/v1/care-links", headers=world.owner.headers)).json()["items"]
    r = await client.delete(f"/v1/care-links/{links[0]['id']}", headers=world.owner.headers)
    assert r.status_code == 204
    assert await received(client, world.therapist) == []
    assert [n["message"] for n in await received(client, world.owner)] == ["Keep going"]


async def test_celebrations_appear_for_the_client(client, make_user):
    world = await make_world(client, make_user)
    owner, goal = world.owner, world.shared
    steps = [await add_step(client, owner, goal["id"], f"step {i}") for i in range(4)]

    async def mark(step, status):
        r = await client.patch(
            f"/v1/steps/{step['id']}", json={"status": status}, headers=owner.headers
        )
        assert r.status_code == 200, r.text

    await mark(steps[0], "done")
    assert await received(client, owner) == []
    await mark(steps[1], "done")  # half of the steps
    celebrations = await received(client, owner)
    assert [c["kind"] for c in celebrations] == ["celebration"]
    assert celebrations[0]["author_id"] is None
    assert celebrations[0]["goal_id"] == goal["id"]
    # Toggling back and forth does not celebrate again.
    await mark(steps[1], "todo")
    await mark(steps[1], "done")
    assert len(await received(client, owner)) == 1
    for step in steps[2:]:
        await mark(step, "done")  # all steps
    kinds = [c["kind"] for c in await received(client, owner)]
    assert kinds == ["celebration", "celebration"]
    # The therapist's list holds only what they sent; celebrations are the client's.
    assert await received(client, world.therapist) == []
    # A celebration can be marked read by the client.
    first = (await received(client, owner))[0]
    r = await client.post(f"/v1/encouragements/{first['id']}/read", headers=owner.headers)
    assert r.status_code == 200 and r.json()["read_at"]


async def test_idempotency_key_sends_once(client, make_user):
    world = await make_world(client, make_user)
    headers = {**world.therapist.headers, "Idempotency-Key": "note-1"}
    body = {"client_id": world.owner.id, "message": "Proud of you"}
    first = await client.post("/v1/encouragements", json=body, headers=headers)
    again = await client.post("/v1/encouragements", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert len(await received(client, world.owner)) == 1
    other = await client.post(
        "/v1/encouragements", json={**body, "message": "Different"}, headers=headers
    )
    assert_problem(other, 409, "conflict")
    assert len(await received(client, world.owner)) == 1


async def test_a_therapist_s_note_about_a_goal_goes_to_its_client(client, make_user):
    world = await make_world(client, make_user)
    owner, therapist = world.owner, world.therapist
    step = await add_step(client, owner, world.shared["id"])
    for body in ({"goal_id": world.shared["id"]}, {"step_id": step["id"]}):
        r = await client.post(
            "/v1/encouragements", json={**body, "message": "Well done"}, headers=therapist.headers
        )
        assert r.status_code == 201, r.text
        assert r.json()["client_id"] == owner.id
        assert r.json()["goal_id"] == world.shared["id"]
    # A goal the therapist may not read names no one: 404, as with client_id.
    others_goal = await new_goal(client, world.other_client, title="Someone else's")
    private_step = await add_step(client, owner, world.private["id"])
    for body in (
        {"goal_id": world.private["id"]},
        {"goal_id": others_goal["id"]},
        {"step_id": private_step["id"]},
    ):
        r = await client.post(
            "/v1/encouragements", json={**body, "message": "Hi"}, headers=therapist.headers
        )
        assert_problem(r, 404, "not-found")
    assert len(await received(client, owner)) == 2
