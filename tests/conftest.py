"""Test harness: a database built by the migrations, each test on empty tables, an ASGI client
that checks every response against the OpenAPI document, ``make_user``, and ``serve`` for the
tests that need a real server process. Helpers (worlds, callers, request helpers, servers,
the response contract) live in ``tests/support/``; which database runs is decided in
``tests/support/database.py`` (WAYPOINT_TEST_DATABASE=sqlite or postgres).
"""

import contextlib
import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.support.database import DATABASE_URL, TMP

os.environ.update(
    {
        "WAYPOINT_ENV": "test",
        "WAYPOINT_DATABASE_URL": DATABASE_URL,
        "WAYPOINT_SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "WAYPOINT_VAR_DIR": str(TMP / "var"),
        "WAYPOINT_ARGON2_TIME_COST": "1",
        "WAYPOINT_ARGON2_MEMORY_COST": "1024",
        "WAYPOINT_ARGON2_PARALLELISM": "1",
        "WAYPOINT_LOG_JSON": "true",
        # The suite's concurrency tests are about correctness; on a busy machine load shedding
        # would refuse some of their requests; tests/platform/test_load_shedding.py sets its own
        # bounds.
        "WAYPOINT_MAX_QUEUE_WAIT_MS": "60000",
    }
)

from app.cli import alembic_config  # noqa: E402
from app.core.config import get_settings  # noqa: E402
from app.core.database_url import sync_url  # noqa: E402
from app.core.engines import dispose_engines, get_engine, get_read_engine  # noqa: E402
from app.core.sessions import forget_engines  # noqa: E402
from app.models import metadata  # noqa: E402
from tests.support.clock import FakeClock  # noqa: E402
from tests.support.contract import response_contract  # noqa: E402
from tests.support.servers import Server, running_server  # noqa: E402
from tests.support.worlds import PASSWORD, Actor, login  # noqa: E402  (what make_user needs)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if inspect.iscoroutinefunction(getattr(item, "obj", None)):
            item.add_marker(pytest.mark.anyio)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def reset_database(url: str) -> None:
    """Drop everything, then build the schema with ``alembic upgrade head``."""
    from alembic import command

    engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        else:
            metadata.drop_all(conn)
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    command.upgrade(alembic_config(sync_url(url)), "head")


@pytest.fixture(scope="session", autouse=True)
def _database() -> Iterator[None]:
    reset_database(DATABASE_URL)
    yield


def _truncate_all() -> None:
    engine = sa.create_engine(sync_url(DATABASE_URL), poolclass=sa.pool.NullPool)
    names = [t.name for t in metadata.sorted_tables]
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in reversed(names):
                conn.execute(sa.text(f"DELETE FROM {name}"))
    engine.dispose()


@pytest.fixture
async def app_instance() -> AsyncIterator[Any]:
    from app.main import create_app

    get_settings.cache_clear()
    _truncate_all()
    yield create_app()
    await dispose_engines()
    forget_engines()


@pytest.fixture
async def client(app_instance: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app's client; every response it receives is checked against the OpenAPI document."""
    contract = response_contract(app_instance)

    async def check(response: httpx.Response) -> None:
        await response.aread()
        contract.check(response)

    transport = httpx.ASGITransport(app=app_instance, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", event_hooks={"response": [check]}
    ) as c:
        yield c


_counter = iter(range(1, 1_000_000))


@pytest.fixture
def make_user(client: httpx.AsyncClient) -> Callable[..., Awaitable[Actor]]:
    async def make(
        role: str = "client", *, timezone: str = "UTC", scope: str | None = None, name: str = ""
    ) -> Actor:
        n = next(_counter)
        email = f"{role}{n}@example.com"
        display_name = name or f"{role.title()} {n}"
        r = await client.post(
            "/v1/auth/register",
            json={
                "email": email,
                "password": PASSWORD,
                "display_name": display_name,
                "role": role,
                "timezone": timezone,
            },
        )
        assert r.status_code == 201, r.text
        t = await login(client, email, scope=scope)
        assert t.status_code == 200, t.text
        body = t.json()
        return Actor(
            id=r.json()["id"],
            email=email,
            role=role,
            display_name=display_name,
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
            scope=body["scope"],
        )

    return make


@pytest.fixture
def sync_engine() -> Iterator[sa.Engine]:
    """A plain engine on the test database, to look at rows behind the API's back."""
    engine = sa.create_engine(sync_url(DATABASE_URL), poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def scoped_routes(app_instance: Any) -> Any:
    """Probe routes behind resource scopes and a role, as domain routers declare them (their
    annotations are evaluated by FastAPI, hence no ``from __future__ import annotations`` here)."""
    from fastapi import APIRouter

    from app.auth.dependencies import principal_with
    from app.auth.routing import AuthenticatedRoute

    probe = APIRouter(route_class=AuthenticatedRoute)

    @probe.get("/v1/_probe/read")
    async def probe_read(p: principal_with("goals:read")) -> dict:
        return {"scopes": sorted(p.scopes)}

    @probe.get("/v1/_probe/write")
    async def probe_write(p: principal_with("goals:write")) -> dict:
        return {"scopes": sorted(p.scopes)}

    @probe.get("/v1/_probe/therapist")
    async def probe_therapist(p: principal_with("therapist")) -> dict:
        return {"role": str(p.role)}

    app_instance.include_router(probe)
    return app_instance


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA")):
            self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_statements(app_instance: Any) -> Iterator[StatementCounter]:
    """Counts SQL statements the app sends (BEGIN/COMMIT and PRAGMAs excepted), on SQLite also
    those of the inline read-only engine."""
    from app.core.reads import sqlite_reader

    counter = StatementCounter()
    engines = {get_engine().sync_engine, get_read_engine().sync_engine}
    if get_engine().dialect.name == "sqlite":
        engines.add(sqlite_reader(get_engine().url.render_as_string(hide_password=False)))
    for engine in engines:
        sa.event.listen(engine, "before_cursor_execute", counter)
    yield counter
    for engine in engines:
        sa.event.remove(engine, "before_cursor_execute", counter)


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    """Starts ``waypoint serve`` processes: ``serve(env=None, workers=1, migrate=True)`` migrates
    the database of ``env`` (default: this process's environment, the suite's test database),
    starts a server on a free loopback port and returns it once it answers ``/readyz``. Every
    server still running is stopped (SIGTERM) when the test ends."""
    with contextlib.ExitStack() as started:

        def start(
            env: dict[str, str] | None = None, *, workers: int = 1, migrate: bool = True
        ) -> Server:
            return started.enter_context(running_server(env, workers=workers, migrate=migrate))

        yield start


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A clock moved by hand: ``fake_clock.install(module)`` makes that module's
    ``time.monotonic()`` read it, ``fake_clock.advance(seconds)`` moves it."""
    return FakeClock(monkeypatch)
