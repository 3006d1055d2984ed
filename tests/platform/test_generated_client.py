"""openapi-python-client builds a package from the committed document without a warning, and
that package drives a real server through an integrator's first session."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT

BIN = Path(sys.executable).parent
GAS = {"-2": "Stays in", "-1": "To the door", "0": "To the corner", "1": "To the shop", "2": "Shop"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The client package, generated from openapi/openapi.json and importable."""
    out = tmp_path_factory.mktemp("client")
    result = subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(ROOT / "openapi" / "openapi.json"),
            "--config",
            str(ROOT / "clients" / "python" / "config.yml"),
            "--meta",
            "none",
            "--output-path",
            str(out / "waypoint_client"),
        ],
        # Its ruff post-hooks are part of a clean run: ruff must be on the PATH.
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output.lower(), output
    assert "error" not in output.lower(), output
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("waypoint_client")
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m.split(".")[0] == "waypoint_client"]:
            del sys.modules[name]


@pytest.fixture
def server(tmp_path, serve) -> str:
    """A real server process on a free loopback port, with a fresh SQLite database."""
    env = {
        **os.environ,
        "WAYPOINT_DATABASE_URL": f"sqlite:///{tmp_path / 'client.db'}",
        "WAYPOINT_VAR_DIR": str(tmp_path),
    }
    return serve(env).url


def test_the_generated_client_drives_the_api(generated, server):
    from waypoint_client import AuthenticatedClient, Client
    from waypoint_client.api.auth import auth_register, auth_token
    from waypoint_client.api.goals import goals_create, goals_list
    from waypoint_client.api.progress import progress_get
    from waypoint_client.api.steps import steps_create, steps_update
    from waypoint_client.models import (
        GasLevels,
        GoalCreate,
        GoalOut,
        GoalStatus,
        Problem,
        RegisterRequest,
        Role,
        StepCreate,
        StepStatus,
        StepUpdate,
        TokenRequest,
        Visibility,
    )

    anonymous = Client(base_url=server, raise_on_unexpected_status=True)
    user = auth_register.sync(
        client=anonymous,
        body=RegisterRequest(
            email="gen@example.com",
            password="a long enough password",
            display_name="Gen",
            role=Role.CLIENT,
        ),
    )
    assert user.role is Role.CLIENT
    token = auth_token.sync(
        client=anonymous,
        body=TokenRequest(
            grant_type="password", username="gen@example.com", password="a long enough password"
        ),
    )
    assert token.access_token and token.refresh_token
    api = AuthenticatedClient(
        base_url=server, token=token.access_token, raise_on_unexpected_status=True
    )

    gas = GasLevels()
    gas.additional_properties = dict(GAS)
    goal = goals_create.sync(client=api, body=GoalCreate(title="Go out alone", gas_levels=gas))
    assert isinstance(goal, GoalOut), goal
    assert goal.gas_levels.additional_properties == GAS  # the wire keys "-2".."2" round-trip
    assert goal.gas_weight == 1 and goal.visibility is Visibility.SHARED  # defaults applied

    page = goals_list.sync(client=api, status=goal.status)
    assert [g.id for g in page.items] == [goal.id]
    assert isinstance(goal.status, GoalStatus)

    step = steps_create.sync(goal.id, client=api, body=StepCreate(title="Put shoes on"))
    assert step.status is StepStatus.TODO
    done = steps_update.sync(step.id, client=api, body=StepUpdate(status=StepStatus.DONE))
    assert done.status is StepStatus.DONE and done.completed_at is not None

    progress = progress_get.sync(goal.id, client=api)
    assert (progress.steps_total, progress.steps_done, progress.percent) == (1, 1, 100)

    bad = goals_create.sync_detailed(client=api, body=GoalCreate(title="x", gas_weight=10))
    assert bad.status_code == 422
    assert isinstance(bad.parsed, Problem)
    assert bad.parsed.status == 422 and bad.parsed.type_ == "/problems/validation-error"
    assert bad.headers["content-type"].startswith("application/problem+json")
