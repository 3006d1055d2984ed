"""The authorization matrix (owner, linked therapist, unlinked therapist, another client,
anonymous), for every goal, step and care-link endpoint.

Callers: ``tests.support.worlds.CALLERS`` in the shared world (``make_world``); the reads of
a goal and of its steps expect the shared ``caller_matrix``; ``no_scope`` is the owner with a
token lacking the scope the route needs.
Every denied request is followed by a look at the tables proving that nothing changed.
"""

import pytest
import sqlalchemy as sa

from tests.support.worlds import (
    CALLERS,
    World,
    assert_problem,
    caller_statuses,
    invite,
    login,
    make_world,
)

WATCHED_TABLES = ("goals", "steps", "care_links", "care_invites", "encouragements", "changes")
SLUGS = {401: "unauthorized", 403: None, 404: "not-found"}


async def build_world(client, make_user, needs: str) -> tuple[World, dict, dict[str, str]]:
    """The shared world, what the cases below point at (``ids``), and the owner's token
    lacking the scope the route needs (care links need none)."""
    world = await make_world(client, make_user)
    owner, therapist = world.owner, world.therapist
    scope = {"read": "goals:write", "write": "goals:read", "role": "reviews:read"}[needs]
    token = (await login(client, owner.email, scope=scope)).json()
    assert token["scope"].split() == ["client", scope], token
    lacking = {"Authorization": f"Bearer {token['access_token']}"}

    async def post(path, body, actor=owner):
        r = await client.post(path, json=body, headers=actor.headers)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    shared, private = world.shared["id"], world.private["id"]
    proposed = await post("/v1/goals", {"title": "by therapist", "client_id": owner.id}, therapist)
    ids = {
        "shared": shared,
        "private": private,
        "proposed": proposed,
        "shared_step": await post(f"/v1/goals/{shared}/steps", {"title": "s"}),
        "private_step": await post(f"/v1/goals/{private}/steps", {"title": "p"}),
        "link": world.care_link["id"],
        "owner": owner.id,
        "code": await invite(client, world.stranger_therapist),
    }
    return world, ids, lacking


def snapshot(sync_engine) -> dict:
    with sync_engine.connect() as conn:
        return {
            table: sorted(
                tuple(str(v) for v in row)
                for row in conn.execute(sa.text(f"SELECT * FROM {table}"))
            )
            for table in WATCHED_TABLES
        }


# Reads of the shared and the private goal (and of their steps): the shared caller matrix.
READ_SHARED = caller_statuses(200, "shared")
READ_PRIVATE = caller_statuses(200, "private")
# name: (method, path, body, scope the route needs, {caller: expected status})
CASES = {
    "goals_get_shared": ("GET", "/v1/goals/{shared}", None, "read", READ_SHARED),
    "goals_get_private": ("GET", "/v1/goals/{private}", None, "read", READ_PRIVATE),
    "steps_list_shared": ("GET", "/v1/goals/{shared}/steps", None, "read", READ_SHARED),
    "steps_list_private": ("GET", "/v1/goals/{private}/steps", None, "read", READ_PRIVATE),
    "steps_get_shared": ("GET", "/v1/steps/{shared_step}", None, "read", READ_SHARED),
    "steps_get_private": ("GET", "/v1/steps/{private_step}", None, "read", READ_PRIVATE),
    "goals_list": (
        "GET", "/v1/goals", None, "read",
        dict(owner=200, therapist=200, unlinked_therapist=200, other_client=200,
             anonymous=401, no_scope=403),
    ),
    "goals_create": (
        "POST", "/v1/goals", {"title": "new", "client_id": "{owner}"}, "write",
        dict(owner=201, therapist=201, unlinked_therapist=404, other_client=404,
             anonymous=401, no_scope=403),
    ),
    "goals_update_shared": (
        "PATCH", "/v1/goals/{shared}", {"title": "changed"}, "write", READ_SHARED | {"owner": 200},
    ),
    "goals_update_private": (
        "PATCH", "/v1/goals/{private}", {"title": "changed"}, "write", READ_PRIVATE,
    ),
    "goals_delete_shared_by_client": (
        "DELETE", "/v1/goals/{shared}", None, "write", READ_PRIVATE | {"owner": 204},
    ),
    "goals_delete_by_therapist": (
        "DELETE", "/v1/goals/{proposed}", None, "write",
        READ_SHARED | {"owner": 204, "therapist": 204},
    ),
    "goals_delete_private": (
        "DELETE", "/v1/goals/{private}", None, "write", READ_PRIVATE | {"owner": 204},
    ),
    "steps_create_shared": (
        "POST", "/v1/goals/{shared}/steps", {"title": "n"}, "write",
        READ_SHARED | {"owner": 201, "therapist": 201},
    ),
    "steps_create_private": (
        "POST", "/v1/goals/{private}/steps", {"title": "n"}, "write",
        READ_PRIVATE | {"owner": 201},
    ),
    "steps_update_shared": (
        "PATCH", "/v1/steps/{shared_step}", {"status": "done"}, "write", READ_SHARED,
    ),
    "steps_update_private": (
        "PATCH", "/v1/steps/{private_step}", {"status": "done"}, "write", READ_PRIVATE,
    ),
    "steps_delete_shared": (
        "DELETE", "/v1/steps/{shared_step}", None, "write",
        READ_SHARED | {"owner": 204, "therapist": 204},
    ),
    "steps_delete_private": (
        "DELETE", "/v1/steps/{private_step}", None, "write", READ_PRIVATE | {"owner": 204},
    ),
    "care_invites_create": (
        "POST", "/v1/care-invites", None, "role",
        dict(owner=403, therapist=201, unlinked_therapist=201, other_client=403,
             anonymous=401, no_scope=403),
    ),
    "care_links_create": (
        "POST", "/v1/care-links", {"code": "{code}"}, "role",
        dict(owner=201, therapist=403, unlinked_therapist=403, other_client=201,
             anonymous=401, no_scope=201),
    ),
    "care_links_list": (
        "GET", "/v1/care-links", None, "role",
        dict(owner=200, therapist=200, unlinked_therapist=200, other_client=200,
             anonymous=401, no_scope=200),
    ),
    "care_links_delete": (
        "DELETE", "/v1/care-links/{link}", None, "role",
        dict(owner=204, therapist=204, unlinked_therapist=404, other_client=404,
             anonymous=401, no_scope=204),
    ),
}  # fmt: skip


