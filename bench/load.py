"""Build the benchmark database: fresh schema by the migrations, then goals and steps in bulk.

Rows go in through SQLAlchemy Core in one transaction on SQLite (so the column types store
exactly what the app reads back) and through ``COPY`` on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from app.cli import alembic_config
from app.core.database_url import sync_url
from app.models import Goal, Step, User, new_id
from bench.sync_export import record_changes

BIG_CLIENT_EMAIL = "big.client@bench.example"
CATEGORIES = ("activity", "sleep", "social", "work", "self-care", "mood", None)
PRIORITIES = ("low", "medium", "high", None)
GAS_LEVELS = {
    "-2": "Stays at home all week.",
    "-1": "One short walk a week.",
    "0": "Two walks a week.",
    "1": "Three walks a week.",
    "2": "Walks most days and enjoys it.",
}


@dataclass
class Dataset:
    clients: list[uuid.UUID] = field(default_factory=list)  # the regular clients
    big_client: uuid.UUID | None = None
    goals: int = 0
    steps: int = 0


def reset_schema(url: str) -> None:
    """Drop everything in the benchmark database, then ``alembic upgrade head``."""
    parsed = make_url(sync_url(url))
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        _create_database_if_missing(parsed)
        engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
    upgrade_schema(url)


def upgrade_schema(url: str) -> None:
    """``alembic upgrade head``: data loaded by an earlier revision, reused (``--reuse``)."""
    from alembic import command

    command.upgrade(alembic_config(sync_url(url)), "head")


def _create_database_if_missing(url: sa.URL) -> None:
    """A fresh machine has no benchmark database yet: create it from the ``postgres`` one."""
    admin = sa.create_engine(
        url.set(database="postgres"), poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        exists = conn.scalar(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
        )
        if not exists:
            quoted = admin.dialect.identifier_preparer.quote(url.database or "")
            conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
    admin.dispose()


def _users(n_clients: int, password_hash: str, now: dt.datetime) -> list[dict[str, Any]]:
    rows = []
    for i in range(n_clients + 1):
        email = BIG_CLIENT_EMAIL if i == n_clients else f"client{i}@bench.example"
        rows.append(
            {
                "id": new_id(),
                "email": email,
                "email_key": email,
                "display_name": f"Client {i}",
                "role": "client",
                "timezone": "Europe/Berlin",
                "password_hash": password_hash,
                "email_verified": False,
                "created_at": now - dt.timedelta(days=400),
                "updated_at": now - dt.timedelta(days=400),
            }
        )
    return rows


def _goal_and_steps(
    rng: random.Random, client_id: uuid.UUID, n: int, now: dt.datetime
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    created = now - dt.timedelta(seconds=rng.uniform(0, 365 * 86400))
    updated = created + (now - created) * rng.random()
    goal_id = new_id()
    n_steps = rng.choice((0, 1, 2, 3, 3, 4, 5, 6))
    steps = []
    for position in range(n_steps):
        done = rng.random() < 0.45
        steps.append(
            {
                "id": new_id(),
                "goal_id": goal_id,
                "client_id": client_id,
                "title": f"Step {position + 1}: ask a friend to come along",
                "notes": None if rng.random() < 0.7 else "Start small.",
                "status": "done" if done else "todo",
                "position": position,
                "due_date": None,
                "completed_at": updated if done else None,
                "created_by": client_id,
                "version": 2 if done else 1,
                "created_at": created,
                "updated_at": updated,
                "deleted_at": None,
            }
        )
    steps_done = sum(s["status"] == "done" for s in steps)
    completed = rng.random() < 0.1
    reviewed = rng.random() < 0.5
    with_gas = rng.random() < 0.2
    goal = {
        "id": goal_id,
        "client_id": client_id,
        "created_by": client_id,
        "title": f"Walk to the park three times a week ({n})",
        "description": None if rng.random() < 0.3 else "Short walks, ten minutes to start.",
        "motivation": None if rng.random() < 0.5 else "Feeling less stuck at home.",
        "success_criteria": None if rng.random() < 0.5 else "Three walks a week for a month.",
        "category": rng.choice(CATEGORIES),
        "priority": rng.choice(PRIORITIES),
        "status": "completed" if completed else "active",
        "achievement_status": "achieved" if completed else rng.choice((None, "in_progress")),
        "visibility": "private" if rng.random() < 0.15 else "shared",
        "target_date": (created + dt.timedelta(days=rng.randint(14, 200))).date(),
        "review_every_days": rng.choice((None, 7, 14)),
        "next_review_due": (updated + dt.timedelta(days=7)).date() if reviewed else None,
        "external_id": None,
        "gas_levels": GAS_LEVELS if with_gas else None,
        "gas_weight": rng.randint(1, 9) if with_gas else 1,
        "completed_at": updated if completed else None,
        "steps_total": n_steps,
        "steps_done": steps_done,
        "latest_rating": rng.randint(1, 10) if reviewed else None,
        "latest_gas_score": rng.randint(-2, 2) if reviewed and with_gas else None,
        "last_review_at": updated if reviewed else None,
        "celebrated_half_at": updated if n_steps and steps_done * 2 >= n_steps else None,
        "celebrated_all_steps_at": updated if n_steps and steps_done == n_steps else None,
        "celebrated_completed_at": updated if completed else None,
        "lagging": False,
        "lagging_reviews": False,
        "lagging_missed": False,
        "reminded_due": None,
        "version": 1 + n_steps + steps_done,
        "created_at": created,
        "updated_at": updated,
        "deleted_at": None,
    }
    return goal, steps


def _batches(
    rng: random.Random, owners: list[uuid.UUID], now: dt.datetime, size: int = 5000
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    goals: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    for n, owner in enumerate(owners):
        goal, goal_steps = _goal_and_steps(rng, owner, n, now)
        goals.append(goal)
        steps.extend(goal_steps)
        if len(goals) >= size:
            yield goals, steps
            goals, steps = [], []
    if goals:
        yield goals, steps


def load(url: str, *, goals: int, clients: int, big_goals: int, seed: int = 7) -> Dataset:
    """Users with one precomputed password hash, ``goals`` goals over ``clients`` clients and
    ``big_goals`` for one more client (the deep-page measurement)."""
    from app.core.security import hash_password

    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    users = _users(clients, hash_password("bench password 1234"), now)
    data = Dataset(clients=[u["id"] for u in users[:-1]], big_client=users[-1]["id"])
    owners = [rng.choice(data.clients) for _ in range(goals)] + [data.big_client] * big_goals
    rng.shuffle(owners)
    engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
    try:
        if engine.dialect.name == "postgresql":
            _load_postgres(engine, users, _batches(rng, owners, now), data)
        else:
            _load_sqlite(engine, users, _batches(rng, owners, now), data)
    finally:
        engine.dispose()
    return data


def _load_sqlite(engine: sa.Engine, users: list, batches: Iterator, data: Dataset) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(User.__table__), users)
        for goals, steps in batches:
            conn.execute(sa.insert(Goal.__table__), goals)
            if steps:
                conn.execute(sa.insert(Step.__table__), steps)
            data.goals += len(goals)
            data.steps += len(steps)
        record_changes(conn)
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def _copy(cursor: Any, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    from psycopg.types.json import Jsonb

    columns = [c.name for c in table.columns]
    json_columns = {c.name for c in table.columns if isinstance(c.type, sa.JSON)}
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [
                    Jsonb(row[c]) if c in json_columns and row[c] is not None else row[c]
                    for c in columns
                ]
            )


def _load_postgres(engine: sa.Engine, users: list, batches: Iterator, data: Dataset) -> None:
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            _copy(cursor, User.__table__, users)
            for goals, steps in batches:
                _copy(cursor, Goal.__table__, goals)
                _copy(cursor, Step.__table__, steps)
                data.goals += len(goals)
                data.steps += len(steps)
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as conn:
        record_changes(conn)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
