"""Reminders and lagging alerts by e-mail: only to a verified address with `email` on, no goal
text unless chosen, the link to the app's due reviews, and the one-click unsubscribe of
RFC 8058 whose POST (no login) turns review reminders off."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from urllib.parse import urlsplit

import sqlalchemy as sa

from app.core.config import get_settings
from app.reminders.runner import run_once
from app.reviews import due
from app.wiring import BEFORE_COMMIT
from tests.support.worlds import link, new_goal

UTC = dt.UTC
DUE_AT = dt.datetime(2027, 5, 8, 9, tzinfo=UTC)


def verify(engine, *actors) -> None:
    with engine.begin() as conn:
        for actor in actors:
            conn.execute(
                sa.text("UPDATE users SET email_verified = :yes WHERE id = :id"),
                {"yes": True, "id": uuid.UUID(actor.id).hex
                 if engine.dialect.name == "sqlite" else uuid.UUID(actor.id)},
            )  # fmt: skip


def queued(engine, template: str) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT recipient, subject, text_body, headers, user_id FROM mail_messages "
                "WHERE template = :t ORDER BY created_at"
            ),
            {"t": template},
        ).all()
    return [
        {
            "to": r.recipient,
            "subject": r.subject,
            "text": r.text_body,
            "headers": json.loads(r.headers or "{}"),
            "about": str(r.user_id).replace("-", ""),
        }
        for r in rows
    ]


async def due_goals(client, monkeypatch, patient, titles: list[str]) -> None:
    monkeypatch.setattr(due, "now", lambda: dt.datetime(2027, 5, 1, 8, tzinfo=UTC))
    for title in titles:
        goal = await new_goal(client, patient, title=title, review_every_days=7)
        r = await client.post(
            f"/v1/goals/{goal['id']}/reviews", json={"rating": 7}, headers=patient.headers
        )
        assert r.status_code == 201


async def test_the_reminder_mail_says_how_many_and_unsubscribes_in_one_click(
    client, make_user, monkeypatch, sync_engine
):
    patient = await make_user("client")
    verify(sync_engine, patient)
    await due_goals(client, monkeypatch, patient, ["Sleep by eleven", "Walk to the park"])
    assert (await run_once(DUE_AT, BEFORE_COMMIT)).review_due == 1
    (mail,) = queued(sync_engine, "review_due")
    assert mail["to"] == patient.email
    assert "2 goals are due for a review" in mail["text"]
    assert "Sleep" not in mail["text"] + mail["subject"]  # no goal text by default
    settings = get_settings()
    assert f"{settings.mail_links_base}/reviews/due" in mail["text"]
    unsubscribe = mail["headers"]["List-Unsubscribe"]
    assert unsubscribe.startswith(f"<{settings.api_links_base}/v1/notifications/unsubscribe/")
    assert mail["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The mail client's one click: a POST with no login.
    r = await client.post(
        urlsplit(unsubscribe.strip("<>")).path,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 204
    r = await client.get("/v1/me/notification-settings", headers=patient.headers)
    assert r.json()["review_reminders"] is False


async def test_goal_titles_only_when_chosen(client, make_user, monkeypatch, sync_engine):
    patient = await make_user("client")
    verify(sync_engine, patient)
    r = await client.patch(
        "/v1/me/notification-settings", json={"include_goal_titles": True},
        headers=patient.headers,
    )  # fmt: skip
    assert r.status_code == 200
    await due_goals(client, monkeypatch, patient, ["Sleep by eleven"])
    await run_once(DUE_AT, BEFORE_COMMIT)
    (mail,) = queued(sync_engine, "review_due")
    assert "1 goal is due" in mail["text"] and "Sleep by eleven" in mail["text"]


async def test_no_mail_unverified_or_with_email_off(client, make_user, monkeypatch, sync_engine):
    unverified = await make_user("client")
    quiet = await make_user("client")
    verify(sync_engine, quiet)
    r = await client.patch(
        "/v1/me/notification-settings", json={"email": False}, headers=quiet.headers
    )
    assert r.status_code == 200
    for patient in (unverified, quiet):
        await due_goals(client, monkeypatch, patient, ["Walk"])
    assert (await run_once(DUE_AT, BEFORE_COMMIT)).review_due == 2  # in-app still
    assert queued(sync_engine, "review_due") == []


async def lagging_goal(client, patient) -> dict:
    goal = await new_goal(client, patient, title="Call my sister")
    for _ in range(2):
        r = await client.post(
            f"/v1/goals/{goal['id']}/reviews", json={"rating": 5, "gas_score": -1},
            headers=patient.headers,
        )  # fmt: skip
        assert r.status_code == 201
    return goal


async def test_lagging_mails_go_to_client_and_therapist_without_goal_text(
    client, make_user, sync_engine
):
    patient = await make_user("client", name="Robin")
    therapist = await make_user("therapist")
    await link(client, therapist, patient)
    verify(sync_engine, patient, therapist)
    await lagging_goal(client, patient)
    mails = queued(sync_engine, "goal_lagging")
    assert sorted(m["to"] for m in mails) == sorted([patient.email, therapist.email])
    for mail in mails:
        assert "Call my sister" not in mail["text"] + mail["subject"]
        assert mail["about"] == uuid.UUID(patient.id).hex  # erased with the client
    (to_therapist,) = [m for m in mails if m["to"] == therapist.email]
    assert "Robin" in to_therapist["text"]


async def test_a_pending_lagging_mail_is_withdrawn_when_the_link_ends(
    client, make_user, sync_engine
):
    patient = await make_user("client")
    therapist = await make_user("therapist")
    care_link = await link(client, therapist, patient)
    verify(sync_engine, patient, therapist)
    goal = await lagging_goal(client, patient)
    assert len(queued(sync_engine, "goal_lagging")) == 2
    r = await client.delete(f"/v1/care-links/{care_link['id']}", headers=patient.headers)
    assert r.status_code == 204
    assert [m["to"] for m in queued(sync_engine, "goal_lagging")] == [patient.email]
    r = await client.delete(f"/v1/goals/{goal['id']}", headers=patient.headers)
    assert queued(sync_engine, "goal_lagging") == []
