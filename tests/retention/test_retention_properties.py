"""Properties of the retention sweep: whatever the rows and the moment, it deletes exactly what
each rule selects and keeps everything else; and in real server processes, two workers
sweeping the same tables delete each row once."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
import uuid
from typing import Any

import httpx
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.config import Settings
from app.models import IdempotencyKey, LoginFailure, RefreshToken, WebhookDelivery
from app.retention.service import sweep_once
from tests.support.retention import NOW, delivery, insert, metric_value, new_user, remaining

HOUR = dt.timedelta(hours=1)
ages = st.integers(min_value=0, max_value=24 * 400)  # hours before NOW
maybe_ages = st.none() | ages
row_counts = st.integers(min_value=0, max_value=6)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    deliveries=st.lists(st.tuples(st.sampled_from(["pending", "delivered", "failed"]), ages),
                        max_size=8),
    keys=st.lists(ages, max_size=6),
    failures=st.lists(ages, max_size=6),
    tokens=st.lists(st.tuples(st.integers(-24 * 60, 24 * 400), maybe_ages), max_size=6),
    batch=st.integers(min_value=1, max_value=4),
    webhook_days=st.integers(min_value=1, max_value=60),
    grace_days=st.integers(min_value=1, max_value=60),
)  # fmt: skip
async def test_a_sweep_deletes_exactly_what_each_rule_selects(
    app_instance, sync_engine, deliveries, keys, failures, tokens, batch, webhook_days, grace_days
):
    conf = Settings(
        retention_batch_size=batch,
        webhook_retention_days=webhook_days,
        auth_retention_days=grace_days,
    )
    with sync_engine.begin() as conn:  # each example starts from empty tables
        for model in (WebhookDelivery, IdempotencyKey, LoginFailure, RefreshToken):
            conn.execute(sa.delete(model.__table__))
    user = new_user(sync_engine)
    kept: dict[str, set[Any]] = {}
    rows = [delivery(user, status, NOW - age * HOUR) for status, age in deliveries]
    insert(sync_engine, WebhookDelivery.__table__, rows)
    webhook_cutoff = NOW - dt.timedelta(days=webhook_days)
    kept["webhook_deliveries"] = {
        row["id"]
        for row in rows
        if row["status"] == "pending" or row["next_attempt_at"] >= webhook_cutoff
    }
    rows = [
        {"id": uuid.uuid4(), "user_id": user, "key": str(uuid.uuid4()), "fingerprint": "f" * 64,
         "status_code": 201, "created_at": NOW - age * HOUR}
        for age in keys
    ]  # fmt: skip
    insert(sync_engine, IdempotencyKey.__table__, rows)
    ttl = dt.timedelta(hours=conf.idempotency_ttl_hours)
    kept["idempotency_keys"] = {row["id"] for row in rows if row["created_at"] >= NOW - ttl}
    rows = [
        {"id": n + 1, "email_key": "p@example.com", "address": "192.0.2.1",
         "at": NOW - age * HOUR}
        for n, age in enumerate(failures)
    ]  # fmt: skip
    insert(sync_engine, LoginFailure.__table__, rows)
    window = dt.timedelta(seconds=conf.login_window_seconds)
    kept["login_failures"] = {row["id"] for row in rows if row["at"] >= NOW - window}
    rows = [
        {"id": uuid.uuid4(), "family_id": uuid.uuid4(), "user_id": user,
         "token_hash": uuid.uuid4().hex, "scope": "client", "created_at": NOW - 500 * 24 * HOUR,
         "expires_at": NOW - expires * HOUR,
         "revoked_at": None if revoked is None else NOW - revoked * HOUR}
        for expires, revoked in tokens
    ]  # fmt: skip
    insert(sync_engine, RefreshToken.__table__, rows)
    grace = NOW - dt.timedelta(days=grace_days)
    kept["refresh_tokens"] = {
        row["id"]
        for row in rows
        if row["expires_at"] >= grace and (row["revoked_at"] is None or row["revoked_at"] >= grace)
    }
    counts = await sweep_once(NOW, settings=conf)
    tables = {
        "webhook_deliveries": WebhookDelivery.__table__,
        "idempotency_keys": IdempotencyKey.__table__,
        "login_failures": LoginFailure.__table__,
        "refresh_tokens": RefreshToken.__table__,
    }
    for name, table in tables.items():
        assert remaining(sync_engine, table) == kept[name], name
    assert counts["webhook_deliveries"] == len(deliveries) - len(kept["webhook_deliveries"])
    assert counts["login_failures"] == len(failures) - len(kept["login_failures"])
    # a second sweep at the same moment finds nothing more
    again = await sweep_once(NOW, settings=conf)
    assert all(again[name] == 0 for name in tables)


async def test_two_server_workers_sweep_the_same_rows_once_each(app_instance, sync_engine, serve):
    """Real processes, real clock: rows written two days ago are past the login window."""
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    rows = [
        {"email_key": f"{n}@example.com", "address": "192.0.2.1", "at": old} for n in range(300)
    ]
    fresh = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)  # inside the window all test long
    rows += [{"email_key": "fresh@example.com", "address": "192.0.2.1", "at": fresh}] * 3
    insert(sync_engine, LoginFailure.__table__, rows)
    env = {**os.environ, "WAYPOINT_RETENTION_SWEEP_SECONDS": "0.3",
           "WAYPOINT_RETENTION_BATCH_SIZE": "7"}  # fmt: skip
    server = serve(env, workers=2, migrate=False)
    name = "waypoint_retention_deleted_total"
    # The sweeps run in the server's worker processes, on their own clock: their /metrics is
    # the only sign of them, so poll it, bounded by a deadline (a real wait, not a fake clock).
    deadline = time.monotonic() + 60
    deleted = swept_at = 0.0
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        while time.monotonic() < deadline:  # until both workers' sweeps are through
            text = (await http.get("/metrics")).text
            deleted = metric_value(text, name, table="login_failures")
            swept_at = metric_value(text, "waypoint_retention_last_sweep_timestamp_seconds")
            if deleted >= 300 and swept_at > 0:
                break
            await asyncio.sleep(0.2)  # between scrapes: the next sweep is 0.3 s away
    assert deleted == 300  # every row once, over both workers' sweeps
    assert len(remaining(sync_engine, LoginFailure.__table__)) == 3
    assert swept_at > 0
