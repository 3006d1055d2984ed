"""Refresh tokens: rotation, reuse detection, concurrent use, logout."""

import asyncio
import datetime as dt
import hashlib

import sqlalchemy as sa

from tests.support.worlds import assert_problem, login


async def refresh(client, token, **extra):
    return await client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": token, **extra}
    )


def assert_invalid_grant(response):
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"
    assert response.headers["cache-control"] == "no-store"


async def test_refresh_rotates_the_token(client, make_user):
    ann = await make_user("client")
    r = await refresh(client, ann.refresh_token)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == ann.scope
    assert body["refresh_token"] != ann.refresh_token
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == ann.id
    # The new one works, once.
    again = await refresh(client, body["refresh_token"])
    assert again.status_code == 200


async def test_refresh_tokens_are_stored_only_hashed(client, make_user, sync_engine):
    ann = await make_user("client")
    with sync_engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM refresh_tokens")).mappings().all()
    assert len(rows) == 1
    assert rows[0]["token_hash"] == hashlib.sha256(ann.refresh_token.encode()).hexdigest()
    for value in rows[0].values():
        assert ann.refresh_token not in str(value)


async def test_a_used_refresh_token_is_refused_and_revokes_its_family(client, make_user):
    ann = await make_user("client")
    first = ann.refresh_token
    second = (await refresh(client, first)).json()["refresh_token"]
    third_response = await refresh(client, second)
    assert third_response.status_code == 200
    newest = third_response.json()["refresh_token"]

    # Someone replays the first token: refused, and the whole family ends...
    assert_invalid_grant(await refresh(client, first))
    # ...including the newest token, which the thief may hold.
    assert_invalid_grant(await refresh(client, newest))
    assert_invalid_grant(await refresh(client, second))


async def test_reuse_revokes_only_that_family(client, make_user):
    ann = await make_user("client")
    other_login = (await login(client, ann.email)).json()["refresh_token"]
    rotated = (await refresh(client, ann.refresh_token)).json()["refresh_token"]
    assert_invalid_grant(await refresh(client, ann.refresh_token))
    assert_invalid_grant(await refresh(client, rotated))
    assert (await refresh(client, other_login)).status_code == 200


async def test_two_concurrent_refreshes_of_one_token_at_most_one_wins(client, make_user):
    for _ in range(3):
        ann = await make_user("client")
        results = await asyncio.gather(
            refresh(client, ann.refresh_token),
            refresh(client, ann.refresh_token),
            refresh(client, ann.refresh_token),
        )
        statuses = sorted(r.status_code for r in results)
        assert statuses.count(200) <= 1, statuses
        assert all(s in (200, 400) for s in statuses), statuses
        for r in results:
            if r.status_code == 400:
                assert r.json()["error"] == "invalid_grant"
        # The original token is spent whatever happened.
        assert_invalid_grant(await refresh(client, ann.refresh_token))


async def test_an_expired_refresh_token_is_invalid_grant(client, make_user, sync_engine):
    ann = await make_user("client")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with sync_engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE refresh_tokens SET expires_at = :past"),
            {"past": past if conn.dialect.name == "postgresql" else past.replace(tzinfo=None)},
        )
    assert_invalid_grant(await refresh(client, ann.refresh_token))


async def test_refresh_keeps_the_current_role_from_the_account(client, make_user):
    tom = await make_user("therapist")
    r = await refresh(client, tom.refresh_token)
    assert r.json()["scope"].split()[0] == "therapist"


async def test_logout_ends_the_session_refresh_tokens(client, make_user):
    ann = await make_user("client")
    other_session = (await login(client, ann.email)).json()
    rotated = (await refresh(client, ann.refresh_token)).json()
    headers = {"Authorization": f"Bearer {rotated['access_token']}"}
    r = await client.post("/v1/auth/logout", headers=headers)
    assert r.status_code == 204
    assert r.content == b""
    assert_invalid_grant(await refresh(client, rotated["refresh_token"]))
    assert_invalid_grant(await refresh(client, ann.refresh_token))
    # Another login of the same person is a separate session and keeps working.
    assert (await refresh(client, other_session["refresh_token"])).status_code == 200


async def test_logout_needs_a_token(client):
    r = await client.post("/v1/auth/logout")
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
