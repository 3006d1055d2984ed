"""From an empty database: upgrade to head, no drift from the models, downgrade to base."""

import datetime as dt
import re
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from app.cli import alembic_config
from app.core.columns import UTCDateTime
from app.core.database_url import sync_url
from app.models import metadata
from tests.support.database import DATABASE_URL
from tests.support.paths import ROOT

VERSIONS = ROOT / "migrations" / "versions"


@pytest.fixture
def empty_database(tmp_path) -> Iterator[str]:
    """A brand-new database of the suite's kind: a temp SQLite file, or a throwaway PostgreSQL
    database created (and dropped) next to the test database."""
    url = make_url(sync_url(DATABASE_URL))
    if url.get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"waypoint_mig_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_matches_the_models_and_downgrade_removes_everything(empty_database):
    assert table_names(empty_database) == set()
    config = alembic_config(empty_database)
    command.upgrade(config, "head")

    engine = sa.create_engine(empty_database, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            assert set(metadata.tables) <= set(sa.inspect(conn).get_table_names())
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, metadata)
            assert diff == [], f"models and migrations disagree: {diff}"
            head = ScriptDirectory.from_config(config).get_current_head()
            assert context.get_current_revision() == head
            check_constraint_names(sa.inspect(conn))
    finally:
        engine.dispose()

    command.upgrade(config, "head")  # a second upgrade is a no-op
    command.downgrade(config, "base")
    assert table_names(empty_database) - {"alembic_version"} == set()


def check_constraint_names(inspector: sa.Inspector) -> None:
    """The naming convention was on the metadata before the first table."""
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        for index in inspector.get_indexes(table):
            assert re.match(r"^(ix|uq)_", index["name"]), (table, index["name"])
        for fk in inspector.get_foreign_keys(table):
            assert fk["name"] and fk["name"].startswith("fk_"), (table, fk)
        for unique in inspector.get_unique_constraints(table):
            if unique["name"]:
                assert unique["name"].startswith("uq_"), (table, unique)


def test_migration_files_are_dated_and_form_one_line():
    files = sorted(p.name for p in VERSIONS.glob("*.py"))
    assert files
    for name in files:
        assert re.match(r"^\d{4}_\d{2}_\d{2}_\d{4}-[0-9a-z]+_[a-z0-9_]+\.py$", name), name
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1, "migrations have branched: add a merge revision"


def test_0008_fills_in_the_client_of_existing_deliveries(empty_database):
    """Deliveries made before 0008 get the client they are about where their rows tell it: a
    client's own webhook, a body naming ``data.client_id``, a step's goal, a deleted goal's
    row; one about a goal that no longer exists stays null."""
    import json

    from sqlmodel import Session

    from app.models import Goal, User, Webhook, WebhookDelivery

    config = alembic_config(empty_database)
    command.upgrade(config, "head")
    engine = sa.create_engine(empty_database, poolclass=sa.pool.NullPool)
    people = {
        role: User(email=f"{role}@x.org", email_key=f"{role}@x.org", display_name=role,
                   role=role, password_hash="x")
        for role in ("client", "therapist")
    }  # fmt: skip
    client, therapist = people["client"].id, people["therapist"].id
    goal = Goal(client_id=client, title="Walk", status="active")
    goal_id = goal.id
    hooks = {who: Webhook(user_id=who, url="https://example.org/h", events=["goal.created"],
                          secret="s") for who in (client, therapist)}  # fmt: skip
    bodies = {
        "own": (client, "goal.created", {"id": str(goal_id), "client_id": str(client)}),
        "named": (therapist, "goal.created", {"id": str(goal_id), "client_id": str(client)}),
        "step": (therapist, "step.completed", {"id": str(uuid.uuid4()), "goal_id": str(goal_id)}),
        "deleted": (therapist, "goal.deleted", {"id": str(goal_id)}),
        "unknown": (therapist, "goal.deleted", {"id": str(uuid.uuid4())}),
    }
    deliveries = {
        name: WebhookDelivery(webhook_id=hooks[owner].id, user_id=owner, event=event,
                              body=json.dumps({"type": event, "data": data}))
        for name, (owner, event, data) in bodies.items()
    }  # fmt: skip
    ids = {name: delivery.id for name, delivery in deliveries.items()}
    try:
        with Session(engine) as session:
            session.add_all([*people.values()])
            session.flush()
            session.add_all([goal, *hooks.values()])
            session.flush()
            session.add_all(deliveries.values())
            session.commit()
        command.downgrade(config, "0007")
        command.upgrade(config, "0008")
        table = WebhookDelivery.__table__
        with engine.connect() as conn:
            found = dict(conn.execute(sa.select(table.c.id, table.c.client_id)).all())
    finally:
        engine.dispose()
    expected = {"own": client, "named": client, "step": client, "deleted": client, "unknown": None}
    assert {name: found[delivery_id] for name, delivery_id in ids.items()} == expected


def test_the_reminders_revision_schedules_the_clients_with_due_goals(empty_database):
    """Goals already due before reminders existed are found by the scheduler: their clients
    get a schedule row no later than their earliest due date can begin anywhere."""
    config = alembic_config(empty_database)
    command.upgrade(config, "0021_reminders-1")
    engine = sa.create_engine(empty_database, poolclass=sa.pool.NullPool)
    client_id, idle_id = uuid.uuid4(), uuid.uuid4()
    now = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    # The tables as the revision before found them (the models already have more columns).
    users = sa.table("users", *(_typed(c) for c in (
        "id", "email", "email_key", "display_name", "role", "timezone", "password_hash",
        "created_at", "updated_at")))  # fmt: skip
    goals = sa.table("goals", *(_typed(c) for c in (
        "id", "client_id", "title", "status", "visibility", "next_review_due", "gas_weight",
        "steps_total", "steps_done", "version", "created_at", "updated_at")))  # fmt: skip
    try:
        with engine.begin() as conn:
            for uid in (client_id, idle_id):
                conn.execute(users.insert().values(
                    id=uid, email=f"{uid}@x.example", email_key=f"{uid}@x.example",
                    display_name="c", role="client", timezone="UTC", password_hash="x",
                    created_at=now, updated_at=now,
                ))  # fmt: skip
            for day, status in (("2026-12-20", "active"), ("2026-12-01", "completed"),
                                ("2027-01-05", "active")):  # fmt: skip
                conn.execute(goals.insert().values(
                    id=uuid.uuid4(), client_id=client_id, title="t", status=status,
                    visibility="shared", next_review_due=dt.date.fromisoformat(day),
                    gas_weight=1, steps_total=0, steps_done=0, version=1, created_at=now,
                    updated_at=now,
                ))  # fmt: skip
        command.upgrade(config, "0021_reminders")
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT client_id, next_at FROM reminder_schedules")).all()
        assert len(rows) == 1  # the client without goals has nothing to schedule
        assert str(rows[0][0]).replace("-", "") == client_id.hex
        assert str(rows[0][1]).startswith("2026-12-19 10:00:00")
    finally:
        engine.dispose()


def _typed(name: str) -> sa.ColumnClause:
    kinds = {"id": sa.Uuid(), "client_id": sa.Uuid(), "next_review_due": sa.Date()}
    kinds |= {"created_at": UTCDateTime(), "updated_at": UTCDateTime()}
    return sa.column(name, kinds.get(name))
