"""A credential does not outlive its session: logout, a reused refresh token, a revoked personal
token, every session of an account revoked, the account deleted: 401 at once, on every route."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from app.auth import sessions
from app.models import AuthSession, User
from tests.support.worlds import assert_problem, login

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


async def secured_operations(client) -> list[tuple[str, str]]:
    document = (await client.get("/openapi.json")).json()
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS and operation.get("security"):
                found.append((method, path.replace("{", "").replace("}", "")))
    return found


async def assert_refused_everywhere(client, headers: dict[str, str]) -> None:
    operations = await secured_operations(client)
    assert len(operations) >= 25
    for method, path in operations:
        # Path parameters are nonsense on purpose: the token is refused before anything else.
        url = path.replace("goal_id", str(uuid.uuid4())).replace("_id", "")
        kwargs = {"json": {}} if method in ("post", "patch") else {}
        r = await client.request(method, url, headers=headers, **kwargs)
        if path.startswith("/v1/fhir/"):  # FHIR answers its own error resource
            assert r.status_code == 401, (method, path, r.text)
            assert r.json()["resourceType"] == "OperationOutcome", r.text
        else:
            assert_problem(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer", (method, path)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_logout_ends_the_access_token_on_every_route(client, make_user):
    ann = await make_user("client")
    other = await login(client, ann.email)  # a second login of the same account
    assert (await client.get("/v1/goals", headers=ann.headers)).status_code == 200
    r = await client.post("/v1/auth/logout", headers=ann.headers)
    assert r.status_code == 204
    await assert_refused_everywhere(client, ann.headers)
    refreshed = await client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": ann.refresh_token}
    )
    assert refreshed.json()["error"] == "invalid_grant"
    # Only that login ended.
    assert (await client.get("/v1/me", headers=bearer(other.json()["access_token"]))).is_success


async def test_a_reused_refresh_token_ends_every_access_token_of_its_family(client, make_user):
    ann = await make_user("client")
    first = await client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": ann.refresh_token}
    )
    assert first.status_code == 200
    newer = bearer(first.json()["access_token"])
    assert (await client.get("/v1/me", headers=newer)).status_code == 200
    reuse = await client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": ann.refresh_token}
    )
    assert reuse.json()["error"] == "invalid_grant"
    await assert_refused_everywhere(client, ann.headers)
    await assert_refused_everywhere(client, newer)


async def test_a_revoked_personal_token_is_refused_everywhere(client, make_user):
    ann = await make_user("client")
    created = await client.post(
        "/v1/me/tokens", json={"name": "script", "scopes": ["goals:read"]}, headers=ann.headers
    )
    pat = bearer(created.json()["token"])
    assert (await client.get("/v1/goals", headers=pat)).status_code == 200
    r = await client.delete(f"/v1/me/tokens/{created.json()['id']}", headers=ann.headers)
    assert r.status_code == 204
    await assert_refused_everywhere(client, pat)
    assert (await client.get("/v1/me", headers=ann.headers)).status_code == 200


async def test_revoke_all_sessions_ends_every_login_and_personal_token(client, make_user):
    from app.auth.service import revoke_all_sessions
    from app.core.sessions import new_session

    ann = await make_user("client")
    bob = await make_user("client")
    second = (await login(client, ann.email)).json()
    pat = (
        await client.post(
            "/v1/me/tokens", json={"name": "s", "scopes": ["goals:read"]}, headers=ann.headers
        )
    ).json()["token"]
    for headers in (ann.headers, bearer(second["access_token"]), bearer(pat)):
        assert (await client.get("/v1/goals", headers=headers)).status_code == 200

    async with new_session(write=True) as session:
        await revoke_all_sessions(session, uuid.UUID(ann.id))
        await session.commit()

    for headers in (ann.headers, bearer(second["access_token"]), bearer(pat)):
        await assert_refused_everywhere(client, headers)
    for refresh in (ann.refresh_token, second["refresh_token"]):
        r = await client.post(
            "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh}
        )
        assert r.json()["error"] == "invalid_grant"
    assert (await client.get("/v1/goals", headers=bob.headers)).status_code == 200  # not Bob
    assert (await login(client, ann.email)).status_code == 200  # the password still works


async def test_a_deleted_account_s_tokens_are_refused(client, make_user, sync_engine, fake_clock):
    fake_clock.install(sessions)
    therapist = await make_user("therapist")
    ann = await make_user("client")
    code = (await client.post("/v1/care-invites", headers=therapist.headers)).json()["code"]
    await client.post("/v1/care-links", json={"code": code}, headers=ann.headers)
    pat = (
        await client.post(
            "/v1/me/tokens", json={"name": "s", "scopes": ["goals:read"]}, headers=ann.headers
        )
    ).json()["token"]
    assert (await client.get("/v1/goals", headers=ann.headers)).status_code == 200

    with sync_engine.connect() as conn:  # as `DELETE /v1/me` erases an account
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")  # as the app's connections have it
            conn.commit()
        conn.execute(sa.delete(User.__table__).where(User.__table__.c.id == uuid.UUID(ann.id)))
        left = conn.scalar(
            sa.select(sa.func.count())
            .select_from(AuthSession.__table__)
            .where(AuthSession.__table__.c.user_id == uuid.UUID(ann.id))
        )
        conn.commit()
    assert left == 0  # the account's sessions went with it

    # Writes look the session up in their own transaction: refused at once (this was a 500).
    r = await client.post(
        "/v1/encouragements", json={"client_id": ann.id, "message": "hi"}, headers=ann.headers
    )
    assert_problem(r, 401, "unauthorized")
    assert_problem(await client.get("/v1/goals", headers=bearer(pat)), 401, "unauthorized")
    # Reads trust a session found live for at most a second (app/auth/sessions.py).
    fake_clock.advance(sessions.LIVE_SECONDS + 0.05)
    await assert_refused_everywhere(client, ann.headers)


async def test_sessions_are_looked_up_at_most_once_a_second_for_reads(
    client, make_user, count_statements, fake_clock
):
    fake_clock.install(sessions)  # the five reads fall within the second however slow they are
    ann = await make_user("client")
    count_statements.statements.clear()
    for _ in range(5):
        assert (await client.get("/v1/me", headers=ann.headers)).status_code == 200
    lookups = [q for q in count_statements.statements if "auth_sessions" in q]
    assert len(lookups) <= 1, lookups
    count_statements.statements.clear()
    r = await client.patch("/v1/me", json={"display_name": "Ann"}, headers=ann.headers)
    assert r.status_code == 200
    assert sum("auth_sessions" in q for q in count_statements.statements) == 1  # writes: always
