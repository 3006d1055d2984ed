"""Helpers for the retention tests: a fixed ``NOW`` to sweep at, rows written behind the API's
back with chosen ages, what is left of a table, and a metric's value in a scrape."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from app.models import User

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def ago(delta: dt.timedelta) -> dt.datetime:
    return NOW - delta


def new_user(engine: sa.Engine, role: str = "client") -> uuid.UUID:
    user_id = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            sa.insert(User.__table__).values(
                id=user_id, email=f"{user_id}@example.com", email_key=f"{user_id}@example.com",
                display_name="Someone", role=role, password_hash="x", created_at=NOW,
                updated_at=NOW,
            )
        )  # fmt: skip
    return user_id


def insert(engine: sa.Engine, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        with engine.begin() as conn:
            conn.execute(sa.insert(table), rows)


def remaining(engine: sa.Engine, table: sa.Table, column: str = "id") -> set[Any]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(table.c[column])).scalars())


def delivery(user_id: uuid.UUID, status: str, last_attempt: dt.datetime) -> dict[str, Any]:
    """A webhook delivery row whose last attempt was at ``last_attempt``."""
    return {
        "id": uuid.uuid4(), "webhook_id": uuid.uuid4(), "user_id": user_id, "client_id": user_id,
        "event": "goal.created", "body": "{}", "status": status, "attempts": 1,
        "next_attempt_at": last_attempt, "created_at": last_attempt,
        "delivered_at": last_attempt if status == "delivered" else None,
    }  # fmt: skip


def metric_value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` with these labels in a ``/metrics`` scrape."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )
