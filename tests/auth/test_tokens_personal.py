"""Personal access tokens: scoped, shown once, stored hashed, never wider, revocable."""

import datetime as dt
import hashlib
import uuid

import pytest
import sqlalchemy as sa

from app.auth.schemas import PersonalTokenCreated
from tests.support.worlds import assert_problem, login


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create_token(client, actor, **body):
    body = {"name": "sync script", "scopes": ["goals:read"], **body}
    return await client.post("/v1/me/tokens", headers=actor.headers, json=body)


async def test_create_shows_the_token_once(client, make_user):
    ann = await make_user("client")
    r = await create_token(client, ann, expires_in_days=30)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == set(PersonalTokenCreated.model_fields) and body["token"]
    assert uuid.UUID(body["id"])
    assert body["name"] == "sync script"
    assert body["scopes"] == ["client", "goals:read"]
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert body["expires_at"].endswith("Z")
    assert abs(expires - (dt.datetime.now(dt.UTC) + dt.timedelta(days=30))) < dt.timedelta(
        minutes=1
    )
    listed = await client.get("/v1/me/tokens", headers=ann.headers)
    assert listed.status_code == 200
    page = listed.json()
    assert set(page) == {"items", "next_cursor"}
    assert page["next_cursor"] is None
    assert len(page["items"]) == 1
    item = page["items"][0]
    assert "token" not in item
    assert body["token"] not in listed.text
    assert item["id"] == body["id"]
    assert item["name"] == "sync script"
    assert item["scopes"] == ["client", "goals:read"]
    assert item["expires_at"] == body["expires_at"]


async def test_a_token_without_expiry(client, make_user):
    ann = await make_user("client")
    r = await create_token(client, ann)
    assert r.status_code == 201
    assert r.json()["expires_at"] is None


async def test_tokens_are_stored_only_hashed(client, make_user, sync_engine):
    ann = await make_user("client")
    token = (await create_token(client, ann)).json()["token"]
    with sync_engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM personal_access_tokens")).mappings().all()
    assert len(rows) == 1
    assert rows[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    for value in rows[0].values():
        assert token not in str(value)


async def test_a_personal_token_acts_with_exactly_its_scopes(client, make_user, scoped_routes):
    ann = await make_user("client")
    token = (await create_token(client, ann, scopes=["goals:read"])).json()["token"]
    me = await client.get("/v1/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["id"] == ann.id
    read = await client.get("/v1/_probe/read", headers=bearer(token))
    assert read.status_code == 200
    assert read.json() == {"scopes": ["client", "goals:read"]}
    assert_problem(
        await client.get("/v1/_probe/write", headers=bearer(token)), 403, "insufficient-scope"
    )


async def test_a_token_cannot_be_wider_than_its_creator(client, make_user, sync_engine):
    ann = await make_user("client", scope="goals:read")
    for scopes in (["goals:write"], ["goals:read", "reviews:read"], ["therapist"]):
        r = await create_token(client, ann, scopes=scopes)
        assert_problem(r, 403, "insufficient-scope")
    # A personal token cannot mint a wider one either.
    narrow = (await create_token(client, ann, scopes=["goals:read"])).json()["token"]
    wider = await client.post(
        "/v1/me/tokens",
        headers=bearer(narrow),
        json={"name": "escalate", "scopes": ["goals:write"]},
    )
    assert_problem(wider, 403, "insufficient-scope")
    with sync_engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM personal_access_tokens")).scalar_one()
    assert count == 1


async def test_a_therapist_token_is_a_therapist(client, make_user):
    tom = await make_user("therapist")
    r = await create_token(client, tom, scopes=["therapist", "goals:read"])
    assert r.status_code == 201
    assert r.json()["scopes"] == ["therapist", "goals:read"]
    assert_problem(await create_token(client, tom, scopes=["client"]), 403)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["goals:delete"]},
        {"name": "", "scopes": ["goals:read"]},
        {"name": "x" * 101, "scopes": ["goals:read"]},
        {"scopes": ["goals:read"]},
        {"name": "x"},
        {"name": "x", "scopes": ["goals:read"], "expires_in_days": 0},
        {"name": "x", "scopes": ["goals:read"], "expires_in_days": 366},
        {"name": "x", "scopes": ["goals:read"], "token": "wpt_mine"},
        {"name": "x", "scopes": ["goals:read"], "user_id": str(uuid.uuid4())},
    ],
)
async def test_bad_token_requests_are_422(client, make_user, body, sync_engine):
    ann = await make_user("client")
    r = await client.post("/v1/me/tokens", headers=ann.headers, json=body)
    assert_problem(r, 422, "validation-error")
    with sync_engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM personal_access_tokens")).scalar_one()
    assert count == 0


