"""Errors people read: duplicate JSON keys, a JSON body at the form-only token endpoint."""

from __future__ import annotations

from tests.support.worlds import assert_problem

JSON = {"content-type": "application/json"}


async def test_a_key_given_twice_is_422_naming_it(client, make_user, sync_engine):
    ann = await make_user("client")
    body = b'{"title": "Walk", "visibility": "shared", "visibility": "private"}'
    r = await client.post("/v1/goals", content=body, headers={**JSON, **ann.headers})
    problem = assert_problem(r, 422, "validation-error")
    assert problem["errors"] == [
        {
            "loc": ["body", "visibility"],
            "msg": "The key 'visibility' appears more than once in an object.",
            "type": "duplicate_key",
        }
    ]
    assert (await client.get("/v1/goals", headers=ann.headers)).json()["items"] == []
    # Nested objects too, and on public routes.
    nested = b'{"title": "W", "gas_levels": {"-2": "a", "-2": "b", "-1": "c", "0": "d",'
    nested += b' "1": "e", "2": "f"}}'
    r = await client.post("/v1/goals", content=nested, headers={**JSON, **ann.headers})
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "-2"]
    r = await client.post(
        "/v1/auth/register",
        content=b'{"email": "a@example.com", "email": "b@example.com"}',
        headers=JSON,
    )
    assert assert_problem(r, 422)["errors"][0]["type"] == "duplicate_key"


async def test_the_same_key_in_different_objects_is_fine(client, make_user):
    ann = await make_user("client")
    body = (
        b'{"title": "Walk", "gas_levels": {"-2": "a", "-1": "b", "0": "c", "1": "d", "2": "e"},'
        b' "category": "health"}'
    )
    r = await client.post("/v1/goals", content=body, headers={**JSON, **ann.headers})
    assert r.status_code == 201, r.text


async def test_a_body_that_is_not_json_is_answered_as_before(client, make_user):
    ann = await make_user("client")
    r = await client.post("/v1/goals", content=b"{not json", headers={**JSON, **ann.headers})
    assert r.status_code in (400, 422)
    assert_problem(r, r.status_code)
    assert r.status_code < 500


async def test_the_token_endpoint_says_it_takes_a_form(client, make_user):
    ann = await make_user("client")
    r = await client.post(
        "/v1/auth/token",
        json={"grant_type": "password", "username": ann.email, "password": "whatever"},
    )
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"] == "invalid_request"
    assert "application/x-www-form-urlencoded" in r.json()["error_description"]
    # The form still works, with or without a charset.
    r = await client.post(
        "/v1/auth/token",
        content=f"grant_type=password&username={ann.email}&password=wrong".encode(),
        headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    assert r.json()["error"] == "invalid_grant"