def fill(template, ids):
    if isinstance(template, str):
        return template.format(**ids)
    if isinstance(template, dict):
        return {k: fill(v, ids) for k, v in template.items()}
    return template


@pytest.mark.parametrize("actor", CALLERS)
@pytest.mark.parametrize("case", list(CASES))
async def test_matrix(client, make_user, sync_engine, case, actor):
    method, path, body, needs, expected = CASES[case]
    world, ids, lacking = await build_world(client, make_user, needs)
    before = snapshot(sync_engine)
    r = await client.request(
        method, fill(path, ids), json=fill(body, ids), headers=world.headers_for(actor, lacking)
    )
    status = expected[actor]
    if status >= 400:
        slug = SLUGS[status]
        if status == 403:
            slug = "insufficient-scope" if needs in ("read", "write") else "forbidden"
        assert_problem(r, status, slug)
        if status == 401:
            assert r.headers["www-authenticate"].startswith("Bearer")
        assert snapshot(sync_engine) == before, "a denied request changed something"
    else:
        assert r.status_code == status, r.text
        if method == "GET":
            assert snapshot(sync_engine) == before


async def test_lists_show_exactly_what_each_caller_may_see(client, make_user):
    world, ids, _ = await build_world(client, make_user, "read")

    async def listed(actor):
        r = await client.get("/v1/goals", headers=world.headers_for(actor))
        return {g["id"] for g in r.json()["items"]}

    assert await listed("owner") == {ids["shared"], ids["private"], ids["proposed"]}
    assert await listed("therapist") == {ids["shared"], ids["proposed"]}
    assert await listed("unlinked_therapist") == set()
    assert await listed("other_client") == set()
    r = await client.get(f"/v1/goals?client_id={ids['owner']}", headers=world.other_client.headers)
    assert r.json()["items"] == []


async def test_therapist_cannot_make_a_goal_private(client, make_user, sync_engine):
    world, ids, _ = await build_world(client, make_user, "write")
    before = snapshot(sync_engine)
    r = await client.patch(
        f"/v1/goals/{ids['shared']}",
        json={"visibility": "private"},
        headers=world.therapist.headers,
    )
    assert_problem(r, 403, "forbidden")
    assert snapshot(sync_engine) == before
    r = await client.patch(
        f"/v1/goals/{ids['shared']}",
        json={"visibility": "private"},
        headers=world.owner.headers,
    )
    assert r.status_code == 200
    r = await client.get(f"/v1/goals/{ids['shared']}", headers=world.therapist.headers)
    assert_problem(r, 404, "not-found")


async def test_therapist_access_is_logged_for_the_client(client, make_user, sync_engine):
    world, ids, _ = await build_world(client, make_user, "read")
    therapist = world.therapist.headers
    await client.get("/v1/goals", headers=therapist)
    await client.get(f"/v1/goals/{ids['shared']}", headers=therapist)
    await client.get(f"/v1/goals/{ids['shared']}/steps", headers=therapist)
    await client.patch(f"/v1/steps/{ids['shared_step']}", json={"title": "t"}, headers=therapist)
    with sync_engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT action, object_type FROM access_log WHERE actor_role = 'therapist'")
        ).all()
    entries = [tuple(r) for r in rows]
    # The setup's proposed goal, two goals listed, one read, one step listed, one step updated.
    assert entries.count(("read", "goal")) == 3
    assert ("create", "goal") in entries and ("update", "step") in entries
    assert ("read", "step") in entries
    # The owner's own reads are not logged.
    before = len(entries)
    await client.get("/v1/goals", headers=world.owner.headers)
    with sync_engine.connect() as conn:
        after = conn.execute(sa.text("SELECT count(*) FROM access_log")).scalar_one()
    assert after == before