async def test_delete_revokes_the_token(client, make_user):
    ann = await make_user("client")
    created = (await create_token(client, ann)).json()
    assert (await client.get("/v1/me", headers=bearer(created["token"]))).status_code == 200
    r = await client.delete(f"/v1/me/tokens/{created['id']}", headers=ann.headers)
    assert r.status_code == 204
    assert r.content == b""
    gone = await client.get("/v1/me", headers=bearer(created["token"]))
    assert_problem(gone, 401, "unauthorized")
    assert gone.headers["www-authenticate"] == "Bearer"
    assert (await client.get("/v1/me/tokens", headers=ann.headers)).json()["items"] == []
    again = await client.delete(f"/v1/me/tokens/{created['id']}", headers=ann.headers)
    assert_problem(again, 404, "not-found")


async def test_another_users_token_is_404_and_survives(client, make_user):
    ann = await make_user("client")
    bob = await make_user("client")
    created = (await create_token(client, ann)).json()
    r = await client.delete(f"/v1/me/tokens/{created['id']}", headers=bob.headers)
    assert_problem(r, 404, "not-found")
    assert (await client.get("/v1/me/tokens", headers=bob.headers)).json()["items"] == []
    assert (await client.get("/v1/me", headers=bearer(created["token"]))).status_code == 200
    for bad_id in ("not-a-uuid", str(uuid.uuid4()), "1"):
        assert_problem(
            await client.delete(f"/v1/me/tokens/{bad_id}", headers=ann.headers), 404, "not-found"
        )


async def test_an_expired_personal_token_is_401(client, make_user, sync_engine):
    ann = await make_user("client")
    token = (await create_token(client, ann, expires_in_days=1)).json()["token"]
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with sync_engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE personal_access_tokens SET expires_at = :past"),
            {"past": past if conn.dialect.name == "postgresql" else past.replace(tzinfo=None)},
        )
    assert_problem(await client.get("/v1/me", headers=bearer(token)), 401, "unauthorized")


async def test_personal_tokens_page_with_a_cursor(client, make_user):
    ann = await make_user("client")
    ids = [(await create_token(client, ann, name=f"t{i}")).json()["id"] for i in range(3)]
    first = await client.get("/v1/me/tokens?limit=2", headers=ann.headers)
    assert first.status_code == 200
    page = first.json()
    assert len(page["items"]) == 2
    assert page["next_cursor"]
    assert 'rel="next"' in first.headers["link"]
    second = await client.get(
        "/v1/me/tokens", params={"limit": 2, "cursor": page["next_cursor"]}, headers=ann.headers
    )
    rest = second.json()
    assert rest["next_cursor"] is None
    seen = [t["id"] for t in page["items"] + rest["items"]]
    assert sorted(seen) == sorted(ids)
    assert_problem(await client.get("/v1/me/tokens?cursor=garbage", headers=ann.headers), 400)
    assert_problem(await client.get("/v1/me/tokens?limit=0", headers=ann.headers), 422)
    assert_problem(await client.get("/v1/me/tokens?limit=201", headers=ann.headers), 422)


async def test_a_password_login_after_revoking_all_tokens_still_works(client, make_user):
    ann = await make_user("client")
    created = (await create_token(client, ann)).json()
    await client.delete(f"/v1/me/tokens/{created['id']}", headers=ann.headers)
    assert (await login(client, ann.email)).status_code == 200
