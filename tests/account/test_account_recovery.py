"""Password reset, verified addresses and the tokens of links, followed end to end through a
real SMTP server (aiosmtpd in this process)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
import sqlalchemy as sa

from tests.support.mail import Inbox, SmtpServer, text_of
from tests.support.worlds import PASSWORD, assert_problem, login

NEW_PASSWORD = "a much newer passphrase"


@pytest.fixture
async def inbox(app_instance):
    server = SmtpServer().start()
    yield Inbox(server)
    server.stop()


@pytest.fixture
def later(monkeypatch):
    """Move the account flows' clock forward (the links' lifetimes, the throttle's hour)."""
    import app.account.service as service

    shift = {"by": dt.timedelta(0)}
    real = service.utcnow
    monkeypatch.setattr(service, "utcnow", lambda: real() + shift["by"])

    def move(**delta: float) -> None:
        shift["by"] += dt.timedelta(**delta)

    return move


async def reset(client, email, **headers):
    return await client.post("/v1/auth/password-reset", json={"email": email}, headers=headers)


async def confirm(client, token, password=NEW_PASSWORD):
    return await client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "new_password": password}
    )


async def test_a_reset_link_sets_a_new_password_and_ends_every_session(client, make_user, inbox):
    user = await make_user("client")
    other_login = (await login(client, user.email)).json()
    pat = await client.post(
        "/v1/me/tokens", json={"name": "script", "scopes": ["goals:read"]}, headers=user.headers
    )
    assert pat.status_code == 201
    r = await reset(client, user.email.upper())  # the address is case-insensitive
    assert r.status_code == 202, r.text
    token = await inbox.last_token(user.email, "reset-password")
    (message,) = [m for m in await inbox.for_(user.email) if "reset" in m["Subject"].lower()]
    assert f"http://127.0.0.1:8000/reset-password?token={token}" in text_of(message)
    assert len(token) >= 32

    assert (await confirm(client, token)).status_code == 204
    # The new password works at once, the old one no longer does.
    assert (await login(client, user.email, NEW_PASSWORD)).status_code == 200
    old = await login(client, user.email, PASSWORD)
    assert old.status_code == 400 and old.json()["error"] == "invalid_grant"
    # Every password-login session stopped at once: access and refresh tokens.
    assert_problem(await client.get("/v1/me", headers=user.headers), 401)
    refreshed = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": other_login["refresh_token"]},
    )
    assert refreshed.status_code == 400
    # Personal access tokens are not touched.
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {pat.json()['token']}"})
    assert me.status_code == 200
    # Single use.
    assert_problem(await confirm(client, token, "yet another passphrase"), 400, "invalid-token")


async def test_no_account_enumeration(client, make_user, inbox, sync_engine):
    user = await make_user("client")
    known = await reset(client, user.email)
    unknown = await reset(client, "nobody-here@example.com")
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert known.headers["content-type"] == unknown.headers["content-type"]
    assert {k for k in known.headers if k.startswith("ratelimit")} == {
        k for k in unknown.headers if k.startswith("ratelimit")
    }
    assert known.headers["ratelimit-remaining"] == unknown.headers["ratelimit-remaining"]
    await inbox.fetch()
    assert [m["To"] for m in inbox.server.received() if "reset" in m["Subject"].lower()] == [
        user.email
    ]


async def test_a_newer_link_makes_older_ones_invalid_and_links_expire_after_an_hour(
    client, make_user, inbox, later
):
    user = await make_user("client")
    await reset(client, user.email)
    first = await inbox.last_token(user.email, "reset-password")
    await reset(client, user.email)
    second = await inbox.last_token(user.email, "reset-password")
    assert first != second
    assert_problem(await confirm(client, first), 400, "invalid-token")
    later(minutes=61)
    assert_problem(await confirm(client, second), 400, "invalid-token")
    await reset(client, user.email)
    third = await inbox.last_token(user.email, "reset-password")
    later(minutes=59)
    assert (await confirm(client, third)).status_code == 204


