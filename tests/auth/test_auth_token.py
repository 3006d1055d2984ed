"""The OAuth 2.0 token endpoint: password grant, RFC 6749 error bodies, scopes."""

import pytest
from pwdlib import PasswordHash

from app.core.security import decode_access_token
from tests.support.worlds import PASSWORD, assert_problem, login

ALL_RESOURCE_SCOPES = [
    "goals:read",
    "goals:write",
    "reviews:read",
    "reviews:write",
    "encouragements:read",
    "encouragements:write",
]


def assert_oauth_error(response, error):
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
    assert isinstance(body["error_description"], str) and body["error_description"]
    return body


async def test_password_grant_answers_tokens_with_no_store(client, make_user):
    ann = await make_user("client")
    r = await login(client, ann.email)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["pragma"] == "no-cache"
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["scope"].split() == ["client", *ALL_RESOURCE_SCOPES]
    assert body["refresh_token"] != body["access_token"]
    claims = decode_access_token(body["access_token"])
    assert str(claims.user_id) == ann.id
    assert claims.role == "client"
    assert claims.scopes == frozenset(body["scope"].split())


async def test_email_is_case_insensitive_at_login(client, make_user):
    ann = await make_user("therapist")
    r = await login(client, f"  {ann.email.upper()} ")
    assert r.status_code == 200, r.text
    assert r.json()["scope"].split()[0] == "therapist"


async def test_scope_subset_is_honoured_and_enforced(client, make_user, scoped_routes):
    ann = await make_user("client")
    r = await login(client, ann.email, scope="goals:read")
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "client goals:read"
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    ok = await client.get("/v1/_probe/read", headers=headers)
    assert ok.status_code == 200
    assert ok.json() == {"scopes": ["client", "goals:read"]}
    assert_problem(await client.get("/v1/_probe/write", headers=headers), 403, "insufficient-scope")
    assert_problem(await client.get("/v1/_probe/therapist", headers=headers), 403, "forbidden")
    # The full login may write.
    full = {"Authorization": f"Bearer {ann.access_token}"}
    assert (await client.get("/v1/_probe/write", headers=full)).status_code == 200
    # /v1/me needs only the role scope.
    assert (await client.get("/v1/me", headers=headers)).status_code == 200


async def test_asking_for_the_own_role_scope_alone_gives_only_the_role_scope(client, make_user):
    ann = await make_user("therapist")
    r = await login(client, ann.email, scope="therapist")
    assert r.status_code == 200
    assert r.json()["scope"].split() == ["therapist"]
    token = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert (await client.get("/v1/me", headers=token)).status_code == 200
    assert_problem(await client.get("/v1/goals", headers=token), 403, "insufficient-scope")


async def test_no_scope_or_an_empty_one_gives_every_resource_scope(client, make_user):
    ann = await make_user("client")
    for scope in (None, ""):
        r = await login(client, ann.email, scope=scope)
        assert r.status_code == 200
        assert r.json()["scope"].split() == ["client", *ALL_RESOURCE_SCOPES]


@pytest.mark.parametrize(
    "scope", ["therapist", "client therapist", "admin", "goals:read goals:delete", "*"]
)
async def test_a_scope_the_role_lacks_is_invalid_scope(client, make_user, scope):
    ann = await make_user("client")
    r = await login(client, ann.email, scope=scope)
    assert_oauth_error(r, "invalid_scope")
    assert "access_token" not in r.text


async def test_a_therapist_cannot_ask_for_the_client_scope(client, make_user):
    tom = await make_user("therapist")
    assert_oauth_error(await login(client, tom.email, scope="client"), "invalid_scope")


async def test_wrong_password_and_unknown_email_get_the_same_answer(client, make_user, monkeypatch):
    ann = await make_user("client")
    verified: list[str] = []
    original = PasswordHash.verify

    def counting_verify(self, password, hash):  # noqa: A002
        verified.append(password)
        return original(self, password, hash)

    monkeypatch.setattr(PasswordHash, "verify", counting_verify)

    wrong = await login(client, ann.email, password="not the password")
    assert len(verified) == 1, "the password verifier must run for a known account"
    unknown = await login(client, "nobody@example.com", password="not the password")
    assert len(verified) == 2, "the password verifier must run for an unknown e-mail too"
    assert_oauth_error(wrong, "invalid_grant")
    assert_oauth_error(unknown, "invalid_grant")
    assert wrong.json() == unknown.json()
    assert set(wrong.headers) - {"x-request-id"} == set(unknown.headers) - {"x-request-id"}


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"username": "a@example.com", "password": PASSWORD},
        {"grant_type": "password"},
        {"grant_type": "password", "username": "a@example.com"},
        {"grant_type": "password", "password": PASSWORD},
        {"grant_type": "refresh_token"},
        {"grant_type": "refresh_token", "refresh_token": ""},
    ],
)
async def test_missing_fields_are_invalid_request(client, form):
    assert_oauth_error(await client.post("/v1/auth/token", data=form), "invalid_request")


async def test_a_json_body_is_invalid_request(client, make_user):
    ann = await make_user("client")
    r = await client.post(
        "/v1/auth/token",
        json={"grant_type": "password", "username": ann.email, "password": PASSWORD},
    )
    assert_oauth_error(r, "invalid_request")


async def test_no_body_at_all_is_invalid_request(client):
    assert_oauth_error(await client.post("/v1/auth/token"), "invalid_request")


@pytest.mark.parametrize("grant", ["client_credentials", "authorization_code", "PASSWORD", "x"])
async def test_other_grants_are_unsupported(client, grant):
    r = await client.post(
        "/v1/auth/token", data={"grant_type": grant, "username": "a@b.c", "password": "p"}
    )
    assert_oauth_error(r, "unsupported_grant_type")


async def test_a_bad_refresh_token_is_invalid_grant(client):
    r = await client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": "wpr_nonsense"}
    )
    assert_oauth_error(r, "invalid_grant")


async def test_refresh_can_narrow_but_never_widen(client, make_user):
    ann = await make_user("client", scope="goals:read goals:write")
    assert ann.scope == "client goals:read goals:write"
    narrower = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": ann.refresh_token,
            "scope": "goals:read",
        },
    )
    assert narrower.status_code == 200, narrower.text
    assert narrower.json()["scope"] == "client goals:read"
    wider = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": narrower.json()["refresh_token"],
            "scope": "goals:read reviews:read",
        },
    )
    assert_oauth_error(wider, "invalid_scope")


async def test_startup_prepares_the_dummy_hash(app_instance):
    """The first unknown-e-mail login must not pay for hashing the dummy password."""
    from app.core.security import dummy_password_hash

    dummy_password_hash.cache_clear()
    async with app_instance.router.lifespan_context(app_instance):
        assert dummy_password_hash.cache_info().currsize == 1


async def test_startup_hides_its_objects_from_the_garbage_collector(app_instance):
    """Full collections must not walk the start-up objects (their pauses were the p99)."""
    import gc

    gc.unfreeze()
    try:
        async with app_instance.router.lifespan_context(app_instance):
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


async def test_a_read_only_login_cannot_write_goals(client, make_user):
    """The scope subset reaches the real domain routes: goals:write is missing -> 403."""
    ann = await make_user("client", scope="goals:read")
    created = await client.post("/v1/goals", headers=ann.headers, json={"title": "Run 5k"})
    assert_problem(created, 403, "insufficient-scope")
    listed = await client.get("/v1/goals", headers=ann.headers)
    assert listed.status_code == 200
    assert listed.json()["items"] == []
