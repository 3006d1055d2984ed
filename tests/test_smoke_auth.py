from tests.conftest import assert_problem


async def test_register_login_and_me(client, make_user):
    ann = await make_user("client")
    r = await client.get("/v1/me", headers=ann.headers)
    assert r.status_code == 200
    assert r.json()["email"] == ann.email
    assert set(r.json()) == {"id", "email", "display_name", "role", "timezone", "created_at"}


async def test_unknown_route_is_problem(client):
    assert_problem(await client.get("/v1/nothing-here"), 404, "not-found")