async def test_a_short_new_password_is_422_and_the_token_stays_usable(client, make_user, inbox):
    user = await make_user("client")
    await reset(client, user.email)
    token = await inbox.last_token(user.email, "reset-password")
    assert_problem(await confirm(client, token, "short"), 422, "validation-error")
    assert (await confirm(client, token)).status_code == 204


@pytest.mark.parametrize(
    "token",
    [
        "",
        "x",
        "not a token!",
        "A" * 43,
        "é" * 40,
        "\u0001" * 40,
        "a" * 100_000,
        "../../etc",
        "\ud800" * 40,
        "A" * 42 + "\ud800",
        # Not a string at all: still a token that is not one, never a validation error.
        None,
        12345678901234567890,
        1.5,
        True,
        ["A" * 43],
        {"token": "A" * 43},
    ],
)
async def test_malformed_or_unknown_tokens_are_400_never_422(client, token):
    for path, body in (
        ("/v1/auth/password-reset/confirm", {"token": token, "new_password": NEW_PASSWORD}),
        ("/v1/auth/verify-email", {"token": token}),
        ("/v1/auth/confirm-email", {"token": token}),
    ):
        # Escaped JSON: a lone surrogate (\ud800) travels as the hostile input tests send it.
        r = await client.post(
            path, content=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        assert_problem(r, 400, "invalid-token")


async def test_a_live_token_is_refused_on_another_route_and_stays_usable_on_its_own(
    client, make_user, inbox
):
    user = await make_user("client")
    verify = await inbox.last_token(user.email, "verify-email")
    assert_problem(await confirm(client, verify), 400, "invalid-token")
    r = await client.post("/v1/auth/confirm-email", json={"token": verify})
    assert_problem(r, 400, "invalid-token")
    await reset(client, user.email)
    reset_token = await inbox.last_token(user.email, "reset-password")
    r = await client.post("/v1/auth/verify-email", json={"token": reset_token})
    assert_problem(r, 400, "invalid-token")
    assert (await client.post("/v1/auth/verify-email", json={"token": verify})).status_code == 204
    assert (await confirm(client, reset_token)).status_code == 204


async def test_reset_requests_are_throttled_per_address_and_per_network(
    client, make_user, inbox, later
):
    user = await make_user("client")
    for i in range(5):
        assert (await reset(client, user.email if i % 2 else user.email.upper())).status_code == 202
    refused = await reset(client, user.email)
    assert_problem(refused, 429, "rate-limited")
    assert 1 <= int(refused.headers["retry-after"]) <= 3600
    for _ in range(6):  # an unknown address is throttled alike (no enumeration)
        last = await reset(client, "ghost@example.com")
    assert_problem(last, 429, "rate-limited")
    # The 429s sent nothing: five links.
    links = [m for m in await inbox.for_(user.email) if "reset-password" in text_of(m)]
    assert len(links) == 5
    later(minutes=61)
    assert (await reset(client, user.email)).status_code == 202
    # From one network address: 100 an hour, whatever the addresses named.
    later(minutes=61)
    for i in range(100):
        r = await reset(client, f"someone{i}@example.com")
        assert r.status_code == 202, (i, r.text)
    assert_problem(await reset(client, "one-more@example.com"), 429, "rate-limited")
    assert_problem(await reset(client, user.email), 429, "rate-limited")


async def test_registration_sends_a_verification_link(client, make_user, inbox, later):
    user = await make_user("therapist")
    me = (await client.get("/v1/me", headers=user.headers)).json()
    assert me["email_verified"] is False
    (message,) = await inbox.for_(user.email)
    token = await inbox.last_token(user.email, "verify-email")
    assert f"http://127.0.0.1:8000/verify-email?token={token}" in text_of(message)
    later(days=6, hours=23)
    assert (await client.post("/v1/auth/verify-email", json={"token": token})).status_code == 204
    me = (await client.get("/v1/me", headers=user.headers)).json()
    assert me["email_verified"] is True
    r = await client.post("/v1/auth/verify-email", json={"token": token})
    assert_problem(r, 400, "invalid-token")
    assert_problem(await client.post("/v1/me/verify-email", headers=user.headers), 409, "conflict")


async def test_a_verification_link_expires_after_seven_days(client, make_user, inbox, later):
    user = await make_user("client")
    token = await inbox.last_token(user.email, "verify-email")
    later(days=7, minutes=1)
    r = await client.post("/v1/auth/verify-email", json={"token": token})
    assert_problem(r, 400, "invalid-token")


async def test_new_verification_links_on_demand_five_an_hour(client, make_user, inbox, later):
    user = await make_user("client")
    for _ in range(5):  # the registration's own message is not counted
        r = await client.post("/v1/me/verify-email", headers=user.headers)
        assert r.status_code == 202, r.text
    refused = await client.post("/v1/me/verify-email", headers=user.headers)
    assert_problem(refused, 429, "rate-limited")
    assert int(refused.headers["retry-after"]) >= 1
    assert len(await inbox.for_(user.email)) == 6
    token = await inbox.last_token(user.email, "verify-email")
    assert (await client.post("/v1/auth/verify-email", json={"token": token})).status_code == 204
    later(minutes=61)
    assert_problem(await client.post("/v1/me/verify-email", headers=user.headers), 409)


async def test_unverified_therapists_may_not_invite_when_the_setting_says_so(
    client, make_user, inbox, monkeypatch
):
    from app.core.config import get_settings

    therapist = await make_user("therapist")
    assert (await client.post("/v1/care-invites", headers=therapist.headers)).status_code == 201
    monkeypatch.setenv("WAYPOINT_REQUIRE_VERIFIED_THERAPISTS", "true")
    get_settings.cache_clear()
    try:
        r = await client.post("/v1/care-invites", headers=therapist.headers)
        assert_problem(r, 403, "email-not-verified")
        token = await inbox.last_token(therapist.email, "verify-email")
        assert (
            await client.post("/v1/auth/verify-email", json={"token": token})
        ).status_code == 204
        assert (await client.post("/v1/care-invites", headers=therapist.headers)).status_code == 201
    finally:
        monkeypatch.delenv("WAYPOINT_REQUIRE_VERIFIED_THERAPISTS")
        get_settings.cache_clear()


async def test_tokens_are_stored_as_hashes_and_messages_keep_no_link_once_sent(
    client, make_user, inbox, sync_engine
):
    user = await make_user("client")
    await reset(client, user.email)
    token = await inbox.last_token(user.email, "reset-password")
    with sync_engine.connect() as conn:
        dump = " ".join(
            str(row)
            for table in ("account_tokens", "mail_messages")
            for row in conn.execute(sa.text(f"SELECT * FROM {table}"))
        )
    assert token not in dump


async def test_a_reset_request_runs_the_same_statements_for_any_address(
    client, make_user, count_statements
):
    """No enumeration by timing either: the request itself never looks the address up; the
    reset worker does, after the answer."""
    user = await make_user("client")
    count_statements.statements.clear()
    assert (await reset(client, user.email)).status_code == 202
    known = list(count_statements.statements)
    count_statements.statements.clear()
    assert (await reset(client, "nobody-at-all@example.com")).status_code == 202
    assert count_statements.statements == known
    assert not any("FROM users" in statement for statement in known)


async def test_two_reset_workers_handle_each_request_once(client, make_user, inbox):
    from app.account.resets import ResetWorker

    users = [await make_user("client") for _ in range(6)]
    for user in users:
        assert (await reset(client, user.email)).status_code == 202
    import app.account.resets as resets

    original, resets.BATCH = resets.BATCH, 2
    try:
        counts = await asyncio.gather(*(drain(ResetWorker()) for _ in range(2)))
    finally:
        resets.BATCH = original
    assert sum(counts) == 6
    for user in users:
        links = [m for m in await inbox.for_(user.email) if "reset-password" in text_of(m)]
        assert len(links) == 1


async def drain(worker) -> int:
    handled = 0
    while taken := await worker.run_once():
        handled += taken
        await asyncio.sleep(0)
    return handled
