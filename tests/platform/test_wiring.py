"""Explicit wiring: ``create_app`` runs what ``app.wiring`` lists, and importing a module
registers nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

from app.wiring import BACKGROUND_WORKERS

IMPORT_EVERYTHING_THEN_CREATE = textwrap.dedent(
    """
    import importlib, pkgutil
    import sqlalchemy as sa
    from sqlalchemy.orm import Session
    import app
    from app.wiring import SESSION_LISTENERS

    for module in pkgutil.walk_packages(app.__path__, "app."):
        importlib.import_module(module.name)
    attached = [sa.event.contains(t, n, f) for t, n, f in SESSION_LISTENERS]
    assert not any(attached), attached
    assert not sa.event.contains(Session, "after_commit", lambda s: None)

    from app.main import create_app
    create_app()
    create_app()
    attached = [sa.event.contains(t, n, f) for t, n, f in SESSION_LISTENERS]
    assert all(attached), attached
    print("ok")
    """
)


def test_importing_every_module_attaches_no_listener_until_create_app():
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING_THEN_CREATE],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


async def test_the_lifespan_runs_exactly_the_listed_background_workers(app_instance):
    def running() -> set[str]:
        return {t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("background:")}

    assert running() == set()
    async with app_instance.router.lifespan_context(app_instance):
        assert running() == {f"background:{worker.__name__}" for worker in BACKGROUND_WORKERS}
    assert running() == set()
