"""Every kind of error is RFC 9457 problem+json; 5xx show no internals; 413 while streaming."""

import httpx
import pytest
import sqlalchemy as sa
from fastapi import APIRouter, Request

from app.auth.routing import PublicRoute
from app.core.body_limit import BodyLimitMiddleware
from tests.support.worlds import PASSWORD, assert_problem

MIB = 1024 * 1024


@pytest.fixture
def probes(app_instance):
    """Routes that fail on purpose, and one that records whether a body ever reached it."""
    router = APIRouter(route_class=PublicRoute)
    calls: list[int] = []

    @router.get("/v1/_probe/crash")
    async def crash() -> dict:
        raise RuntimeError("SELECT secret_column FROM users WHERE password = 'hunter2'")

    @router.post("/v1/_probe/crash-in-transaction")
    async def crash_in_transaction(request: Request) -> dict:
        await request.state.session.execute(sa.text("SELECT 1"))
        raise ZeroDivisionError("internal detail")

    @router.post("/v1/_probe/echo-size")
    async def echo_size(request: Request) -> dict:
        body = await request.body()
        calls.append(len(body))
        return {"size": len(body)}

    app_instance.include_router(router)
    app_instance.state.probe_calls = calls
    return app_instance


@pytest.fixture
async def lenient_client(probes):
    """A client that receives 500 responses instead of re-raising the app's exception."""
    transport = httpx.ASGITransport(app=probes, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_unknown_routes_are_404(client):
    for path in ("/nothing", "/v1/nothing", "/v1/nothing-here", "/v1/me/tokens/a/b", "/v2/me"):
        body = assert_problem(await client.get(path), 404, "not-found")
        assert set(body) <= {"type", "title", "status", "detail"}


async def test_wrong_method_is_405_with_allow(client):
    r = await client.put("/v1/me", json={})
    body = assert_problem(r, 405, "method-not-allowed")
    assert body["title"] == "Method not allowed"
    allowed = {m.strip() for m in r.headers["allow"].split(",")}
    assert allowed == {"GET", "PATCH", "DELETE"}
    r = await client.get("/v1/auth/token")
    assert_problem(r, 405)
    assert r.headers["allow"] == "POST"
    r = await client.delete("/healthz")
    assert_problem(r, 405)
    assert r.headers["allow"] == "GET"


async def test_validation_errors_list_every_problem_and_echo_no_input(client):
    secret = "my-secret-password-that-is-far-too-long" * 30
    r = await client.post(
        "/v1/auth/register",
        json={
            "email": "not-an-email",
            "password": secret,
            "display_name": "",
            "role": "wizard",
            "unexpected": "value-that-must-not-echo",
        },
    )
    body = assert_problem(r, 422, "validation-error")
    assert set(body) == {"type", "title", "status", "detail", "errors"}
    assert body["title"] == "Validation failed"
    assert isinstance(body["detail"], str) and body["detail"]
    locs = [tuple(e["loc"]) for e in body["errors"]]
    for field in ("email", "password", "display_name", "role", "unexpected"):
        assert ("body", field) in locs, locs
    for error in body["errors"]:
        assert set(error) == {"loc", "msg", "type"}
    assert secret[:40] not in r.text
    assert "value-that-must-not-echo" not in r.text
    assert "not-an-email" not in r.text


async def test_malformed_json_is_a_problem(client):
    r = await client.post(
        "/v1/auth/register", content=b'{"email": ', headers={"content-type": "application/json"}
    )
    assert_problem(r, 422, "validation-error")


async def test_bad_query_parameters_are_422(client, make_user):
    ann = await make_user("client")
    body = assert_problem(
        await client.get("/v1/me/tokens?limit=abc", headers=ann.headers), 422, "validation-error"
    )
    assert body["errors"][0]["loc"] == ["query", "limit"]


async def test_401_and_403_are_problems(client, make_user):
    r = await client.get("/v1/me/tokens")
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
    ann = await make_user("client", scope="goals:read")
    r = await client.post(
        "/v1/me/tokens", headers=ann.headers, json={"name": "x", "scopes": ["goals:write"]}
    )
    assert_problem(r, 403, "insufficient-scope")


async def test_an_unhandled_error_is_a_bare_500(lenient_client):
    r = await lenient_client.get("/v1/_probe/crash")
    body = assert_problem(r, 500, "internal-error")
    assert body == {
        "type": "/problems/internal-error",
        "title": "Internal server error",
        "status": 500,
    }
    for leak in ("RuntimeError", "SELECT", "hunter2", "Traceback", "secret_column", ".py"):
        assert leak not in r.text
    assert r.headers["x-request-id"]


async def test_a_crash_inside_a_transaction_rolls_back_and_is_500(lenient_client, make_user):
    r = await lenient_client.post("/v1/_probe/crash-in-transaction", json={})
    body = assert_problem(r, 500, "internal-error")
    assert "detail" not in body
    assert "ZeroDivision" not in r.text
    # The service keeps working afterwards.
    assert (await lenient_client.get("/healthz")).status_code == 200


async def test_413_by_content_length(client, probes):
    r = await client.post("/v1/_probe/echo-size", content=b"x" * (MIB + 1))
    body = assert_problem(r, 413, "payload-too-large")
    assert "1048576" in body["detail"]
    assert probes.state.probe_calls == []


async def test_413_for_a_streamed_body_without_content_length(client, probes):
    async def chunks():
        for _ in range(20):
            yield b"y" * (64 * 1024)  # 1.25 MiB in all

    r = await client.post("/v1/_probe/echo-size", content=chunks())
    assert "content-length" not in r.request.headers
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert_problem(r, 413, "payload-too-large")
    assert probes.state.probe_calls == []


async def test_a_lying_content_length_is_counted_anyway(probes):
    """An ASGI server passes the declared length through; the count is what decides."""
    received: list[bytes] = []

    async def app(scope, receive, send):
        received.append((await receive())["body"])

    limited = BodyLimitMiddleware(app, max_bytes=10)
    messages = iter(
        [
            {"type": "http.request", "body": b"12345", "more_body": True},
            {"type": "http.request", "body": b"678901", "more_body": False},
        ]
    )
    sent: list[dict] = []

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "headers": [(b"content-length", b"5")]}
    await limited(scope, receive, send)
    assert received == []
    assert sent[0]["status"] == 413


async def test_bodies_up_to_the_limit_reach_the_handler(client, probes):
    async def chunks():
        for _ in range(16):
            yield b"z" * (64 * 1024)  # exactly 1 MiB

    r = await client.post("/v1/_probe/echo-size", content=chunks())
    assert r.status_code == 200, r.text
    assert r.json() == {"size": MIB}
    r = await client.post("/v1/_probe/echo-size", content=b"a" * MIB)
    assert r.json() == {"size": MIB}
    assert probes.state.probe_calls == [MIB, MIB]


async def test_an_oversized_registration_creates_nothing(client, sync_engine):
    r = await client.post(
        "/v1/auth/register",
        json={
            "email": "big@example.com",
            "password": PASSWORD,
            "display_name": "Big",
            "role": "client",
            "timezone": "UTC" + " " * MIB,
        },
    )
    assert_problem(r, 413, "payload-too-large")
    with sync_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one() == 0


async def test_responses_carry_a_request_id(client):
    r = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces"
    assert len(r.headers["x-request-id"]) == 32
