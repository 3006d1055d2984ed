"""The therapist's dashboard: numbers per linked client, in a fixed number of queries."""

from __future__ import annotations

import datetime as dt

import pytest

from app.reviews import due
from tests.support.worlds import add_step, assert_problem, link, new_goal, scoped_headers, set_due


async def review(client, actor, goal, **body) -> None:
    r = await client.post(f"/v1/goals/{goal['id']}/reviews", json=body, headers=actor.headers)
    assert r.status_code == 201, r.text


async def done(client, actor, step) -> None:
    r = await client.patch(
        f"/v1/steps/{step['id']}", json={"status": "done"}, headers=actor.headers
    )
    assert r.status_code == 200, r.text


async def dashboard(client, therapist, **params) -> dict:
    r = await client.get("/v1/clients", params=params, headers=therapist.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_dashboard_numbers(client, make_user, sync_engine, monkeypatch):
    therapist = await make_user("therapist")
    ana = await make_user("client", timezone="Pacific/Kiritimati", name="Ana")
    ben = await make_user("client", name="Ben")
    stranger = await make_user("client", name="Cleo")  # not linked: never listed
    await link(client, therapist, ana)
    await link(client, therapist, ben)
    await new_goal(client, stranger, review_every_days=1)

    sleep = await new_goal(client, ana, title="Sleep", gas_weight=3, review_every_days=7)
    walks = await new_goal(client, ana, title="Walks", gas_weight=1, review_every_days=7)
    calm = await new_goal(client, ana, title="Calm", review_every_days=7)
    secret = await new_goal(
        client, ana, title="Secret", visibility="private", gas_weight=9, review_every_days=7
    )
    paused = await new_goal(client, ana, title="Paused", gas_weight=5, review_every_days=7)

    for step in [await add_step(client, ana, sleep["id"]) for _ in range(2)][:1]:
        await done(client, ana, step)
    await done(client, ana, await add_step(client, ana, walks["id"]))
    for _ in range(5):
        await done(client, ana, await add_step(client, ana, secret["id"]))

    await review(client, ana, sleep, rating=8, gas_score=1)
    await review(client, ana, sleep, rating=9, gas_score=2)  # the latest counts
    await review(client, ana, walks, rating=3, gas_score=-1)
    await review(client, ana, paused, rating=2, gas_score=-2)
    await review(client, ana, secret, rating=1, gas_score=-2)
    r = await client.patch(
        f"/v1/goals/{paused['id']}", json={"status": "on_hold"}, headers=ana.headers
    )
    assert r.status_code == 200, r.text

    # 2026-11-25 10:30 UTC is 00:30 on the 26th in Kiritimati (UTC+14).
    monkeypatch.setattr(due, "now", lambda: dt.datetime(2026, 11, 25, 10, 30, tzinfo=dt.UTC))
    # Ana's today is the 26th: due the 25th is overdue, due the 26th is not (yet).
    set_due(sync_engine, sleep["id"], dt.date(2026, 11, 25))
    set_due(sync_engine, walks["id"], dt.date(2026, 11, 26))
    set_due(sync_engine, calm["id"], dt.date(2026, 11, 1))
    set_due(sync_engine, secret["id"], dt.date(2026, 11, 1))
    set_due(sync_engine, paused["id"], dt.date(2026, 11, 1))

    page = await dashboard(client, therapist)
    assert [i["client"]["display_name"] for i in page["items"]] == ["Ana", "Ben"]
    ana_row, ben_row = page["items"]
    assert ana_row["client"] == {"id": ana.id, "display_name": "Ana"}
    assert ana_row["active_goals"] == 3  # sleep, walks, calm (not the private, not on hold)
    # Steps over active shared goals: 1 of 2 + 1 of 1 = 2 of 3 -> floor(66.7) = 66.
    assert ana_row["steps_done_percent"] == 66
    assert ana_row["reviews_overdue"] == 2  # sleep (25th) and calm (1st)
    assert ana_row["goals_lagging"] == 0  # none judged lagging (tests/test_lagging.py)
    # T over active shared goals with a score: (x, w) = (2, 3) sleep, (-1, 1) walks.
    # sum(w x) = 6 - 1 = 5; sum(w^2) = 9 + 1 = 10; (sum w)^2 = 16
    # denominator = 0.7 * 10 + 0.3 * 16 = 11.8; sqrt = 3.435113
    # T = 50 + 10 * 5 / 3.435113 = 50 + 14.5555 = 64.6
    assert ana_row["gas_t_score"] == 64.6
    walks_review = (
        await client.get(f"/v1/goals/{walks['id']}/reviews", headers=ana.headers)
    ).json()["items"][0]
    paused_review = (
        await client.get(f"/v1/goals/{paused['id']}/reviews", headers=ana.headers)
    ).json()["items"][0]
    # The latest review of a shared goal (the on-hold one counts; the private one does not).
    assert ana_row["last_review_at"] == paused_review["created_at"]
    assert ana_row["last_review_at"] > walks_review["created_at"]

    assert ben_row == {
        "client": {"id": ben.id, "display_name": "Ben"},
        "active_goals": 0,
        "steps_done_percent": None,
        "last_review_at": None,
        "reviews_overdue": 0,
        "goals_lagging": 0,
        "gas_t_score": None,
    }


async def test_dashboard_is_for_therapists_with_goals_read(client, make_user):
    therapist = await make_user("therapist")
    patient = await make_user("client")
    await link(client, therapist, patient)
    assert_problem(await client.get("/v1/clients", headers=patient.headers), 403, "forbidden")
    assert_problem(await client.get("/v1/clients"), 401, "unauthorized")
    lacking = await scoped_headers(client, therapist, "reviews:read")
    assert_problem(await client.get("/v1/clients", headers=lacking), 403, "insufficient-scope")
    other = await make_user("therapist")
    assert (await dashboard(client, other))["items"] == []
    assert [i["client"]["id"] for i in (await dashboard(client, therapist))["items"]] == [
        patient.id
    ]


async def test_dashboard_pages_by_name(client, make_user):
    therapist = await make_user("therapist")
    names = ["Eve", "Bo", "Dan", "Al", "Cy"]
    for name in names:
        await link(client, therapist, await make_user("client", name=name))
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/clients", params=params, headers=therapist.headers)
        page = r.json()
        seen += [i["client"]["display_name"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
        assert 'rel="next"' in r.headers["link"]
    assert seen == sorted(names)


@pytest.mark.parametrize("clients", [1, 5])
async def test_dashboard_query_count_is_fixed(client, make_user, count_statements, clients):
    therapist = await make_user("therapist")
    for i in range(clients):
        patient = await make_user("client", name=f"Client {i}")
        await link(client, therapist, patient)
        goal = await new_goal(client, patient, gas_weight=2, review_every_days=3)
        await add_step(client, patient, goal["id"])
        await review(client, patient, goal, rating=5, gas_score=i % 3 - 1)
    count_statements.statements.clear()
    page = await dashboard(client, therapist)
    assert len(page["items"]) == clients
    # One query for the page of clients, one for all their goal aggregates, one insert for
    # the access log.
    assert count_statements.count == 3, count_statements.statements


async def test_ended_link_leaves_the_dashboard(client, make_user):
    therapist = await make_user("therapist")
    patient = await make_user("client")
    await link(client, therapist, patient)
    await new_goal(client, patient)
    assert len((await dashboard(client, therapist))["items"]) == 1
    links = (await client.get("/v1/care-links", headers=therapist.headers)).json()["items"]
    r = await client.delete(f"/v1/care-links/{links[0]['id']}", headers=therapist.headers)
    assert r.status_code == 204
    assert (await dashboard(client, therapist))["items"] == []
