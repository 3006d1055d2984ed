"""Settings: the production secret rule, the development secret file, database pragmas."""

import os
import stat
import subprocess
import sys

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from app.core import database_url, deadlines, engines, sessions
from app.core.config import Settings, get_settings
from tests.support.paths import ROOT


@pytest.fixture
def isolated_settings(monkeypatch):
    """Fresh settings and engine for one test; the suite's own are restored afterwards."""
    get_settings.cache_clear()
    sessions.forget_engines()
    yield monkeypatch
    get_settings.cache_clear()
    sessions.forget_engines()


@pytest.mark.parametrize("secret", [None, "", "x" * 31, "ä" * 15])
def test_production_refuses_a_missing_or_short_secret(secret, tmp_path):
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        Settings(env="production", secret_key=secret, var_dir=tmp_path)
    assert not (tmp_path / "secret_key").exists()


def test_production_accepts_a_32_byte_secret(tmp_path):
    settings = Settings(env="production", secret_key="s" * 32, var_dir=tmp_path)
    assert settings.signing_key == "s" * 32
    assert not (tmp_path / "secret_key").exists()


def test_production_without_a_secret_does_not_start(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("WAYPOINT_") or k == "WAYPOINT_DATABASE_URL"
    }
    env |= {"WAYPOINT_ENV": "production", "WAYPOINT_VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", "from app.main import create_app; create_app()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "WAYPOINT_SECRET_KEY" in result.stderr
    env["WAYPOINT_SECRET_KEY"] = "p" * 40
    ok = subprocess.run(
        [sys.executable, "-c", "from app.main import create_app; create_app()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr


def test_development_generates_the_secret_once_with_mode_0600(tmp_path):
    var = tmp_path / "var"
    first = Settings(env="development", secret_key=None, var_dir=var).signing_key
    path = var / "secret_key"
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.encode()) >= 32
    assert path.read_text().strip() == first
    again = Settings(env="development", secret_key=None, var_dir=var).signing_key
    assert again == first
    # An explicit secret wins over the file.
    assert Settings(env="development", secret_key="k" * 40, var_dir=var).signing_key == "k" * 40


def test_the_secret_comes_from_the_environment(isolated_settings, tmp_path):
    isolated_settings.setenv("WAYPOINT_SECRET_KEY", "from-the-environment-" * 2)
    isolated_settings.setenv("WAYPOINT_VAR_DIR", str(tmp_path))
    assert get_settings().signing_key == "from-the-environment-" * 2
    assert get_settings() is get_settings()  # read once


def test_settings_read_from_the_environment(isolated_settings):
    isolated_settings.setenv("WAYPOINT_ACCESS_TOKEN_MINUTES", "5")
    isolated_settings.setenv("WAYPOINT_REFRESH_TOKEN_DAYS", "7")
    isolated_settings.setenv("WAYPOINT_JWT_ISSUER", "https://auth.example")
    isolated_settings.setenv("WAYPOINT_JWT_AUDIENCE", "waypoint-test")
    isolated_settings.setenv("WAYPOINT_CORS_ORIGINS", '["https://app.example"]')
    s = get_settings()
    assert (s.access_token_minutes, s.refresh_token_days) == (5, 7)
    assert (s.jwt_issuer, s.jwt_audience) == ("https://auth.example", "waypoint-test")
    assert s.cors_origins == ["https://app.example"]


def test_sqlite_runs_with_wal_foreign_keys_and_a_busy_timeout(isolated_settings, tmp_path):
    isolated_settings.setenv("WAYPOINT_DATABASE_URL", f"sqlite:///{tmp_path / 'sub' / 'p.db'}")
    engine = engines.get_engine()
    assert engine.dialect.name == "sqlite"
    assert engine.dialect.driver == "aiosqlite"

    async def pragmas():
        async with engine.connect() as conn:
            values = {
                name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            }
            await conn.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
            await conn.exec_driver_sql(
                "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER "
                "REFERENCES parent(id))"
            )
            with pytest.raises(sa.exc.IntegrityError):
                await conn.exec_driver_sql("INSERT INTO child (id, parent_id) VALUES (1, 42)")
        await engine.dispose()
        return values

    import anyio

    values = anyio.run(pragmas)
    busy = get_settings().sqlite_busy_timeout_ms  # WAYPOINT_SQLITE_BUSY_TIMEOUT_MS, 5000 by default
    assert values == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": busy}
    assert (tmp_path / "sub" / "p.db").exists()


def test_postgresql_gets_a_pinged_pool_with_timeouts(isolated_settings):
    isolated_settings.setenv("WAYPOINT_DATABASE_URL", "postgresql://x@127.0.0.1:1/x")
    isolated_settings.setenv("WAYPOINT_DB_CONNECT_TIMEOUT_SECONDS", "4")
    isolated_settings.setenv("WAYPOINT_DB_STATEMENT_TIMEOUT_MS", "1500")
    isolated_settings.setenv("WAYPOINT_DB_POOL_TIMEOUT_SECONDS", "2.5")
    engine = engines.get_engine()
    assert engine.dialect.name == "postgresql"
    assert engine.dialect.driver == "psycopg"
    assert engine.pool.dispatch.checkout  # pings a write's connection at checkout
    for pool in (engine.pool, engines.get_read_engine().pool):
        assert pool.timeout() == 2.5
    assert engines.postgres_connect_args() == {
        "connect_timeout": 4,
        "options": "-c statement_timeout=1500",
    }
    assert deadlines.request_deadline_seconds() == 5.5


def test_an_unsupported_database_is_refused():
    with pytest.raises(ValueError, match="unsupported database"):
        database_url.async_url("mysql://x@localhost/x")


async def test_cors_answers_preflights_for_configured_origins(isolated_settings):
    import httpx

    from app.main import create_app

    isolated_settings.setenv("WAYPOINT_CORS_ORIGINS", '["https://app.example"]')
    app = create_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.options(
            "/v1/me",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "Authorization, If-Match",
            },
        )
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        other = await c.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_the_operators_guide_documents_every_setting():
    guide = (ROOT / "docs" / "operators.md").read_text()
    for name in Settings.model_fields:
        setting = f"WAYPOINT_{name.upper()}"
        assert f"`{setting}`" in guide, f"docs/operators.md lacks {setting}"
