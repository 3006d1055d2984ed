"""Lagging behind as the API shows it: the goal's `lagging`, alerts once per episode to the
client and linked therapists (shared goals only), in the review's own transaction or by the
scheduler for a missed cycle, the dashboard's `goals_lagging`, and privacy after a link ends."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from app.reminders.runner import run_once
from app.reviews import due
from app.wiring import BEFORE_COMMIT
from tests.support.worlds import link, new_goal

UTC = dt.UTC


def freeze(monkeypatch, when: str) -> None:
    at = dt.datetime.fromisoformat(when).astimezone(UTC)
    monkeypatch.setattr(due, "now", lambda: at)


async def review(client, actor, goal, rating: int, gas: int | None = None) -> None:
    body = {"rating": rating, **({"gas_score": gas} if gas is not None else {})}
    r = await client.post(f"/v1/goals/{goal['id']}/reviews", json=body, headers=actor.headers)
    assert r.status_code == 201, r.text


async def lagging(client, actor, goal) -> bool:
    r = await client.get(f"/v1/goals/{goal['id']}", headers=actor.headers)
    assert r.status_code == 200, r.text
    return r.json()["lagging"]


async def alerts(client, actor) -> list[dict]:
    r = await client.get("/v1/notifications", headers=actor.headers)
    assert r.status_code == 200, r.text
    return [n for n in r.json()["items"] if n["kind"] == "goal_lagging"]


async def linked_pair(client, make_user):
    patient = await make_user("client", name="Robin")
    therapist = await make_user("therapist")
    await link(client, therapist, patient)
    return patient, therapist


async def lagging_with_webhooks(client, make_user):
    """A linked pair, each with a webhook for ``goal.lagging``, and a shared goal that has
    just started lagging (two reviews below the expected outcome)."""
    patient, therapist = await linked_pair(client, make_user)
    for actor in (patient, therapist):
        r = await client.post(
            "/v1/webhooks",
            json={"url": "https://hooks.example.com/x", "events": ["goal.lagging"]},
            headers=actor.headers,
        )
        assert r.status_code == 201
    goal = await new_goal(client, patient)
    await review(client, patient, goal, 5, gas=-1)
    await review(client, patient, goal, 5, gas=-1)
    return patient, therapist, goal


async def test_two_reviews_below_the_expected_outcome_alert_once_per_episode(client, make_user):
    patient, therapist = await linked_pair(client, make_user)
    goal = await new_goal(client, patient, review_every_days=7)
    assert goal["lagging"] is False
    await review(client, patient, goal, 6, gas=-1)
    assert not await lagging(client, patient, goal)
    await review(client, therapist, goal, 6, gas=-2)
    # In the feed when the POST answers: written in the review's transaction.
    assert await lagging(client, patient, goal)
    (mine,) = await alerts(client, patient)
    (theirs,) = await alerts(client, therapist)
    assert mine["goal_ids"] == theirs["goal_ids"] == [goal["id"]]
    assert mine["client"]["display_name"] == theirs["client"]["display_name"] == "Robin"
    assert "charge back in" in mine["body"]  # encouragement, not a verdict
    assert "Robin" in theirs["body"] and "Walk" not in theirs["body"]
    # Still lagging: no second alert.
    await review(client, patient, goal, 6, gas=-1)
    assert len(await alerts(client, patient)) == 1
    # It stops lagging, then starts again: a new episode, a new alert.
    await review(client, patient, goal, 7, gas=0)
    assert not await lagging(client, patient, goal)
    await review(client, patient, goal, 7, gas=-1)
    await review(client, patient, goal, 7, gas=-1)
    assert len(await alerts(client, patient)) == 2
    assert len(await alerts(client, therapist)) == 2


async def test_a_rating_drop_lags_and_a_private_goal_alerts_only_its_client(client, make_user):
    patient, therapist = await linked_pair(client, make_user)
    goal = await new_goal(client, patient, visibility="private")
    for rating in (5, 8, 6):
        await review(client, patient, goal, rating)
    assert not await lagging(client, patient, goal)
    await review(client, patient, goal, 5)  # 3 below the best (8) of the three before
    assert await lagging(client, patient, goal)
    assert len(await alerts(client, patient)) == 1
    assert await alerts(client, therapist) == []


async def test_lagging_alerts_off_means_no_alert_for_that_account(client, make_user):
    patient, therapist = await linked_pair(client, make_user)
    r = await client.patch(
        "/v1/me/notification-settings", json={"lagging_alerts": False}, headers=patient.headers
    )
    assert r.status_code == 200
    goal = await new_goal(client, patient)
    await review(client, patient, goal, 5, gas=-1)
    await review(client, patient, goal, 5, gas=-1)
    assert await lagging(client, patient, goal)  # the document says so whatever the setting
    assert await alerts(client, patient) == []
    assert len(await alerts(client, therapist)) == 1


async def test_a_missed_cycle_is_judged_by_the_scheduler_at_the_reminder_hour(
    client, make_user, monkeypatch, sync_engine
):
    patient, therapist = await linked_pair(client, make_user)
    r = await client.patch(
        "/v1/me/notification-settings", json={"review_reminders": False}, headers=patient.headers
    )
    goal = await new_goal(client, patient, review_every_days=7)
    freeze(monkeypatch, "2027-05-01T08:00:00Z")
    await review(client, patient, goal, 7, gas=0)  # due 2027-05-08; a cycle missed on the 16th
    assert (
        await run_once(dt.datetime(2027, 5, 15, 9, tzinfo=UTC), BEFORE_COMMIT)
    ).goal_lagging == 0
    assert (
        await run_once(dt.datetime(2027, 5, 16, 8, 59, tzinfo=UTC), BEFORE_COMMIT)
    ).goal_lagging == 0
    result = await run_once(dt.datetime(2027, 5, 16, 9, tzinfo=UTC), BEFORE_COMMIT)
    assert result.summary() == "reminders: 0 review_due, 2 goal_lagging"
    assert await lagging(client, patient, goal)
    assert len(await alerts(client, therapist)) == 1
    r = await client.get("/v1/clients", headers=therapist.headers)
    assert r.json()["items"][0]["goals_lagging"] == 1
    # The sync feed carries the changed document.
    r = await client.get("/v1/sync", headers=therapist.headers)
    docs = [c["data"] for c in r.json()["changes"] if c["type"] == "goal" and c["data"]]
    assert docs[-1]["lagging"] is True
    assert (
        await run_once(dt.datetime(2027, 5, 20, 9, tzinfo=UTC), BEFORE_COMMIT)
    ).goal_lagging == 0
    # A review judges again: the cycle is no longer missed.
    freeze(monkeypatch, "2027-05-20T10:00:00Z")
    await review(client, patient, goal, 7, gas=1)
    assert not await lagging(client, patient, goal)
    r = await client.get("/v1/clients", headers=therapist.headers)
    assert r.json()["items"][0]["goals_lagging"] == 0


async def test_after_a_link_ends_the_therapist_keeps_the_alert_but_not_the_goal(
    client, make_user, sync_engine
):
    patient, therapist = await linked_pair(client, make_user)
    r = await client.post(
        "/v1/webhooks",
        json={"url": "https://hooks.example.com/t", "events": ["goal.lagging"]},
        headers=therapist.headers,
    )
    assert r.status_code == 201
    goal = await new_goal(client, patient)
    await review(client, patient, goal, 5, gas=-1)
    await review(client, patient, goal, 5, gas=-1)
    from app.webhooks.fanout import fan_out_all

    await fan_out_all()
    pending = sa.text(
        "SELECT count(*) FROM webhook_deliveries WHERE event = 'goal.lagging' "
        "AND status = 'pending'"
    )
    with sync_engine.connect() as conn:
        assert conn.execute(pending).scalar_one() == 1
    (link_doc,) = (await client.get("/v1/care-links", headers=patient.headers)).json()["items"]
    r = await client.delete(f"/v1/care-links/{link_doc['id']}", headers=patient.headers)
    assert r.status_code == 204
    (alert,) = await alerts(client, therapist)  # delivered notifications stay
    r = await client.get(f"/v1/goals/{alert['goal_ids'][0]}", headers=therapist.headers)
    assert r.status_code == 404
    with sync_engine.connect() as conn:  # the alert not yet delivered does not go out
        assert conn.execute(pending).scalar_one() == 0
    # New episodes reach only the client.
    await review(client, patient, goal, 7, gas=0)
    await review(client, patient, goal, 5, gas=-1)
    await review(client, patient, goal, 5, gas=-1)
    assert len(await alerts(client, therapist)) == 1
    assert len(await alerts(client, patient)) == 2


async def test_a_goal_turning_private_or_deleted_withdraws_pending_alerts(
    client, make_user, sync_engine
):
    patient, therapist, goal = await lagging_with_webhooks(client, make_user)
    from app.webhooks.fanout import fan_out_all

    await fan_out_all()
    query = sa.text(
        "SELECT user_id FROM webhook_deliveries WHERE event = 'goal.lagging' AND status = 'pending'"
    )
    with sync_engine.connect() as conn:
        assert len(conn.execute(query).all()) == 2
    r = await client.patch(
        f"/v1/goals/{goal['id']}", json={"visibility": "private"}, headers=patient.headers
    )
    assert r.status_code == 200
    with sync_engine.connect() as conn:
        (owner,) = conn.execute(query).scalars().all()
    assert str(owner).replace("-", "") == patient.id.replace("-", "")
    r = await client.delete(f"/v1/goals/{goal['id']}", headers=patient.headers)
    assert r.status_code == 204
    with sync_engine.connect() as conn:
        assert conn.execute(query).all() == []


@pytest.mark.parametrize("then", ["link ends", "goal turns private", "goal deleted"])
async def test_an_alert_not_fanned_out_yet_reaches_only_who_can_still_see_the_goal(
    client, make_user, sync_engine, then
):
    """The lagging event is still in the outbox (not fanned out to deliveries) when the
    therapist loses sight of the goal: the fan-out leaves them out."""
    from app.webhooks.fanout import fan_out_all

    patient, therapist, goal = await lagging_with_webhooks(client, make_user)
    with sync_engine.connect() as conn:
        waiting = "SELECT count(*) FROM webhook_events WHERE event = 'goal.lagging'"
        assert conn.execute(sa.text(waiting)).scalar_one() == 1
    if then == "link ends":
        (doc,) = (await client.get("/v1/care-links", headers=patient.headers)).json()["items"]
        r = await client.delete(f"/v1/care-links/{doc['id']}", headers=patient.headers)
    elif then == "goal turns private":
        r = await client.patch(
            f"/v1/goals/{goal['id']}", json={"visibility": "private"}, headers=patient.headers
        )
    else:
        r = await client.delete(f"/v1/goals/{goal['id']}", headers=patient.headers)
    assert r.status_code in (200, 204), r.text
    await fan_out_all()
    with sync_engine.connect() as conn:
        owners = conn.execute(
            sa.text("SELECT user_id FROM webhook_deliveries WHERE event = 'goal.lagging'")
        ).scalars()
        heard = sorted(str(owner).replace("-", "") for owner in owners)
    client_only = [patient.id.replace("-", "")]
    assert heard == ([] if then == "goal deleted" else client_only)


async def test_erasing_the_client_keeps_the_alerts_but_not_their_name(
    client, make_user, sync_engine
):
    patient, therapist = await linked_pair(client, make_user)
    goal = await new_goal(client, patient)
    await review(client, patient, goal, 5, gas=-1)
    await review(client, patient, goal, 5, gas=-1)
    (before,) = await alerts(client, therapist)
    assert before["client"]["display_name"] == "Robin" and "Robin" in before["body"]
    assert len(await alerts(client, patient)) == 1
    r = await client.delete("/v1/me", headers=patient.headers)
    assert r.status_code == 204
    (after,) = await alerts(client, therapist)  # delivered notifications stay
    assert after["id"] == before["id"] and after["client"]["id"] == before["client"]["id"]
    assert after["client"]["display_name"] == "Former client"
    assert "Robin" not in after["body"] and "a former client" in after["body"]
    r = await client.get(f"/v1/goals/{goal['id']}", headers=therapist.headers)
    assert r.status_code == 404
    r = await client.post(f"/v1/notifications/{after['id']}/read", headers=therapist.headers)
    assert r.status_code == 200 and r.json()["read_at"] is not None
    with sync_engine.connect() as conn:  # the client's own notifications went with them
        mine = sa.text("SELECT count(*) FROM notifications WHERE user_id = :u")
        user = patient.id if "postgres" in str(sync_engine.url) else patient.id.replace("-", "")
        assert conn.execute(mine, {"u": user}).scalar_one() == 0
