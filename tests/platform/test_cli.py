"""The `waypoint` command: migrate, openapi, create-user, serve."""

import json
import os
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from app.cli import cli
from app.core import sessions
from app.core.config import get_settings
from app.models import metadata
from tests.support.worlds import PASSWORD

runner = CliRunner()
WAYPOINT = Path(sys.executable).parent / "waypoint"


@pytest.fixture
def own_database(monkeypatch, tmp_path):
    """Point the settings at a database of this test's own (settings and engine rebuilt)."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("WAYPOINT_DATABASE_URL", url)
    get_settings.cache_clear()
    sessions.forget_engines()
    yield url
    get_settings.cache_clear()
    sessions.forget_engines()


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrate_builds_the_schema_and_is_repeatable(own_database):
    result = runner.invoke(cli, ["migrate"])
    assert result.exit_code == 0, result.output
    assert "head" in result.output
    assert set(metadata.tables) | {"alembic_version"} == tables(own_database)
    again = runner.invoke(cli, ["migrate"])
    assert again.exit_code == 0, again.output


def test_openapi_prints_and_writes_the_served_document(tmp_path):
    from app.main import create_app

    served = create_app().openapi()
    printed = runner.invoke(cli, ["openapi"])
    assert printed.exit_code == 0
    assert json.loads(printed.stdout) == served
    target = tmp_path / "out" / "openapi.json"
    written = runner.invoke(cli, ["openapi", "--output", str(target)])
    assert written.exit_code == 0
    assert json.loads(target.read_text()) == served


def test_create_user_then_log_in(own_database):
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    result = runner.invoke(
        cli,
        [
            "create-user",
            "Therapist@Example.com",
            "Dr. Who",
            "--role",
            "therapist",
            "--password",
            PASSWORD,
            "--timezone",
            "Europe/Vienna",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "created therapist" in result.output
    assert PASSWORD not in result.output
    engine = sa.create_engine(own_database)
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT email_key, role, timezone, password_hash FROM users")
        ).one()
    engine.dispose()
    assert row[:3] == ("therapist@example.com", "therapist", "Europe/Vienna")
    assert row[3].startswith("$argon2id$")

    duplicate = runner.invoke(
        cli, ["create-user", "therapist@example.com", "Again", "--password", PASSWORD]
    )
    assert duplicate.exit_code == 1
    assert "already exists" in duplicate.output


def test_create_user_prompts_for_the_password_without_echo(own_database):
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    result = runner.invoke(
        cli, ["create-user", "c@example.com", "Client"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["a@example.com", "A", "--password", "tiny9"], "password"),
        (["not-an-email", "A", "--password", PASSWORD], "email"),
        (["a@example.com", "A", "--password", PASSWORD, "--role", "admin"], "role"),
        (["a@example.com", "A", "--password", PASSWORD, "--timezone", "Mars/Base"], "timezone"),
    ],
)
def test_create_user_explains_bad_input(own_database, args, field):
    result = runner.invoke(cli, ["create-user", *args])
    assert result.exit_code == 2
    assert field in result.output
    assert "Traceback" not in result.output
    assert "tiny9" not in result.output  # the rejected password is not echoed


def test_serve_runs_the_api_and_logs_json(tmp_path, serve):
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    env = {**os.environ, "WAYPOINT_DATABASE_URL": url, "WAYPOINT_VAR_DIR": str(tmp_path)}
    server = serve(env)  # migrates first, then waits for /readyz
    r = httpx.get(f"{server.url}/healthz", timeout=5)
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200
    server.stop()
    output = server.output()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    requests = [line for line in lines if line.get("event") == "request"]
    routes = [line["route"] for line in requests]
    assert routes[-2:] == ["/healthz", "/readyz"]
    assert set(routes[:-2]) == {"/readyz"}  # the fixture's readiness probes
    assert all(line["request_id"] for line in requests)
    assert any(line.get("logger") == "uvicorn.error" for line in lines)
    assert not any(line.get("logger") == "uvicorn.access" for line in lines)  # ours suffices
