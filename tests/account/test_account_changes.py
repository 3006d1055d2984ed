"""Password change, change of address and the list of sessions, with the messages they send
followed through a real SMTP server."""

from __future__ import annotations

import anyio
import pytest

from tests.support.mail import Inbox, SmtpServer, text_of
from tests.support.worlds import PASSWORD, assert_problem, link, login

NEW_PASSWORD = "a much newer passphrase"


@pytest.fixture
async def inbox(app_instance):
    server = SmtpServer().start()
    yield Inbox(server)
    server.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def change_password(client, actor, current=PASSWORD, new=NEW_PASSWORD, headers=None):
    return await client.post(
        "/v1/me/password",
        json={"current_password": current, "new_password": new},
        headers=headers or actor.headers,
    )


async def test_a_password_change_ends_every_other_session_and_sends_a_notice(
    client, make_user, inbox
):
    user = await make_user("client")
    other = (await login(client, user.email)).json()
    assert (await change_password(client, user)).status_code == 204
    assert (await client.get("/v1/me", headers=user.headers)).status_code == 200  # goes on
    assert_problem(await client.get("/v1/me", headers=bearer(other["access_token"])), 401)
    again = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": other["refresh_token"]},
    )
    assert again.status_code == 400
    # The caller's own refresh token still works.
    own = await client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": user.refresh_token}
    )
    assert own.status_code == 200
    assert (await login(client, user.email, NEW_PASSWORD)).status_code == 200
    assert (await login(client, user.email, PASSWORD)).status_code == 400
    notices = [m for m in await inbox.for_(user.email) if "password was changed" in m["Subject"]]
    assert len(notices) == 1
    assert "token=" not in text_of(notices[0])


async def test_a_wrong_current_password_is_403_and_counts_as_a_failed_login(
    client, make_user, monkeypatch
):
    from app.core.config import get_settings

    monkeypatch.setenv("WAYPOINT_LOGIN_FAILURES_PER_ACCOUNT", "3")
    get_settings.cache_clear()
    try:
        user = await make_user("client")
        for _ in range(3):
            r = await change_password(client, user, current="not the password")
            assert_problem(r, 403, "forbidden")
        # The throttle of the token endpoint now holds for this account, and here too.
        throttled = await login(client, user.email)
        assert throttled.status_code == 429 and "retry-after" in throttled.headers
        assert_problem(await change_password(client, user), 429, "rate-limited")
    finally:
        get_settings.cache_clear()
    assert (await login(client, user.email, NEW_PASSWORD)).status_code in (400, 429)


async def test_a_wrong_current_password_with_an_idempotency_key_is_403_not_a_hang(
    client, make_user
):
    # The key's row holds the request's write turn: the failed login must be counted after the
    # request's transaction, not beside it (on SQLite that waited for itself until a 503).
    user = await make_user("client")
    for n, (path, body) in enumerate(
        (
            ("/v1/me/password", {"current_password": "wrong", "new_password": NEW_PASSWORD}),
            ("/v1/me/email", {"current_password": "wrong", "new_email": "new@example.com"}),
        )
    ):
        with anyio.fail_after(20):
            r = await client.post(
                path, json=body, headers=user.headers | {"Idempotency-Key": f"wrong-{n}"}
            )
        assert_problem(r, 403, "forbidden")
    with anyio.fail_after(20):
        r = await change_password(client, user, headers=user.headers | {"Idempotency-Key": "ok"})
    assert r.status_code == 204


async def test_a_short_new_password_changes_nothing(client, make_user):
    user = await make_user("client")
    assert_problem(await change_password(client, user, new="short"), 422)
    assert (await login(client, user.email)).status_code == 200


async def test_an_address_change_is_confirmed_from_the_new_address(client, make_user, inbox):
    user = await make_user("client")
    new = "renamed@example.com"
    r = await client.post(
        "/v1/me/email", json={"new_email": new, "current_password": PASSWORD}, headers=user.headers
    )
    assert r.status_code == 202, r.text
    token = await inbox.last_token(new, "confirm-email")
    assert f"http://127.0.0.1:8000/confirm-email?token={token}" in text_of(
        (await inbox.for_(new))[-1]
    )
    notices = [m for m in await inbox.for_(user.email) if "new e-mail address" in m["Subject"]]
    assert len(notices) == 1 and "token=" not in text_of(notices[0])
    # Nothing changes until it is confirmed.
    me = (await client.get("/v1/me", headers=user.headers)).json()
    assert me["email"] == user.email
    assert (await login(client, new)).status_code == 400
    assert (await client.post("/v1/auth/confirm-email", json={"token": token})).status_code == 204
    me = (await client.get("/v1/me", headers=user.headers)).json()
    assert me["email"] == new and me["email_verified"] is True
    assert (await login(client, new)).status_code == 200
    assert (await login(client, user.email)).status_code == 400
    r = await client.post("/v1/auth/confirm-email", json={"token": token})
    assert_problem(r, 400, "invalid-token")


