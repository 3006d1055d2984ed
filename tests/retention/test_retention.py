"""The retention sweep (docs/retention.md): each rule deletes what it says and keeps the rest,
as of a fake ``now`` (no sleeps), in batches, safely from two sweeps at once; its work shows
in /metrics; its settings are validated."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from app.core.config import Settings, describe_settings_error, get_settings
from app.models import (
    AccountRequest,
    AccountToken,
    AuthSession,
    CareInvite,
    IdempotencyKey,
    LoginFailure,
    MailMessage,
    PersonalAccessToken,
    RefreshToken,
    WebhookDelivery,
    metadata,
)
from app.retention import service
from app.retention.rules import KEPT, RULES
from app.retention.service import sweep_once
from app.retention.worker import sweep_retention
from tests.support.retention import (
    DAY,
    NOW,
    ago,
    delivery,
    insert,
    metric_value,
    new_user,
    remaining,
)

MINUTE = dt.timedelta(minutes=1)


async def test_answered_webhook_deliveries_go_after_the_retention_days(app_instance, sync_engine):
    user = new_user(sync_engine)
    table = WebhookDelivery.__table__
    rows = {
        "old delivered": delivery(user, "delivered", ago(31 * DAY)),
        "old failed": delivery(user, "failed", ago(31 * DAY)),
        "recent delivered": delivery(user, "delivered", ago(29 * DAY)),
        "recent failed": delivery(user, "failed", ago(29 * DAY)),
        # pending: still to be attempted, however old (never lost to retention)
        "old pending": delivery(user, "pending", ago(300 * DAY)),
    }
    insert(sync_engine, table, list(rows.values()))
    counts = await sweep_once(NOW)
    assert counts["webhook_deliveries"] == 2
    kept = {name for name, row in rows.items() if row["id"] in remaining(sync_engine, table)}
    assert kept == {"recent delivered", "recent failed", "old pending"}
    # the setting moves the line
    assert (await sweep_once(NOW, settings=Settings(webhook_retention_days=28)))[
        "webhook_deliveries"
    ] == 2
    assert remaining(sync_engine, table) == {rows["old pending"]["id"]}


async def test_sent_or_given_up_mail_goes_after_the_retention_days(app_instance, sync_engine):
    user = new_user(sync_engine)
    table = MailMessage.__table__

    def message(status: str, last_attempt: dt.datetime) -> dict[str, Any]:
        return {"id": uuid.uuid4(), "user_id": user, "template": "verify_email",
                "message_id": f"<{uuid.uuid4()}@example.com>", "sender": "w@example.com",
                "recipient": "p@example.com", "subject": "Hello", "status": status,
                "attempts": 1, "next_attempt_at": last_attempt,
                "created_at": last_attempt}  # fmt: skip

    rows = {
        "old sent": message("sent", ago(31 * DAY)),
        "old failed": message("failed", ago(31 * DAY)),
        "recent sent": message("sent", ago(29 * DAY)),
        "old pending": message("pending", ago(300 * DAY)),  # still to be sent: never deleted
    }
    insert(sync_engine, table, list(rows.values()))
    assert (await sweep_once(NOW))["mail_messages"] == 2
    kept = {name for name, row in rows.items() if row["id"] in remaining(sync_engine, table)}
    assert kept == {"recent sent", "old pending"}


async def test_account_link_requests_and_links_go_once_spent(app_instance, sync_engine):
    user = new_user(sync_engine)
    grace = dt.timedelta(days=get_settings().auth_retention_days)
    requests, links = AccountRequest.__table__, AccountToken.__table__
    insert(sync_engine, requests, [
        {"id": 1, "kind": "password_reset", "key": "p@example.com", "at": ago(61 * MINUTE)},
        {"id": 2, "kind": "password_reset", "key": "p@example.com", "at": ago(59 * MINUTE)},
    ])  # fmt: skip

    def link(expires_at: dt.datetime, used_at: dt.datetime | None = None) -> dict[str, Any]:
        return {"id": uuid.uuid4(), "user_id": user, "kind": "password_reset",
                "token_hash": uuid.uuid4().hex, "email": "p@example.com",
                "created_at": expires_at - DAY, "expires_at": expires_at,
                "used_at": used_at}  # fmt: skip

    old = [link(ago(grace + DAY)), link(ago(grace + DAY), used_at=ago(grace + 2 * DAY))]
    new = [link(ago(grace - DAY)), link(NOW + DAY)]
    insert(sync_engine, links, old + new)
    counts = await sweep_once(NOW)
    assert counts["account_requests"] == 1 and counts["account_tokens"] == 2
    assert remaining(sync_engine, requests) == {2}
    assert remaining(sync_engine, links) == {row["id"] for row in new}


async def test_idempotency_keys_go_once_expired(app_instance, sync_engine):
    user = new_user(sync_engine)
    table = IdempotencyKey.__table__
    ttl = dt.timedelta(hours=get_settings().idempotency_ttl_hours)

    def key(created_at: dt.datetime) -> dict[str, Any]:
        return {"id": uuid.uuid4(), "user_id": user, "key": str(uuid.uuid4()),
                "fingerprint": "f" * 64, "status_code": 201, "created_at": created_at}  # fmt: skip

    expired = key(ago(ttl + dt.timedelta(seconds=1)))
    fresh = key(ago(ttl - dt.timedelta(minutes=1)))
    insert(sync_engine, table, [expired, fresh])
    assert (await sweep_once(NOW))["idempotency_keys"] == 1
    assert remaining(sync_engine, table) == {fresh["id"]}


async def test_login_failures_go_once_outside_their_window(app_instance, sync_engine):
    table = LoginFailure.__table__
    window = dt.timedelta(seconds=get_settings().login_window_seconds)
    insert(sync_engine, table, [
        {"email_key": "a@example.com", "address": "192.0.2.1", "at": ago(window + DAY)},
        {"email_key": "a@example.com", "address": "192.0.2.1", "at": ago(window * 2)},
        {"email_key": "a@example.com", "address": "192.0.2.1", "at": ago(window / 2)},
    ])  # fmt: skip
    assert (await sweep_once(NOW))["login_failures"] == 2
    with sync_engine.connect() as conn:
        ats = list(conn.execute(sa.select(table.c.at)).scalars())
    assert [at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at for at in ats] == [
        ago(window / 2)
    ]


async def test_refresh_tokens_and_sessions_go_past_the_grace_period(app_instance, sync_engine):
    user = new_user(sync_engine)
    grace = dt.timedelta(days=get_settings().auth_retention_days)
    tokens, sessions = RefreshToken.__table__, AuthSession.__table__

    def token(family: uuid.UUID, expires_at: dt.datetime, **more: Any) -> dict[str, Any]:
        values = {"id": uuid.uuid4(), "family_id": family, "user_id": user,
                  "token_hash": uuid.uuid4().hex, "scope": "client", "created_at": ago(90 * DAY),
                  "expires_at": expires_at, "used_at": None, "revoked_at": None}  # fmt: skip
        return {**values, **more}

    live, expired_family, revoked_family, fresh = (uuid.uuid4() for _ in range(4))
    kept_tokens = [
        token(live, NOW + DAY, used_at=ago(DAY)),  # rotated, still kept to catch its reuse
        token(live, NOW + DAY),
        token(expired_family, ago(grace - DAY)),  # expired, inside the grace period
        token(revoked_family, NOW + DAY, revoked_at=ago(grace - DAY)),
    ]
    gone_tokens = [
        token(expired_family, ago(grace + DAY)),
        token(revoked_family, NOW + DAY, revoked_at=ago(grace + DAY)),
    ]
    insert(sync_engine, tokens, kept_tokens + gone_tokens)
    gone_session_ids = [uuid.uuid4(), uuid.uuid4()]
    insert(sync_engine, sessions, [
        {"id": live, "user_id": user, "created_at": ago(90 * DAY), "revoked_at": None},
        {"id": expired_family, "user_id": user, "created_at": ago(90 * DAY), "revoked_at": None},
        {"id": revoked_family, "user_id": user, "created_at": ago(90 * DAY),
         "revoked_at": ago(grace - DAY)},
        {"id": fresh, "user_id": user, "created_at": ago(grace - DAY), "revoked_at": None},
        # revoked long ago; and old with none of its tokens left
        {"id": gone_session_ids[0], "user_id": user, "created_at": ago(90 * DAY),
         "revoked_at": ago(grace + DAY)},
        {"id": gone_session_ids[1], "user_id": user, "created_at": ago(grace + DAY),
         "revoked_at": None},
    ])  # fmt: skip
    counts = await sweep_once(NOW)
    assert counts["refresh_tokens"] == 2 and counts["auth_sessions"] == 2
    assert remaining(sync_engine, tokens) == {row["id"] for row in kept_tokens}
    assert remaining(sync_engine, sessions) == {live, expired_family, revoked_family, fresh}
    # Two days on: the tokens that were inside the grace period are past it, and the sessions
    # left with no token (or revoked as long ago) go too; the live login stays.
    counts = await sweep_once(NOW + 2 * DAY)
    assert counts["refresh_tokens"] == 2 and counts["auth_sessions"] == 3
    assert remaining(sync_engine, sessions) == {live}


async def test_care_invites_and_personal_tokens_go_past_the_grace_period(app_instance, sync_engine):
    therapist = new_user(sync_engine, "therapist")
    grace = dt.timedelta(days=get_settings().auth_retention_days)
    invites, personal = CareInvite.__table__, PersonalAccessToken.__table__

    def invite(expires_at: dt.datetime, used_at: dt.datetime | None = None) -> dict[str, Any]:
        return {"id": uuid.uuid4(), "therapist_id": therapist, "code_hash": uuid.uuid4().hex,
                "created_at": expires_at - 7 * DAY, "expires_at": expires_at,
                "used_at": used_at}  # fmt: skip

    def pat(expires_at: dt.datetime | None, revoked_at: dt.datetime | None) -> dict[str, Any]:
        return {"id": uuid.uuid4(), "user_id": therapist, "name": "script", "scope": "therapist",
                "token_hash": uuid.uuid4().hex, "created_at": ago(400 * DAY),
                "expires_at": expires_at, "revoked_at": revoked_at,
                "last_used_at": None}  # fmt: skip

    old_invites = [invite(ago(grace + DAY)), invite(ago(grace + DAY), used_at=ago(grace + 3 * DAY))]
    new_invites = [invite(ago(grace - DAY)), invite(NOW + DAY)]
    insert(sync_engine, invites, old_invites + new_invites)
    old_pats = [pat(ago(grace + DAY), None), pat(None, ago(grace + DAY))]
    new_pats = [pat(None, None), pat(ago(grace - DAY), None), pat(NOW + DAY, ago(grace - DAY))]
    insert(sync_engine, personal, old_pats + new_pats)
    counts = await sweep_once(NOW)
    assert counts["care_invites"] == 2 and counts["personal_access_tokens"] == 2
    assert remaining(sync_engine, invites) == {row["id"] for row in new_invites}
    assert remaining(sync_engine, personal) == {row["id"] for row in new_pats}


async def test_a_sweep_deletes_in_batches_of_the_configured_size(
    app_instance, sync_engine, monkeypatch
):
    table = LoginFailure.__table__
    insert(sync_engine, table, [
        {"email_key": f"{n}@example.com", "address": "192.0.2.1", "at": ago(DAY)}
        for n in range(23)
    ])  # fmt: skip
    sizes: list[int] = []
    delete_batch = service.repository.delete_batch

    async def counted(session, rule, expired, limit):  # noqa: ANN001, ANN202
        rows = await delete_batch(session, rule, expired, limit)
        if rule.name == "login_failures":
            sizes.append(len(rows))
        return rows

    monkeypatch.setattr(service.repository, "delete_batch", counted)
    counts = await sweep_once(NOW, settings=Settings(retention_batch_size=5))
    assert counts["login_failures"] == 23
    assert sizes == [5, 5, 5, 5, 3]
    assert remaining(sync_engine, table) == set()


async def test_two_sweeps_at_once_delete_every_row_exactly_once(app_instance, sync_engine):
    table = LoginFailure.__table__
    insert(sync_engine, table, [
        {"email_key": f"{n}@example.com", "address": "192.0.2.1", "at": ago(DAY)}
        for n in range(120)
    ])  # fmt: skip
    settings = Settings(retention_batch_size=7)
    first, second = await asyncio.gather(
        sweep_once(NOW, settings=settings), sweep_once(NOW, settings=settings)
    )
    assert first["login_failures"] + second["login_failures"] == 120
    assert remaining(sync_engine, table) == set()


async def test_metrics_count_the_rows_deleted_per_table(app_instance, client, sync_engine):
    before = (await client.get("/metrics")).text
    insert(sync_engine, LoginFailure.__table__, [
        {"email_key": "m@example.com", "address": "192.0.2.1", "at": ago(DAY)} for _ in range(4)
    ])  # fmt: skip
    await sweep_once(NOW)
    after = (await client.get("/metrics")).text
    name = "waypoint_retention_deleted_total"
    deleted = metric_value(after, name, table="login_failures")
    assert deleted - metric_value(before, name, table="login_failures") == 4
    swept_at = metric_value(after, "waypoint_retention_last_sweep_timestamp_seconds")
    assert swept_at >= NOW.timestamp()


async def test_the_worker_sweeps_until_stopped(app_instance, sync_engine, monkeypatch):
    insert(sync_engine, LoginFailure.__table__, [
        {"email_key": "w@example.com", "address": "192.0.2.1",
         "at": dt.datetime.now(dt.UTC) - 2 * DAY}
    ])  # fmt: skip
    monkeypatch.setattr("app.retention.worker.random.uniform", lambda a, b: 0.0)
    swept = asyncio.Event()
    real = service.sweep_once

    async def observed(now, **kwargs):  # noqa: ANN001, ANN003, ANN202
        counts = await real(now, **kwargs)
        swept.set()
        return counts

    monkeypatch.setattr("app.retention.worker.sweep_once", observed)
    stop = asyncio.Event()
    task = asyncio.create_task(sweep_retention(stop))
    await asyncio.wait_for(swept.wait(), timeout=30)  # the first sweep, at once
    stop.set()
    await asyncio.wait_for(task, timeout=5)  # returns soon after stop, mid-interval
    assert remaining(sync_engine, LoginFailure.__table__) == set()


def test_every_table_has_a_rule_or_a_reason_to_keep_its_rows():
    ruled = {rule.name for rule in RULES}
    assert set(metadata.tables) == ruled | set(KEPT), "a table needs a rule or a KEPT reason"
    assert not ruled & set(KEPT)
    for rule in RULES:
        assert rule.setting is None or rule.setting in Settings.model_fields, rule


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("sync_retention_days", "7"),
        ("sync_retention_days", "0"),
        ("webhook_retention_days", "0"),
        ("auth_retention_days", "-1"),
        ("retention_batch_size", "0"),
        ("retention_batch_size", "100000"),
        ("retention_sweep_seconds", "0"),
        ("idempotency_ttl_hours", "0"),
    ],
)
def test_retention_settings_are_validated(monkeypatch, name, bad):
    from pydantic import ValidationError

    monkeypatch.setenv(f"WAYPOINT_{name.upper()}", bad)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert describe_settings_error(caught.value).startswith(f"WAYPOINT_{name.upper()}: ")
