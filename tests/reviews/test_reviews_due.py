"""Due reviews follow each client's own calendar: around midnight far from UTC."""

from __future__ import annotations

import datetime as dt

import pytest

from app.core.clock import local_date
from app.reviews import due
from tests.support.worlds import assert_problem, link, new_goal, scoped_headers, set_due


def freeze(monkeypatch, at: dt.datetime) -> None:
    monkeypatch.setattr(due, "now", lambda: at)


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


async def due_titles(client, headers, **params) -> list[str]:
    r = await client.get("/v1/reviews/due", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return [item["title"] for item in r.json()["items"]]


@pytest.fixture
async def far_apart(client, make_user, sync_engine):
    """Clients at UTC+14 (Kiritimati), UTC-11 (Pago Pago) and UTC, linked to one therapist."""
    therapist = await make_user("therapist")
    kiri = await make_user("client", timezone="Pacific/Kiritimati")
    pago = await make_user("client", timezone="Pacific/Pago_Pago")
    utc = await make_user("client", timezone="UTC")
    for patient in (kiri, pago, utc):
        await link(client, therapist, patient)
    goals = {
        "kiri-26": (kiri, "2026-11-26"),
        "pago-25": (pago, "2026-11-25"),
        "pago-24": (pago, "2026-11-24"),
        "utc-25": (utc, "2026-11-25"),
        "utc-26": (utc, "2026-11-26"),
    }
    for title, (owner, day) in goals.items():
        goal = await new_goal(client, owner, title=title, review_every_days=7)
        set_due(sync_engine, goal["id"], d(day))
    return {"therapist": therapist, "kiri": kiri, "pago": pago, "utc": utc}


async def test_due_uses_each_clients_today(client, far_apart, monkeypatch):
    therapist = far_apart["therapist"]
    # 10:30 UTC: Kiritimati is at 00:30 on the 26th, Pago Pago at 23:30 on the 24th.
    freeze(monkeypatch, dt.datetime(2026, 11, 25, 10, 30, tzinfo=dt.UTC))
    assert await due_titles(client, therapist.headers) == ["pago-24", "utc-25", "kiri-26"]
    assert await due_titles(client, far_apart["kiri"].headers) == ["kiri-26"]
    assert await due_titles(client, far_apart["pago"].headers) == ["pago-24"]
    assert await due_titles(client, far_apart["utc"].headers) == ["utc-25"]

    # 09:59 UTC: one minute before midnight in Kiritimati; its goal is not due yet.
    freeze(monkeypatch, dt.datetime(2026, 11, 25, 9, 59, tzinfo=dt.UTC))
    assert await due_titles(client, therapist.headers) == ["pago-24", "utc-25"]
    assert await due_titles(client, far_apart["kiri"].headers) == []

    # 11:00 UTC: midnight in Pago Pago; the goal due on the 25th there is due now.
    freeze(monkeypatch, dt.datetime(2026, 11, 25, 11, 0, tzinfo=dt.UTC))
    assert await due_titles(client, therapist.headers) == [
        "pago-24",
        "pago-25",
        "utc-25",
        "kiri-26",
    ]
    assert await due_titles(client, far_apart["pago"].headers) == ["pago-24", "pago-25"]

    # Keyset pages of one, oldest due first.
    seen, cursor = [], None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/reviews/due", params=params, headers=therapist.headers)
        page = r.json()
        seen += [i["title"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ["pago-24", "pago-25", "utc-25", "kiri-26"]


async def test_due_lists_only_visible_active_goals(client, make_user, sync_engine, monkeypatch):
    freeze(monkeypatch, dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC))
    owner = await make_user("client")
    therapist = await make_user("therapist")
    stranger = await make_user("therapist")
    await link(client, therapist, owner)
    shared = await new_goal(client, owner, title="shared", review_every_days=7)
    private = await new_goal(
        client, owner, title="private", review_every_days=7, visibility="private"
    )
    paused = await new_goal(client, owner, title="paused", review_every_days=7)
    gone = await new_goal(client, owner, title="deleted", review_every_days=7)
    for goal in (shared, private, paused, gone):
        set_due(sync_engine, goal["id"], d("2026-11-20"))
    set_due(sync_engine, paused["id"], d("2026-11-20"), status="on_hold")
    assert (
        await client.delete(f"/v1/goals/{gone['id']}", headers=owner.headers)
    ).status_code == 204

    # Same due date: ties are broken by id (creation order).
    assert await due_titles(client, owner.headers) == ["shared", "private"]
    assert await due_titles(client, therapist.headers) == ["shared"]
    assert await due_titles(client, stranger.headers) == []
    item = (await client.get("/v1/reviews/due", headers=therapist.headers)).json()["items"][0]
    assert item["id"] == shared["id"]
    assert item["next_review_due"] == "2026-11-20"
    assert item["client_id"] == owner.id
    assert set(item) == set(shared)  # a whole goal object, as GET /v1/goals/{id} shows it

    # A review moves the goal out of the due list.
    r = await client.post(
        f"/v1/goals/{shared['id']}/reviews", json={"rating": 5}, headers=therapist.headers
    )
    assert r.status_code == 201
    assert await due_titles(client, therapist.headers) == []

    assert_problem(await client.get("/v1/reviews/due"), 401, "unauthorized")
    lacking = await scoped_headers(client, owner, "goals:read reviews:write")
    assert_problem(await client.get("/v1/reviews/due", headers=lacking), 403, "insufficient-scope")


@pytest.mark.parametrize(
    ("timezone", "expected_due"),
    [
        # 2026-11-25 10:30 UTC is already the 26th at UTC+14 ...
        ("Pacific/Kiritimati", "2026-12-03"),
        # ... and still the 24th at UTC-11.
        ("Pacific/Pago_Pago", "2026-12-01"),
        ("UTC", "2026-12-02"),
    ],
)
async def test_review_sets_next_due_in_the_clients_timezone(
    client, make_user, monkeypatch, timezone, expected_due
):
    freeze(monkeypatch, dt.datetime(2026, 11, 25, 10, 30, tzinfo=dt.UTC))
    owner = await make_user("client", timezone=timezone)
    therapist = await make_user("therapist", timezone="Europe/Berlin")
    await link(client, therapist, owner)
    goal = await new_goal(client, owner, review_every_days=7)
    # Even when the therapist writes the review, the client's calendar counts.
    r = await client.post(
        f"/v1/goals/{goal['id']}/reviews", json={"rating": 6}, headers=therapist.headers
    )
    assert r.status_code == 201
    after = (await client.get(f"/v1/goals/{goal['id']}", headers=owner.headers)).json()
    assert after["next_review_due"] == expected_due


def test_local_date_and_next_due_are_pure():
    at = dt.datetime(2026, 11, 25, 10, 30, tzinfo=dt.UTC)
    assert local_date(at, "Pacific/Kiritimati") == d("2026-11-26")
    assert local_date(at, "Pacific/Pago_Pago") == d("2026-11-24")
    assert local_date(at, "Not/AZone") == d("2026-11-25")
    assert due.next_review_due(at, "Pacific/Kiritimati", 1) == d("2026-11-27")
    assert due.next_review_due(at, "UTC", None) is None
