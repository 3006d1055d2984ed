"""Notification settings and the in-app feed: who may call what, bad input, keyset pages,
`unread`, marking read, and the reminder e-mails' one-click unsubscribe."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from app.core.clock import utcnow
from app.models import Notification
from app.reminders.unsubscribe import unsubscribe_token
from tests.support.worlds import ANONYMOUS, assert_problem, make_world, scoped_headers

DEFAULTS = {
    "review_reminders": True,
    "reminder_hour": 9,
    "email": True,
    "include_goal_titles": False,
    "lagging_alerts": True,
}


def add_notifications(engine, user_id: str, client_id: str, count: int) -> list[str]:
    """``count`` notifications for ``user_id``, a second apart, oldest first."""
    start = utcnow() - dt.timedelta(hours=1)
    rows = [
        {
            "id": uuid.uuid4(),
            "user_id": uuid.UUID(user_id),
            "kind": "review_due",
            "client_id": uuid.UUID(client_id),
            "goal_ids": [],
            "title": f"n{i}",
            "body": "body",
            "created_at": start + dt.timedelta(seconds=i),
            "read_at": None,
        }
        for i in range(count)
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(Notification.__table__), rows)
    return [str(row["id"]) for row in rows]


async def test_settings_start_at_the_defaults_and_change(client, make_user):
    for role in ("client", "therapist"):
        actor = await make_user(role)
        r = await client.get("/v1/me/notification-settings", headers=actor.headers)
        assert r.status_code == 200 and r.json() == DEFAULTS
        r = await client.patch(
            "/v1/me/notification-settings",
            json={"reminder_hour": 0, "include_goal_titles": True},
            headers=actor.headers,
        )
        assert r.json() == {**DEFAULTS, "reminder_hour": 0, "include_goal_titles": True}
        r = await client.patch(
            "/v1/me/notification-settings", json={"email": False}, headers=actor.headers
        )
        expected = {**DEFAULTS, "reminder_hour": 0, "include_goal_titles": True, "email": False}
        assert r.json() == expected
        r = await client.get("/v1/me/notification-settings", headers=actor.headers)
        assert r.json() == expected


@pytest.mark.parametrize(
    "body",
    [
        {"reminder_hour": 24},
        {"reminder_hour": -1},
        {"reminder_hour": "9"},
        {"reminder_hour": None},
        {"email": None},
        {"email": "yes"},
        {"sms": True},
        {"user_id": str(uuid.uuid4())},
    ],
)
async def test_bad_settings_are_refused_and_change_nothing(client, make_user, body):
    patient = await make_user("client")
    r = await client.patch("/v1/me/notification-settings", json=body, headers=patient.headers)
    assert_problem(r, 422, "validation-error")
    r = await client.get("/v1/me/notification-settings", headers=patient.headers)
    assert r.json() == DEFAULTS


async def test_only_the_role_scope_is_needed_and_a_token_is(client, make_user):
    patient = await make_user("client")
    headers = await scoped_headers(client, patient, "client")
    assert (await client.get("/v1/me/notification-settings", headers=headers)).status_code == 200
    assert (await client.get("/v1/notifications", headers=headers)).status_code == 200
    for method, path in (
        ("GET", "/v1/me/notification-settings"),
        ("PATCH", "/v1/me/notification-settings"),
        ("GET", "/v1/notifications"),
        ("POST", f"/v1/notifications/{uuid.uuid4()}/read"),
    ):
        r = await client.request(method, path, json={} if method == "PATCH" else None)
        assert_problem(r, 401, "unauthorized")


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("owner", 200),
        ("therapist", 404),
        ("unlinked_therapist", 404),
        ("other_client", 404),
        ("anonymous", 401),
    ],
)
async def test_a_notification_is_its_recipients_only(client, make_user, sync_engine, who, status):
    world = await make_world(client, make_user)
    (note_id,) = add_notifications(sync_engine, world.owner.id, world.owner.id, 1)
    headers = world.headers_for(who) if who != "anonymous" else ANONYMOUS
    r = await client.post(f"/v1/notifications/{note_id}/read", headers=headers)
    assert r.status_code == status, r.text
    if status != 200:
        assert_problem(r, status)
        r = await client.get("/v1/notifications", headers=headers)
        if who != "anonymous":
            assert r.json()["items"] == []  # nobody else's feed holds it
    (listed,) = (await client.get("/v1/notifications", headers=world.owner.headers)).json()["items"]
    assert (listed["read_at"] is not None) == (status == 200)


async def test_the_therapists_notifications_are_theirs_only(client, make_user, sync_engine):
    world = await make_world(client, make_user)
    (note_id,) = add_notifications(sync_engine, world.therapist.id, world.owner.id, 1)
    r = await client.post(f"/v1/notifications/{note_id}/read", headers=world.owner.headers)
    assert_problem(r, 404, "not-found")
    r = await client.post(f"/v1/notifications/{note_id}/read", headers=world.therapist.headers)
    assert r.status_code == 200
    assert r.json()["client"]["id"] == world.owner.id


async def test_mark_read_is_idempotent_and_unknown_ids_are_404(client, make_user, sync_engine):
    patient = await make_user("client")
    (note_id,) = add_notifications(sync_engine, patient.id, patient.id, 1)
    first = await client.post(f"/v1/notifications/{note_id}/read", headers=patient.headers)
    again = await client.post(f"/v1/notifications/{note_id}/read", headers=patient.headers)
    assert first.json()["read_at"] == again.json()["read_at"] is not None
    for raw in (str(uuid.uuid4()), "not-an-id", "1"):
        r = await client.post(f"/v1/notifications/{raw}/read", headers=patient.headers)
        assert_problem(r, 404, "not-found")


async def test_the_feed_pages_newest_first_with_an_unread_filter(client, make_user, sync_engine):
    patient = await make_user("client")
    ids = add_notifications(sync_engine, patient.id, patient.id, 7)
    newest_first = list(reversed(ids))
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/notifications", params=params, headers=patient.headers)
        assert r.status_code == 200
        page = r.json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        assert ("link" in r.headers) == (cursor is not None)
        if cursor is None:
            break
    assert seen == newest_first
    for note_id in ids[:2]:
        await client.post(f"/v1/notifications/{note_id}/read", headers=patient.headers)
    unread = await client.get("/v1/notifications?unread=true", headers=patient.headers)
    assert [i["id"] for i in unread.json()["items"]] == newest_first[:5]
    read = await client.get("/v1/notifications?unread=false", headers=patient.headers)
    assert [i["id"] for i in read.json()["items"]] == newest_first[5:]


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=201", "limit=x", "unread=maybe", "cursor=%%%", "cursor=WzFd"]
)
async def test_bad_feed_queries_are_4xx(client, make_user, query):
    patient = await make_user("client")
    r = await client.get(f"/v1/notifications?{query}", headers=patient.headers)
    assert r.status_code in (400, 422), r.text
    assert_problem(r, r.status_code)


async def test_one_click_unsubscribe_turns_reminders_off(client, make_user):
    patient = await make_user("client")
    token = unsubscribe_token(uuid.UUID(patient.id))
    r = await client.post(
        f"/v1/notifications/unsubscribe/{token}",
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 204, r.text
    r = await client.get("/v1/me/notification-settings", headers=patient.headers)
    assert r.json() == {**DEFAULTS, "review_reminders": False}
    # Again: still fine (a mail client may retry).
    r = await client.post(f"/v1/notifications/unsubscribe/{token}")
    assert r.status_code == 204


async def test_unsubscribe_tokens_cannot_be_guessed_or_moved(client, make_user):
    patient = await make_user("client")
    other = await make_user("client")
    token = unsubscribe_token(uuid.UUID(patient.id))
    forged = uuid.UUID(other.id).hex + token[32:]  # another account's id with this MAC
    for bad in (forged, token[:-1] + ("A" if token[-1] != "A" else "B"), "x", token[:32], "-" * 40):
        r = await client.post(f"/v1/notifications/unsubscribe/{bad}")
        assert_problem(r, 400, "invalid-token")
    r = await client.post(f"/v1/notifications/unsubscribe/{'a' * 201}")
    assert_problem(r, 422)
    for actor in (patient, other):
        r = await client.get("/v1/me/notification-settings", headers=actor.headers)
        assert r.json() == DEFAULTS


async def test_the_retention_sweep_deletes_notifications_past_their_days(
    client, make_user, sync_engine
):
    from app.retention.service import sweep_once

    patient = await make_user("client")
    ids = add_notifications(sync_engine, patient.id, patient.id, 2)
    with sync_engine.begin() as conn:  # the first one is 181 days old
        conn.execute(
            sa.update(Notification.__table__)
            .where(Notification.__table__.c.id == uuid.UUID(ids[0]))
            .values(created_at=utcnow() - dt.timedelta(days=181))
        )
    counts = await sweep_once(utcnow())
    assert counts.get("notifications") == 1
    items = (await client.get("/v1/notifications", headers=patient.headers)).json()["items"]
    assert [item["id"] for item in items] == [ids[1]]