async def test_address_change_conflicts_and_wrong_password(client, make_user, inbox):
    user = await make_user("client")
    other = await make_user("client")
    taken = await client.post(
        "/v1/me/email",
        json={"new_email": other.email.upper(), "current_password": PASSWORD},
        headers=user.headers,
    )
    assert_problem(taken, 409, "conflict")
    wrong = await client.post(
        "/v1/me/email",
        json={"new_email": "free@example.com", "current_password": "nope nope nope"},
        headers=user.headers,
    )
    assert_problem(wrong, 403, "forbidden")
    # Taken meanwhile: the confirmation answers 409 and the account keeps its address.
    r = await client.post(
        "/v1/me/email",
        json={"new_email": "wanted@example.com", "current_password": PASSWORD},
        headers=user.headers,
    )
    assert r.status_code == 202
    token = await inbox.last_token("wanted@example.com", "confirm-email")
    await make_user_with_email(client, "wanted@example.com")
    r = await client.post("/v1/auth/confirm-email", json={"token": token})
    assert_problem(r, 409, "conflict")
    me = (await client.get("/v1/me", headers=user.headers)).json()
    assert me["email"] == user.email


async def make_user_with_email(client, email):
    r = await client.post(
        "/v1/auth/register",
        json={"email": email, "password": PASSWORD, "display_name": "W", "role": "client"},
    )
    assert r.status_code == 201, r.text


async def test_the_list_of_sessions_and_ending_one(client, make_user):
    user = await make_user("client")
    phone = await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": user.email, "password": PASSWORD},
        headers={"User-Agent": "WaypointApp/2.1 (iPhone)"},
    )
    phone_tokens = phone.json()
    pat = await client.post(
        "/v1/me/tokens", json={"name": "script", "scopes": ["goals:read"]}, headers=user.headers
    )
    listed = await client.get("/v1/me/sessions", headers=user.headers)
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert len(items) == 2  # password logins only, not the personal access token
    newest, first = items
    assert newest["user_agent"] == "WaypointApp/2.1 (iPhone)" and newest["current"] is False
    assert first["current"] is True
    assert newest["created_at"] >= first["created_at"]
    assert first["last_used_at"] is not None
    # A personal access token sees the sessions, none of them its own.
    by_pat = await client.get("/v1/me/sessions", headers=bearer(pat.json()["token"]))
    assert [i["current"] for i in by_pat.json()["items"]] == [False, False]

    r = await client.delete(f"/v1/me/sessions/{newest['id']}", headers=user.headers)
    assert r.status_code == 204
    assert_problem(await client.get("/v1/me", headers=bearer(phone_tokens["access_token"])), 401)
    refresh = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": phone_tokens["refresh_token"]},
    )
    assert refresh.status_code == 400
    items = (await client.get("/v1/me/sessions", headers=user.headers)).json()["items"]
    assert [i["id"] for i in items] == [first["id"]]
    # Ended already, or never there: 404.
    r = await client.delete(f"/v1/me/sessions/{newest['id']}", headers=user.headers)
    assert_problem(r, 404, "not-found")
    assert_problem(await client.delete("/v1/me/sessions/nope", headers=user.headers), 404)


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        ("owner", 204),
        ("therapist", 404),
        ("unlinked_therapist", 404),
        ("other_client", 404),
        ("anonymous", 401),
    ],
)
async def test_ending_a_session_authorization_matrix(client, make_user, caller, status):
    owner = await make_user("client")
    therapist = await make_user("therapist")
    await link(client, therapist, owner)
    callers = {
        "owner": owner.headers,
        "therapist": therapist.headers,
        "unlinked_therapist": (await make_user("therapist")).headers,
        "other_client": (await make_user("client")).headers,
        "anonymous": {},
    }
    (session,) = (await client.get("/v1/me/sessions", headers=owner.headers)).json()["items"]
    r = await client.delete(f"/v1/me/sessions/{session['id']}", headers=callers[caller])
    assert r.status_code == status, r.text
    # Nobody but the owner can end it; the owner's token works until the owner does.
    still = await client.get("/v1/me", headers=owner.headers)
    assert still.status_code == (401 if caller == "owner" else 200)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/me/sessions", None),
        ("DELETE", "/v1/me/sessions/01900000-0000-7000-8000-000000000000", None),
        ("POST", "/v1/me/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        ("POST", "/v1/me/verify-email", None),
        ("POST", "/v1/me/email", {"new_email": "x@example.com", "current_password": PASSWORD}),
    ],
)
async def test_account_routes_need_a_bearer_token(client, method, path, body):
    r = await client.request(method, path, json=body)
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_each_caller_sees_only_their_own_sessions(client, make_user):
    owner = await make_user("client")
    therapist = await make_user("therapist")
    await link(client, therapist, owner)
    own = (await client.get("/v1/me/sessions", headers=owner.headers)).json()["items"]
    theirs = (await client.get("/v1/me/sessions", headers=therapist.headers)).json()["items"]
    assert len(own) == len(theirs) == 1
    assert own[0]["id"] != theirs[0]["id"]
