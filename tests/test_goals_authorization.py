"""The authorization matrix of api.md section 3, for every goal, step and care-link endpoint.

Callers: the client who owns the data, their linked therapist, an unlinked therapist, another
client, an anonymous caller, and the owner with a token lacking the scope the route needs.
Every denied request is followed by a look at the tables proving that nothing changed.
"""

from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from tests.conftest import assert_problem, login

ACTORS = ("owner", "therapist", "unlinked", "other", "anonymous", "no_scope")
WATCHED_TABLES = ("goals", "steps", "care_links", "care_invites", "encouragements", "changes")
SLUGS = {401: "unauthorized", 403: None, 404: "not-found"}


@dataclass
class World:
    actors: dict
    ids: dict
    owner_headers: dict


async def build_world(client, make_user, needs: str) -> World:
    owner = await make_user("client")
    therapist = await make_user("therapist")
    unlinked = await make_user("therapist")
    other = await make_user("client")
    # The owner again, with a token lacking the scope this route needs (care links need none).
    scope = {"read": "goals:write", "write": "goals:read", "role": "reviews:read"}[needs]
    token = (await login(client, owner.email, scope=scope)).json()
    assert token["scope"].split() == ["client", scope], token
    code = (await client.post("/v1/care-invites", headers=therapist.headers)).json()["code"]
    link = (await client.post("/v1/care-links", json={"code": code}, headers=owner.headers)).json()

    async def post(path, body, actor=owner):
        r = await client.post(path, json=body, headers=actor.headers)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    shared = await post("/v1/goals", {"title": "shared"})
    private = await post("/v1/goals", {"title": "private", "visibility": "private"})
    proposed = await post("/v1/goals", {"title": "by therapist", "client_id": owner.id}, therapist)
    ids = {
        "shared": shared,
        "private": private,
        "proposed": proposed,
        "shared_step": await post(f"/v1/goals/{shared}/steps", {"title": "s"}),
        "private_step": await post(f"/v1/goals/{private}/steps", {"title": "p"}),
        "link": link["id"],
        "owner": owner.id,
        "code": (await client.post("/v1/care-invites", headers=unlinked.headers)).json()["code"],
    }
    actors = {
        "owner": owner.headers,
        "therapist": therapist.headers,
        "unlinked": unlinked.headers,
        "other": other.headers,
        "anonymous": {},
        "no_scope": {"Authorization": f"Bearer {token['access_token']}"},
    }
    return World(actors, ids, owner.headers)


def snapshot(sync_engine) -> dict:
    with sync_engine.connect() as conn:
        return {
            table: sorted(
                tuple(str(v) for v in row)
                for row in conn.execute(sa.text(f"SELECT * FROM {table}"))
            )
            for table in WATCHED_TABLES
        }


# name: (method, path, body, scope the route needs, {actor: expected status})
S, P = "shared", "private"
READ_SHARED = dict(owner=200, therapist=200, unlinked=404, other=404, anonymous=401, no_scope=403)
READ_PRIVATE = {**READ_SHARED, "therapist": 404}
CASES = {
    "goals_get_shared": ("GET", "/v1/goals/{shared}", None, "read", READ_SHARED),
    "goals_get_private": ("GET", "/v1/goals/{private}", None, "read", READ_PRIVATE),
    "steps_list_shared": ("GET", "/v1/goals/{shared}/steps", None, "read", READ_SHARED),
    "steps_list_private": ("GET", "/v1/goals/{private}/steps", None, "read", READ_PRIVATE),
    "steps_get_shared": ("GET", "/v1/steps/{shared_step}", None, "read", READ_SHARED),
    "steps_get_private": ("GET", "/v1/steps/{private_step}", None, "read", READ_PRIVATE),
    "goals_list": (
        "GET", "/v1/goals", None, "read",
        dict(owner=200, therapist=200, unlinked=200, other=200, anonymous=401, no_scope=403),
    ),
    "goals_create": (
        "POST", "/v1/goals", {"title": "new", "client_id": "{owner}"}, "write",
        dict(owner=201, therapist=201, unlinked=404, other=404, anonymous=401, no_scope=403),
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
        dict(owner=403, therapist=201, unlinked=201, other=403, anonymous=401, no_scope=403),
    ),
    "care_links_create": (
        "POST", "/v1/care-links", {"code": "{code}"}, "role",
        dict(owner=201, therapist=403, unlinked=403, other=201, anonymous=401, no_scope=201),
    ),
    "care_links_list": (
        "GET", "/v1/care-links", None, "role",
        dict(owner=200, therapist=200, unlinked=200, other=200, anonymous=401, no_scope=200),
    ),
    "care_links_delete": (
        "DELETE", "/v1/care-links/{link}", None, "role",
        dict(owner=204, therapist=204, unlinked=404, other=404, anonymous=401, no_scope=204),
    ),
}  # fmt: skip


def fill(template, ids):
    if isinstance(template, str):
        return template.format(**ids)
    if isinstance(template, dict):
        return {k: fill(v, ids) for k, v in template.items()}
    return template


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("case", list(CASES))
async def test_matrix(client, make_user, sync_engine, case, actor):
    method, path, body, needs, expected = CASES[case]
    world = await build_world(client, make_user, needs)
    before = snapshot(sync_engine)
    r = await client.request(
        method, fill(path, world.ids), json=fill(body, world.ids), headers=world.actors[actor]
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
    world = await build_world(client, make_user, "read")
    ids = world.ids

    async def listed(actor):
        r = await client.get("/v1/goals", headers=world.actors[actor])
        return {g["id"] for g in r.json()["items"]}

    assert await listed("owner") == {ids["shared"], ids["private"], ids["proposed"]}
    assert await listed("therapist") == {ids["shared"], ids["proposed"]}
    assert await listed("unlinked") == set()
    assert await listed("other") == set()
    r = await client.get(f"/v1/goals?client_id={ids['owner']}", headers=world.actors["other"])
    assert r.json()["items"] == []


async def test_therapist_cannot_make_a_goal_private(client, make_user, sync_engine):
    world = await build_world(client, make_user, "write")
    before = snapshot(sync_engine)
    r = await client.patch(
        f"/v1/goals/{world.ids['shared']}",
        json={"visibility": "private"},
        headers=world.actors["therapist"],
    )
    assert_problem(r, 403, "forbidden")
    assert snapshot(sync_engine) == before
    r = await client.patch(
        f"/v1/goals/{world.ids['shared']}",
        json={"visibility": "private"},
        headers=world.actors["owner"],
    )
    assert r.status_code == 200
    r = await client.get(f"/v1/goals/{world.ids['shared']}", headers=world.actors["therapist"])
    assert_problem(r, 404, "not-found")


async def test_therapist_access_is_logged_for_the_client(client, make_user, sync_engine):
    world = await build_world(client, make_user, "read")
    therapist = world.actors["therapist"]
    await client.get("/v1/goals", headers=therapist)
    await client.get(f"/v1/goals/{world.ids['shared']}", headers=therapist)
    await client.get(f"/v1/goals/{world.ids['shared']}/steps", headers=therapist)
    await client.patch(
        f"/v1/steps/{world.ids['shared_step']}", json={"title": "t"}, headers=therapist
    )
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
    await client.get("/v1/goals", headers=world.actors["owner"])
    with sync_engine.connect() as conn:
        after = conn.execute(sa.text("SELECT count(*) FROM access_log")).scalar_one()
    assert after == before
