"""Failed logins are throttled per account and per address; the state lives in the database."""

import datetime as dt

import httpx
import pytest
import sqlalchemy as sa

from app.core.config import get_settings
from tests.support.worlds import assert_problem, login

ACCOUNT_LIMIT = 3
ADDRESS_LIMIT = 5
WINDOW = 600


@pytest.fixture(autouse=True)
def low_limits(monkeypatch):
    """Runs before the app fixture (autouse), whose settings are then read afresh."""
    monkeypatch.setenv("WAYPOINT_LOGIN_FAILURES_PER_ACCOUNT", str(ACCOUNT_LIMIT))
    monkeypatch.setenv("WAYPOINT_LOGIN_FAILURES_PER_ADDRESS", str(ADDRESS_LIMIT))
    monkeypatch.setenv("WAYPOINT_LOGIN_WINDOW_SECONDS", str(WINDOW))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def client_from(app, host: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def assert_rate_limited(response):
    problem = assert_problem(response, 429, "rate-limited")
    retry_after = int(response.headers["retry-after"])
    assert 0 < retry_after <= WINDOW
    assert response.headers["ratelimit-limit"] in (str(ACCOUNT_LIMIT), str(ADDRESS_LIMIT))
    assert response.headers["ratelimit-remaining"] == "0"
    assert 0 < int(response.headers["ratelimit-reset"]) <= WINDOW
    assert "access_token" not in response.text
    return problem


async def test_the_settings_override_took_effect(app_instance):
    settings = get_settings()
    assert settings.login_failures_per_account == ACCOUNT_LIMIT
    assert settings.login_failures_per_address == ADDRESS_LIMIT


async def test_failures_per_account_lock_even_the_right_password(client, make_user):
    ann = await make_user("client")
    for attempt in range(ACCOUNT_LIMIT):
        r = await login(client, ann.email, password="wrong password!")
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "invalid_grant"
        assert r.headers["ratelimit-limit"] == str(ACCOUNT_LIMIT)
        assert r.headers["ratelimit-remaining"] == str(ACCOUNT_LIMIT - attempt - 1)
    assert_rate_limited(await login(client, ann.email))
    assert_rate_limited(await login(client, ann.email.upper()))
    # The lock is per account: someone else from the same address still gets in.
    bob = await make_user("client")
    assert (await login(client, bob.email)).status_code == 200


async def test_the_lock_is_for_the_account_from_every_address(app_instance, client, make_user):
    ann = await make_user("client")
    for _ in range(ACCOUNT_LIMIT):
        await login(client, ann.email, password="wrong password!")
    async with client_from(app_instance, "198.51.100.7") as elsewhere:
        assert_rate_limited(await login(elsewhere, ann.email))


async def test_unknown_accounts_are_throttled_too(client):
    for _ in range(ACCOUNT_LIMIT):
        assert (await login(client, "ghost@example.com", password="x")).status_code == 400
    assert_rate_limited(await login(client, "ghost@example.com", password="x"))


async def test_failures_per_address(app_instance, client, make_user):
    ann = await make_user("client")
    for n in range(ADDRESS_LIMIT):
        r = await login(client, f"nobody{n}@example.com", password="wrong password!")
        assert r.status_code == 400
    # Any account, even with its right password, is refused from this address...
    r = await login(client, ann.email)
    assert_rate_limited(r)
    assert r.headers["ratelimit-limit"] == str(ADDRESS_LIMIT)
    # ...but not from another address.
    async with client_from(app_instance, "203.0.113.9") as elsewhere:
        assert (await login(elsewhere, ann.email)).status_code == 200


async def test_successful_logins_are_not_throttled(client, make_user):
    ann = await make_user("client")
    for _ in range(ACCOUNT_LIMIT + ADDRESS_LIMIT):
        r = await login(client, ann.email)
        assert r.status_code == 200
        assert r.headers["ratelimit-remaining"] == str(ACCOUNT_LIMIT)


async def test_state_lives_in_the_database_and_ages_out(client, make_user, sync_engine):
    ann = await make_user("client")
    for _ in range(ACCOUNT_LIMIT):
        await login(client, ann.email, password="wrong password!")
    with sync_engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT email_key, address FROM login_failures")).all()
    assert rows == [(ann.email, "127.0.0.1")] * ACCOUNT_LIMIT
    # A restarted process (fresh engine, fresh settings) still knows.
    assert_rate_limited(await login(client, ann.email))
    # Once the failures are older than the window, the account opens again.
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=WINDOW + 1)
    with sync_engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE login_failures SET at = :past"),
            {"past": past if conn.dialect.name == "postgresql" else past.replace(tzinfo=None)},
        )
    assert (await login(client, ann.email)).status_code == 200


async def test_retry_after_counts_down_from_the_oldest_failure(client, make_user, sync_engine):
    ann = await make_user("client")
    for _ in range(ACCOUNT_LIMIT):
        await login(client, ann.email, password="wrong password!")
    older = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=WINDOW - 100)
    with sync_engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE login_failures SET at = :at"),
            {"at": older if conn.dialect.name == "postgresql" else older.replace(tzinfo=None)},
        )
    r = await login(client, ann.email)
    assert_rate_limited(r)
    assert 95 <= int(r.headers["retry-after"]) <= 102


async def test_a_very_long_username_is_a_plain_failure(client):
    r = await login(client, "x" * 5000 + "@example.com", password="wrong password!")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
