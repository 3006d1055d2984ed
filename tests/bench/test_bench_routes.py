"""The benchmark's baseline routes (``bench/app.py``): served by the bench's app only,
token-checked, never in OpenAPI; the production app cannot serve them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from app.core.config import get_settings
from app.goals.schemas import GoalOut, GoalProgress
from app.models import Goal
from tests.support.worlds import assert_problem


@pytest.fixture
async def bench_client(app_instance: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The benchmark's app on the same database as ``app_instance``."""
    from bench.app import create_bench_app

    transport = httpx.ASGITransport(app=create_bench_app(), client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/bench/ceiling"), ("POST", "/bench/bare-insert")]
)
async def test_absent_by_default(
    client: httpx.AsyncClient, make_user: Callable[..., Any], method: str, path: str
) -> None:
    owner = await make_user("client")
    r = await client.request(method, path, headers=owner.headers)
    assert r.status_code == 404
    spec = (await client.get("/openapi.json")).json()
    assert not any(p.startswith("/bench") for p in spec["paths"])


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/bench/ceiling"), ("POST", "/bench/bare-insert")]
)
async def test_no_setting_mounts_them_in_the_production_app(
    app_instance: Any,
    make_user: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    path: str,
) -> None:
    """The flag that once mounted them is gone: setting it changes nothing."""
    from app.main import create_app

    owner = await make_user("client")
    monkeypatch.setenv("WAYPOINT_ENABLE_BENCH_ROUTES", "true")
    get_settings.cache_clear()
    try:
        production = create_app()
    finally:
        get_settings.cache_clear()
    assert not any(getattr(route, "path", "").startswith("/bench") for route in production.routes)
    transport = httpx.ASGITransport(app=production, client=("127.0.0.1", 50002))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.request(method, path, headers=owner.headers)
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/bench/ceiling"), ("POST", "/bench/bare-insert")]
)
async def test_token_required(bench_client: httpx.AsyncClient, method: str, path: str) -> None:
    r = await bench_client.request(method, path)
    assert_problem(r, 401, "unauthorized")
    r = await bench_client.request(method, path, headers={"Authorization": "Bearer not-a-jwt"})
    assert_problem(r, 401, "unauthorized")


async def test_ceiling_is_a_page_of_50_goals(
    bench_client: httpx.AsyncClient, make_user: Callable[..., Any]
) -> None:
    owner = await make_user("client")
    r = await bench_client.get("/bench/ceiling", headers=owner.headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert 'rel="next"' in r.headers["link"]
    body = r.json()
    assert set(body) == {"items", "next_cursor"}
    assert body["next_cursor"]
    assert len(body["items"]) == 50
    for item in body["items"]:
        # The bench routes are outside the OpenAPI document, so the client checks no body.
        assert set(item) == set(GoalOut.model_fields)
        assert set(item["progress"]) == set(GoalProgress.model_fields)
        assert item["updated_at"].endswith("Z")
    # Constant: the same bytes every time.
    again = await bench_client.get("/bench/ceiling", headers=owner.headers)
    assert again.content == r.content


async def test_bare_insert_commits_one_row(
    bench_client: httpx.AsyncClient, make_user: Callable[..., Any], sync_engine: sa.Engine
) -> None:
    owner = await make_user("client")
    ids = []
    for _ in range(3):
        r = await bench_client.post("/bench/bare-insert", headers=owner.headers)
        assert r.status_code == 201
        ids.append(orjson.loads(r.content)["id"])
    assert len(set(ids)) == 3
    with sync_engine.connect() as conn:
        rows = conn.execute(
            sa.select(Goal.__table__.c.id, Goal.__table__.c.client_id, Goal.__table__.c.title)
        ).all()
    assert sorted(str(row.id) for row in rows) == sorted(ids)
    assert {str(row.client_id) for row in rows} == {owner.id}


async def test_bare_insert_needs_write_scope(
    bench_client: httpx.AsyncClient,
    make_user: Callable[..., Any],
    sync_engine: sa.Engine,
) -> None:
    reader = await make_user("client", scope="client goals:read")
    r = await bench_client.post("/bench/bare-insert", headers=reader.headers)
    assert_problem(r, 403, "insufficient-scope")
    with sync_engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(Goal.__table__)) == 0


async def test_absent_from_openapi_when_enabled(bench_client: httpx.AsyncClient) -> None:
    spec = (await bench_client.get("/openapi.json")).json()
    assert not any(p.startswith("/bench") for p in spec["paths"])
