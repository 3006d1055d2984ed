"""Logs: one JSON object per line, a request id on each, never a password or a token."""

import json

import pytest
import structlog
from fastapi import APIRouter

from app.auth.routing import PublicRoute
from tests.support.worlds import PASSWORD, login


def log_lines(capsys) -> list[dict]:
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line is JSON


@pytest.fixture
def crashing_route(app_instance):
    router = APIRouter(route_class=PublicRoute)

    @router.get("/v1/_probe/crash")
    async def crash() -> dict:
        raise ValueError(f"password was {PASSWORD}")

    app_instance.include_router(router)
    return app_instance


async def test_auth_flows_log_no_secrets(client, capsys):
    capsys.readouterr()
    r = await client.post(
        "/v1/auth/register",
        json={
            "email": "logme@example.com",
            "password": PASSWORD,
            "display_name": "Log Me",
            "role": "client",
        },
    )
    assert r.status_code == 201
    bad = await client.post(
        "/v1/auth/register",
        json={"email": "x@example.com", "password": "short-pw", "display_name": "X"},
    )
    assert bad.status_code == 422
    wrong = await login(client, "logme@example.com", password="wrong-password-123")
    assert wrong.status_code == 400
    tokens = (await login(client, "logme@example.com")).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    refreshed = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 200
    reuse = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert reuse.status_code == 400
    # The reuse ended that login, its access token with it: a new login for the rest.
    second = (await login(client, "logme@example.com")).json()
    headers = {"Authorization": f"Bearer {second['access_token']}"}
    pat = await client.post(
        "/v1/me/tokens", headers=headers, json={"name": "n", "scopes": ["goals:read"]}
    )
    assert pat.status_code == 201
    assert (await client.get("/v1/me", headers=headers)).status_code == 200
    await client.post("/v1/auth/logout", headers=headers)

    lines = log_lines(capsys)
    assert len(lines) >= 9
    secrets = [
        PASSWORD,
        "short-pw",
        "wrong-password-123",
        tokens["access_token"],
        tokens["access_token"].split(".")[2],
        tokens["refresh_token"],
        refreshed.json()["access_token"],
        refreshed.json()["refresh_token"],
        pat.json()["token"],
        second["access_token"],
        second["refresh_token"],
    ]
    for line in lines:
        assert line.get("request_id"), line
        assert line["level"] and line["timestamp"].endswith("Z")
        text = json.dumps(line)
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {line}"
    routes = {line.get("route") for line in lines if line.get("event") == "request"}
    assert {"/v1/auth/register", "/v1/auth/token", "/v1/me/tokens", "/v1/me"} <= routes
    statuses = [line["status"] for line in lines if line.get("route") == "/v1/auth/token"]
    assert sorted(statuses) == [200, 200, 200, 400, 400]


async def test_a_crash_is_logged_with_its_request_id_and_without_its_message(
    crashing_route, capsys
):
    import httpx

    transport = httpx.ASGITransport(app=crashing_route, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        capsys.readouterr()
        r = await c.get("/v1/_probe/crash", headers={"X-Request-ID": "crash-42"})
    assert r.status_code == 500
    lines = log_lines(capsys)
    assert {line["request_id"] for line in lines} == {"crash-42"}
    error = next(line for line in lines if line["event"] == "unhandled_error")
    assert error["level"] == "error"
    assert error["error_type"] == "builtins.ValueError"
    assert any("crash" in frame for frame in error["stack"])
    assert PASSWORD not in json.dumps(lines)


async def test_standard_library_lines_are_json_with_the_request_id(client, capsys):
    import logging

    structlog.contextvars.bind_contextvars(request_id="outside-request")
    try:
        capsys.readouterr()
        logging.getLogger("uvicorn.error").warning("something from a library")
        lines = log_lines(capsys)
    finally:
        structlog.contextvars.clear_contextvars()
    assert lines == [
        {
            "event": "something from a library",
            "request_id": "outside-request",
            "level": "warning",
            "logger": "uvicorn.error",
            "timestamp": lines[0]["timestamp"],
        }
    ]
