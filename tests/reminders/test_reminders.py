"""The reminder scheduler with a fake clock: local reminder hours across timezones and DST
changes (Europe/Berlin and America/New_York in 2027), one reminder per due date, goals due
together sharing one notification, and settings or timezone changes moving the next one."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from app.reminders.runner import run_once
from app.reviews import due
from app.wiring import BEFORE_COMMIT
from tests.support.worlds import link, new_goal, set_due

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


def freeze(monkeypatch, when: dt.datetime) -> None:
    monkeypatch.setattr(due, "now", lambda: when)


async def reviewed_goal(client, monkeypatch, actor, when: str, every: int = 7, **fields) -> dict:
    """A goal reviewed at ``when`` (so its next review is due ``every`` days later, in the
    client's own calendar); the goal's document after the review."""
    goal = await new_goal(client, actor, review_every_days=every, **fields)
    freeze(monkeypatch, at(when))
    r = await client.post(
        f"/v1/goals/{goal['id']}/reviews", json={"rating": 7, "gas_score": 0}, headers=actor.headers
    )
    assert r.status_code == 201, r.text
    return (await client.get(f"/v1/goals/{goal['id']}", headers=actor.headers)).json()


async def feed(client, actor, **params) -> list[dict]:
    r = await client.get("/v1/notifications", params=params, headers=actor.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def set_hour(client, actor, hour: int) -> None:
    r = await client.patch(
        "/v1/me/notification-settings", json={"reminder_hour": hour}, headers=actor.headers
    )
    assert r.status_code == 200, r.text


async def test_spring_forward_gap_fires_at_the_next_valid_time(client, make_user, monkeypatch):
    # Berlin, 2027-03-28: 02:00 CET jumps to 03:00 CEST; 02:00 does not exist that day.
    patient = await make_user("client", timezone="Europe/Berlin")
    await set_hour(client, patient, 2)
    goal = await reviewed_goal(client, monkeypatch, patient, "2027-03-21T10:00:00Z")
    assert goal["next_review_due"] == "2027-03-28"
    assert (
        await run_once(at("2027-03-28T00:59:59Z"), BEFORE_COMMIT)
    ).review_due == 0  # 01:59:59 CET
    result = await run_once(
        at("2027-03-28T01:00:00Z"), BEFORE_COMMIT
    )  # 03:00 CEST, the first valid time
    assert result.summary() == "reminders: 1 review_due, 0 goal_lagging"
    (note,) = await feed(client, patient)
    assert note["kind"] == "review_due"
    assert note["goal_ids"] == [goal["id"]]
    assert note["client"] == {"id": patient.id, "display_name": patient.display_name}
    assert note["created_at"] == "2027-03-28T01:00:00Z"
    assert "Walk" not in note["title"] + note["body"]  # no goal text in the feed
    # Once per due date, whatever runs later.
    assert (await run_once(at("2027-03-29T12:00:00Z"), BEFORE_COMMIT)).review_due == 0
    assert len(await feed(client, patient)) == 1


async def test_new_york_spring_forward(client, make_user, monkeypatch):
    # New York, 2027-03-14: 02:00 EST jumps to 03:00 EDT.
    patient = await make_user("client", timezone="America/New_York")
    await set_hour(client, patient, 2)
    await reviewed_goal(client, monkeypatch, patient, "2027-03-07T15:00:00Z")
    assert (await run_once(at("2027-03-14T06:59:00Z"), BEFORE_COMMIT)).review_due == 0  # 01:59 EST
    assert (await run_once(at("2027-03-14T07:00:00Z"), BEFORE_COMMIT)).review_due == 1  # 03:00 EDT


@pytest.mark.parametrize(
    ("zone", "hour", "reviewed", "first", "second"),
    [
        # New York, 2027-11-07: 01:00-02:00 happens twice (EDT, then EST).
        ("America/New_York", 1, "2027-10-31T15:00:00Z", "2027-11-07T05:00:00Z",
         "2027-11-07T06:00:00Z"),
        # Berlin, 2027-10-31: 02:00-03:00 happens twice (CEST, then CET).
        ("Europe/Berlin", 2, "2027-10-24T10:00:00Z", "2027-10-31T00:00:00Z",
         "2027-10-31T01:00:00Z"),
    ],
)  # fmt: skip
async def test_a_repeated_hour_fires_once_at_its_first_occurrence(
    client, make_user, monkeypatch, zone, hour, reviewed, first, second
):
    patient = await make_user("client", timezone=zone)
    await set_hour(client, patient, hour)
    await reviewed_goal(client, monkeypatch, patient, reviewed)
    before = at(first) - dt.timedelta(seconds=1)
    assert (await run_once(before, BEFORE_COMMIT)).review_due == 0
    assert (await run_once(at(first), BEFORE_COMMIT)).review_due == 1
    assert (await run_once(at(second), BEFORE_COMMIT)).review_due == 0
    assert len(await feed(client, patient)) == 1


async def test_each_client_is_reminded_at_their_own_local_hour(client, make_user, monkeypatch):
    berlin = await make_user("client", timezone="Europe/Berlin")
    new_york = await make_user("client", timezone="America/New_York")
    await reviewed_goal(client, monkeypatch, berlin, "2027-06-01T12:00:00Z")
    await reviewed_goal(client, monkeypatch, new_york, "2027-06-01T12:00:00Z")
    # Both due on 2027-06-08 at 09:00 local: 07:00Z in Berlin (CEST), 13:00Z in New York (EDT).
    assert (await run_once(at("2027-06-08T06:59:00Z"), BEFORE_COMMIT)).review_due == 0
    assert (await run_once(at("2027-06-08T07:00:00Z"), BEFORE_COMMIT)).review_due == 1
    assert [n["kind"] for n in await feed(client, berlin)] == ["review_due"]
    assert await feed(client, new_york) == []
    assert (await run_once(at("2027-06-08T12:59:00Z"), BEFORE_COMMIT)).review_due == 0
    assert (await run_once(at("2027-06-08T13:00:00Z"), BEFORE_COMMIT)).review_due == 1
    assert len(await feed(client, new_york)) == 1


async def test_goals_due_together_share_one_notification(client, make_user, monkeypatch):
    patient = await make_user("client")
    one = await reviewed_goal(client, monkeypatch, patient, "2027-05-01T08:00:00Z")
    two = await reviewed_goal(client, monkeypatch, patient, "2027-05-01T08:00:00Z")
    # A goal already overdue joins them; a proposed or a later goal does not.
    overdue = await reviewed_goal(client, monkeypatch, patient, "2027-04-28T08:00:00Z")
    later = await reviewed_goal(client, monkeypatch, patient, "2027-05-03T08:00:00Z")
    result = await run_once(at("2027-05-08T09:00:00Z"), BEFORE_COMMIT)
    assert result.review_due == 1
    (note,) = await feed(client, patient)
    assert sorted(note["goal_ids"]) == sorted([one["id"], two["id"], overdue["id"]])
    assert "3 goals are due" in note["body"]
    result = await run_once(at("2027-05-10T09:00:00Z"), BEFORE_COMMIT)
    assert result.review_due == 1
    assert (await feed(client, patient))[0]["goal_ids"] == [later["id"]]


async def test_a_review_moves_the_due_date_and_the_next_reminder(client, make_user, monkeypatch):
    patient = await make_user("client")
    goal = await reviewed_goal(client, monkeypatch, patient, "2027-05-01T08:00:00Z")
    # Reviewed before its reminder: nothing for 2027-05-08; the new due date is reminded.
    freeze(monkeypatch, at("2027-05-07T20:00:00Z"))
    r = await client.post(
        f"/v1/goals/{goal['id']}/reviews", json={"rating": 8}, headers=patient.headers
    )
    assert r.status_code == 201
    assert (await run_once(at("2027-05-08T09:00:00Z"), BEFORE_COMMIT)).review_due == 0
    assert (await run_once(at("2027-05-14T09:00:00Z"), BEFORE_COMMIT)).review_due == 1
    # Not reviewed: reminded once for that date, not again the next days.
    assert (await run_once(at("2027-05-15T09:00:00Z"), BEFORE_COMMIT)).review_due == 0
    # Reviewed late: the new date is reminded in turn.
    freeze(monkeypatch, at("2027-05-16T10:00:00Z"))
    await client.post(
        f"/v1/goals/{goal['id']}/reviews", json={"rating": 8}, headers=patient.headers
    )
    assert (await run_once(at("2027-05-23T09:00:00Z"), BEFORE_COMMIT)).review_due == 1


async def test_only_active_goals_are_reminded(client, make_user, monkeypatch):
    patient = await make_user("client")
    goal = await reviewed_goal(client, monkeypatch, patient, "2027-05-01T08:00:00Z")
    r = await client.patch(
        f"/v1/goals/{goal['id']}", json={"status": "on_hold"}, headers=patient.headers
    )
    assert r.status_code == 200
    assert (await run_once(at("2027-05-08T09:00:00Z"), BEFORE_COMMIT)).review_due == 0
    r = await client.patch(
        f"/v1/goals/{goal['id']}", json={"status": "active"}, headers=patient.headers
    )
    assert (await run_once(at("2027-05-08T10:00:00Z"), BEFORE_COMMIT)).review_due == 1


async def test_settings_move_and_stop_reminders(client, make_user, monkeypatch):
    patient = await make_user("client", timezone="Europe/Berlin")
    await reviewed_goal(client, monkeypatch, patient, "2027-06-01T12:00:00Z")
    # From 09:00 to 07:00 local: 05:00Z (CEST) on the due date.
    await set_hour(client, patient, 7)
    assert (await run_once(at("2027-06-08T04:59:00Z"), BEFORE_COMMIT)).review_due == 0
    assert (await run_once(at("2027-06-08T05:00:00Z"), BEFORE_COMMIT)).review_due == 1
    other = await make_user("client", timezone="Europe/Berlin")
    await reviewed_goal(client, monkeypatch, other, "2027-06-01T12:00:00Z")
    r = await client.patch(
        "/v1/me/notification-settings", json={"review_reminders": False}, headers=other.headers
    )
    assert r.json()["review_reminders"] is False
    assert (await run_once(at("2027-06-09T12:00:00Z"), BEFORE_COMMIT)).review_due == 0
    assert await feed(client, other) == []
    # Turned back on: the goal still due is reminded at the next reminder hour.
    await client.patch(
        "/v1/me/notification-settings", json={"review_reminders": True}, headers=other.headers
    )
    assert (await run_once(at("2027-06-09T12:00:00Z"), BEFORE_COMMIT)).review_due == 1


async def test_a_timezone_change_moves_the_next_reminder(client, make_user, monkeypatch):
    patient = await make_user("client", timezone="UTC")
    await reviewed_goal(client, monkeypatch, patient, "2027-06-01T12:00:00Z")
    r = await client.patch(
        "/v1/me", json={"timezone": "Pacific/Kiritimati"}, headers=patient.headers
    )
    assert r.status_code == 200
    # 09:00 on 2027-06-08 at UTC+14 is 19:00Z on 2027-06-07.
    assert (await run_once(at("2027-06-07T18:59:00Z"), BEFORE_COMMIT)).review_due == 0
    assert (await run_once(at("2027-06-07T19:00:00Z"), BEFORE_COMMIT)).review_due == 1


async def test_the_review_due_webhook_event_goes_to_the_clients_own_webhooks(
    client, make_user, monkeypatch, sync_engine
):
    patient = await make_user("client")
    therapist = await make_user("therapist")
    await link(client, therapist, patient)
    for actor in (patient, therapist):
        r = await client.post(
            "/v1/webhooks",
            json={"url": "https://hooks.example.com/w", "events": ["review.due"]},
            headers=actor.headers,
        )
        assert r.status_code == 201, r.text
    goal = await reviewed_goal(client, monkeypatch, patient, "2027-05-01T08:00:00Z")
    await run_once(at("2027-05-08T09:00:00Z"), BEFORE_COMMIT)
    from app.webhooks.fanout import fan_out_all

    await fan_out_all()
    with sync_engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT user_id, body FROM webhook_deliveries WHERE event = 'review.due'")
        ).all()
    assert len(rows) == 1
    assert str(rows[0].user_id).replace("-", "") == patient.id.replace("-", "")
    body = json.loads(rows[0].body)
    assert body["type"] == "review.due"
    assert body["data"] == {
        "client_id": patient.id,
        "goals": [{"id": goal["id"], "next_review_due": "2027-05-08"}],
    }


async def test_the_scheduler_reads_only_the_clients_that_are_due(
    client, make_user, monkeypatch, sync_engine
):
    patients = [await make_user("client") for _ in range(3)]
    for n, patient in enumerate(patients):
        await reviewed_goal(client, monkeypatch, patient, f"2027-05-0{n + 1}T08:00:00Z")
    # The goals were created (real clock) before their reviews (fake clock): the instants
    # their creation stored are early; a first run finds nothing due and sets the real ones.
    assert (await run_once(at("2027-05-04T00:00:00Z"), BEFORE_COMMIT)).review_due == 0
    result = await run_once(at("2027-05-08T09:00:00Z"), BEFORE_COMMIT)
    assert (result.clients, result.review_due) == (1, 1)
    with sync_engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT next_at FROM reminder_schedules")).scalars().all()
    assert len(rows) == 3  # the two not due keep their instants; the reminded one moved on


async def test_a_goal_changed_behind_the_schedule_is_found_after_a_wake(
    client, make_user, monkeypatch, sync_engine
):
    """A goal whose due date moved earlier without a write the schedule saw (an operator's
    fix in the database) is found once anything recomputes the client's instant."""
    patient = await make_user("client")
    goal = await reviewed_goal(client, monkeypatch, patient, "2027-05-01T08:00:00Z")
    set_due(sync_engine, goal["id"], dt.date(2027, 5, 5))
    await set_hour(client, patient, 9)  # unchanged: no recompute
    await set_hour(client, patient, 8)  # changed: recomputed from the goals
    assert (await run_once(at("2027-05-05T08:00:00Z"), BEFORE_COMMIT)).review_due == 1
