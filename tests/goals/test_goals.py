"""Goals: fields, validation, status rules, external ids, versions and conditional requests."""

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from app.goals.schemas import GoalOut
from app.models import ReminderSchedule
from tests.support.database import BACKEND
from tests.support.worlds import GAS, assert_problem, link, new_goal


async def test_client_creates_goal_with_every_field(client, make_user):
    patient = await make_user("client")
    body = {
        "title": "  Walk in the park  ",
        "description": "Short walks after lunch",
        "motivation": "Feel calmer in the afternoon",
        "success_criteria": "Three walks a week for a month",
        "category": "health",
        "priority": "high",
        "target_date": "2027-03-01",
        "review_every_days": 7,
        "visibility": "private",
        "external_id": "ext-1",
        "gas_levels": GAS,
        "gas_weight": 6,
    }
    r = await client.post("/v1/goals", json=body, headers=patient.headers)
    assert r.status_code == 201, r.text
    goal = r.json()
    assert set(goal) == set(GoalOut.model_fields)
    assert r.headers["location"] == f"/v1/goals/{goal['id']}"
    assert r.headers["etag"] == '"1"'
    assert goal["title"] == "Walk in the park"
    for key in body.keys() - {"title"}:
        assert goal[key] == body[key], key
    assert goal["client_id"] == patient.id and goal["created_by"] == patient.id
    assert goal["status"] == "active" and goal["version"] == 1
    assert goal["achievement_status"] is None and goal["completed_at"] is None
    created = dt.datetime.fromisoformat(goal["created_at"])
    assert goal["created_at"].endswith("Z") and goal["updated_at"] == goal["created_at"]
    assert goal["next_review_due"] == (created.date() + dt.timedelta(days=7)).isoformat()
    assert goal["progress"] == {
        "steps_total": 0,
        "steps_done": 0,
        "percent": 0,
        "latest_rating": None,
        "latest_gas_score": None,
    }
    r = await client.get(f"/v1/goals/{goal['id']}", headers=patient.headers)
    assert r.status_code == 200 and r.json() == goal


async def test_defaults(client, make_user):
    patient = await make_user("client")
    goal = await new_goal(client, patient, client_id=patient.id)
    assert goal["visibility"] == "shared" and goal["gas_weight"] == 1
    assert goal["gas_levels"] is None and goal["next_review_due"] is None
    assert goal["priority"] is None and goal["external_id"] is None


async def test_therapist_proposes_goal_for_linked_client(client, make_user):
    therapist = await make_user("therapist")
    patient = await make_user("client")
    await link(client, therapist, patient)
    goal = await new_goal(client, therapist, client_id=patient.id)
    assert goal["status"] == "proposed"
    assert goal["client_id"] == patient.id and goal["created_by"] == therapist.id
    # The client declines it.
    r = await client.patch(
        f"/v1/goals/{goal['id']}", json={"status": "cancelled"}, headers=patient.headers
    )
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


async def test_therapist_must_name_a_linked_client(client, make_user):
    therapist = await make_user("therapist")
    patient = await make_user("client")
    stranger = await make_user("client")
    await link(client, therapist, patient)
    r = await client.post("/v1/goals", json={"title": "x"}, headers=therapist.headers)
    problem = assert_problem(r, 422, "validation-error")
    assert problem["errors"][0]["loc"] == ["body", "client_id"]
    for target in (stranger.id, therapist.id, "00000000-0000-7000-8000-000000000000"):
        r = await client.post(
            "/v1/goals", json={"title": "x", "client_id": target}, headers=therapist.headers
        )
        assert_problem(r, 404, "not-found")
    r = await client.post(
        "/v1/goals",
        json={"title": "x", "client_id": patient.id, "visibility": "private"},
        headers=therapist.headers,
    )
    assert_problem(r, 422, "validation-error")
    # A client may not create for someone else.
    r = await client.post(
        "/v1/goals", json={"title": "x", "client_id": patient.id}, headers=stranger.headers
    )
    assert_problem(r, 404, "not-found")
    r = await client.get("/v1/goals", headers=patient.headers)
    assert r.json()["items"] == []


async def test_update_fields_version_and_updated_at(client, make_user):
    patient = await make_user("client")
    goal = await new_goal(client, patient, review_every_days=7, description="d")
    r = await client.patch(
        f"/v1/goals/{goal['id']}",
        json={
            "title": " Run ",
            "description": None,
            "achievement_status": "improving",
            "priority": "low",
            "gas_levels": GAS,
            "gas_weight": 3,
            "target_date": "2027-01-01",
        },
        headers=patient.headers,
    )
    assert r.status_code == 200, r.text
    updated = r.json()
    assert r.headers["etag"] == '"2"'
    assert updated["version"] == 2 and updated["updated_at"] > goal["updated_at"]
    assert updated["title"] == "Run" and updated["description"] is None
    assert updated["achievement_status"] == "improving" and updated["gas_levels"] == GAS
    assert updated["created_at"] == goal["created_at"]
    # Sending the same values again is no change: no new version.
    r = await client.patch(
        f"/v1/goals/{goal['id']}", json={"title": "Run", "priority": "low"}, headers=patient.headers
    )
    assert r.json()["version"] == 2
    # A new review interval counts from the creation date (no review yet).
    r = await client.patch(
        f"/v1/goals/{goal['id']}", json={"review_every_days": 30}, headers=patient.headers
    )
    created = dt.date.fromisoformat(goal["created_at"][:10])
    assert r.json()["next_review_due"] == (created + dt.timedelta(days=30)).isoformat()
    r = await client.patch(
        f"/v1/goals/{goal['id']}", json={"review_every_days": None}, headers=patient.headers
    )
    assert r.json()["next_review_due"] is None and r.json()["version"] == 4


async def test_review_interval_counts_from_last_review(client, make_user, sync_engine):
    patient = await make_user("client")
    goal = await new_goal(client, patient)
    with sync_engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE goals SET last_review_at = :t"),
            {"t": dt.datetime(2026, 5, 10, 12, 0)},
        )
    r = await client.patch(
        f"/v1/goals/{goal['id']}", json={"review_every_days": 14}, headers=patient.headers
    )
    assert r.json()["next_review_due"] == "2026-05-24"


async def test_completed_sets_and_clears_completed_at(client, make_user):
    patient = await make_user("client")
    goal = await new_goal(client, patient)
    url = f"/v1/goals/{goal['id']}"
    done = (await client.patch(url, json={"status": "completed"}, headers=patient.headers)).json()
    assert done["status"] == "completed" and done["completed_at"].endswith("Z")
    again = (await client.patch(url, json={"status": "on_hold"}, headers=patient.headers)).json()
    assert again["status"] == "on_hold" and again["completed_at"] is None


async def test_external_id_unique_per_client(client, make_user):
    patient = await make_user("client")
    other = await make_user("client")
    first = await new_goal(client, patient, external_id="abc")
    r = await client.post(
        "/v1/goals", json={"title": "y", "external_id": "abc"}, headers=patient.headers
    )
    assert_problem(r, 409, "conflict")
    await new_goal(client, other, external_id="abc")  # another client: fine
    second = await new_goal(client, patient, external_id="def")
    r = await client.patch(
        f"/v1/goals/{second['id']}", json={"external_id": "abc"}, headers=patient.headers
    )
    assert_problem(r, 409, "conflict")
    # Deleting frees the external id.
    assert (
        await client.delete(f"/v1/goals/{first['id']}", headers=patient.headers)
    ).status_code == 204
    r = await client.patch(
        f"/v1/goals/{second['id']}", json={"external_id": "abc"}, headers=patient.headers
    )
    assert r.status_code == 200
    found = await client.get("/v1/goals?external_id=abc", headers=patient.headers)
    assert [g["id"] for g in found.json()["items"]] == [second["id"]]


async def test_etag_if_none_match_and_if_match(client, make_user):
    patient = await make_user("client")
    goal = await new_goal(client, patient)
    url = f"/v1/goals/{goal['id']}"
    r = await client.get(url, headers=patient.headers)
    assert r.headers["etag"] == '"1"'
    r = await client.get(url, headers={**patient.headers, "If-None-Match": '"1"'})
    assert r.status_code == 304 and r.headers["etag"] == '"1"' and r.content == b""
    r = await client.get(url, headers={**patient.headers, "If-None-Match": 'W/"1", "7"'})
    assert r.status_code == 304
    r = await client.get(url, headers={**patient.headers, "If-None-Match": '"2"'})
    assert r.status_code == 200
    r = await client.patch(url, json={"title": "B"}, headers={**patient.headers, "If-Match": '"1"'})
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    r = await client.patch(url, json={"title": "C"}, headers={**patient.headers, "If-Match": '"1"'})
    assert_problem(r, 412, "precondition-failed")
    r = await client.delete(url, headers={**patient.headers, "If-Match": '"1"'})
    assert_problem(r, 412, "precondition-failed")
    current = (await client.get(url, headers=patient.headers)).json()
    assert current["title"] == "B" and current["version"] == 2
    r = await client.get(url, headers={**patient.headers, "If-None-Match": '"1"'})
    assert r.status_code == 200
    # Without If-Match the last writer wins.
    r = await client.patch(url, json={"title": "D"}, headers=patient.headers)
    assert r.status_code == 200 and r.json()["version"] == 3
    r = await client.delete(url, headers={**patient.headers, "If-Match": '"3"'})
    assert r.status_code == 204


async def test_soft_delete_hides_goal_everywhere(client, make_user, sync_engine):
    patient = await make_user("client")
    goal = await new_goal(client, patient)
    url = f"/v1/goals/{goal['id']}"
    assert (await client.delete(url, headers=patient.headers)).status_code == 204
    assert_problem(await client.get(url, headers=patient.headers), 404, "not-found")
    assert_problem(await client.patch(url, json={"title": "x"}, headers=patient.headers), 404)
    assert_problem(await client.delete(url, headers=patient.headers), 404)
    assert (await client.get("/v1/goals", headers=patient.headers)).json()["items"] == []
    with sync_engine.connect() as conn:
        deleted_at = conn.execute(sa.text("SELECT deleted_at FROM goals")).scalar_one()
        ops = conn.execute(
            sa.text("SELECT op FROM changes WHERE object_type = 'goal' ORDER BY seq")
        ).scalars()
        assert deleted_at is not None and list(ops) == ["upsert", "delete"]


async def test_unknown_ids_are_404(client, make_user):
    patient = await make_user("client")
    for path in ("/v1/goals/nope", "/v1/goals/00000000-0000-7000-8000-000000000000"):
        assert_problem(await client.get(path, headers=patient.headers), 404, "not-found")
        r = await client.patch(path, json={"title": "x"}, headers=patient.headers)
        assert_problem(r, 404, "not-found")
        assert_problem(await client.delete(path, headers=patient.headers), 404, "not-found")


async def test_list_filters(client, make_user):
    therapist = await make_user("therapist")
    first, second = await make_user("client"), await make_user("client")
    await link(client, therapist, first)
    await link(client, therapist, second)
    a = await new_goal(client, first, external_id="A")
    b = await new_goal(client, second)
    c = await new_goal(client, therapist, client_id=first.id)
    await new_goal(client, first, visibility="private")

    async def ids(query, actor=therapist):
        r = await client.get(f"/v1/goals{query}", headers=actor.headers)
        assert r.status_code == 200, r.text
        return [g["id"] for g in r.json()["items"]]

    assert await ids("") == [c["id"], b["id"], a["id"]]
    assert await ids(f"?client_id={first.id}") == [c["id"], a["id"]]
    assert await ids("?status=proposed") == [c["id"]]
    assert await ids("?status=active&external_id=A") == [a["id"]]
    assert await ids(f"?updated_since={b['updated_at']}") == [c["id"], b["id"]]
    assert len(await ids("", first)) == 3
    assert_problem(await client.get("/v1/goals?status=nope", headers=first.headers), 422)
    r = await client.get("/v1/goals?updated_since=2026-01-01T00:00:00", headers=first.headers)
    assert_problem(r, 422, "validation-error")
    r = await client.get("/v1/goals?client_id=123", headers=first.headers)
    assert_problem(r, 422, "validation-error")


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"])
async def test_next_review_due_counts_in_the_clients_timezone(client, make_user, zone):
    from zoneinfo import ZoneInfo

    therapist = await make_user("therapist")
    patient = await make_user("client", timezone=zone)
    await link(client, therapist, patient)
    for actor, extra in ((patient, {}), (therapist, {"client_id": patient.id})):
        goal = await new_goal(client, actor, review_every_days=3, **extra)
        created = dt.datetime.fromisoformat(goal["created_at"]).astimezone(ZoneInfo(zone))
        expected = created.date() + dt.timedelta(days=3)
        assert goal["next_review_due"] == expected.isoformat()
        r = await client.patch(
            f"/v1/goals/{goal['id']}", json={"review_every_days": 10}, headers=actor.headers
        )
        assert r.json()["next_review_due"] == (expected + dt.timedelta(days=7)).isoformat()


async def test_list_items_are_exactly_the_single_goal_documents(client, make_user, sync_engine):
    """The list renders goals its own fast way; it must match GET /v1/goals/{id} exactly."""
    therapist = await make_user("therapist")
    patient = await make_user("client")
    await link(client, therapist, patient)
    full = await new_goal(
        client,
        patient,
        title='Quotes " and \\ backslash, \u00e9t\u00e9 \U0001f331',
        description="line\nbreak\ttab",
        motivation="m",
        success_criteria="s",
        category="c",
        priority="low",
        target_date="2027-01-31",
        review_every_days=5,
        external_id="x-1",
        gas_levels=GAS,
        gas_weight=9,
    )
    await new_goal(client, therapist, client_id=patient.id)
    done = await new_goal(client, patient)
    await client.patch(
        f"/v1/goals/{done['id']}",
        json={"status": "completed", "achievement_status": "achieved"},
        headers=patient.headers,
    )
    step = await client.post(
        f"/v1/goals/{full['id']}/steps", json={"title": "s"}, headers=patient.headers
    )
    await client.post(f"/v1/goals/{full['id']}/steps", json={"title": "t"}, headers=patient.headers)
    await client.post(f"/v1/goals/{full['id']}/steps", json={"title": "u"}, headers=patient.headers)
    await client.patch(
        f"/v1/steps/{step.json()['id']}", json={"status": "done"}, headers=patient.headers
    )
    # A timestamp that falls on a whole second (no microseconds) renders the same way too.
    from app.models import Goal

    with sync_engine.begin() as conn:
        conn.execute(
            sa.update(Goal.__table__)
            .where(Goal.__table__.c.id == uuid.UUID(done["id"]))
            .values(created_at=dt.datetime(2026, 2, 3, 4, 5, 6, tzinfo=dt.UTC), latest_rating=7,
                    latest_gas_score=-1)
        )  # fmt: skip
    for actor in (patient, therapist):
        listed = (await client.get("/v1/goals", headers=actor.headers)).json()["items"]
        assert len(listed) == (3 if actor is patient else 3)
        for item in listed:
            single = await client.get(f"/v1/goals/{item['id']}", headers=actor.headers)
            assert item == single.json()
            assert list(item) == list(single.json())  # same field order as well
    by_id = {g["id"]: g for g in listed}
    assert by_id[full["id"]]["progress"]["percent"] == 33
    assert by_id[done["id"]]["created_at"] == "2026-02-03T04:05:06Z"
    assert by_id[done["id"]]["progress"]["latest_gas_score"] == -1


async def test_create_is_a_few_statements(client, make_user, count_statements, sync_engine):
    patient = await make_user("client")
    count_statements.statements.clear()
    await new_goal(client, patient)
    # The token's session (a primary-key lookup), INSERT the goal, INSERT its change row
    # (PostgreSQL: the goal and its change row in one statement, with the change-log lock).
    plain = count_statements.count
    assert plain <= 3, count_statements.statements
    count_statements.statements.clear()
    goal = await new_goal(client, patient, review_every_days=7)
    # The client's timezone for next_review_due, and the client's reminder schedule (one
    # upsert, app/reminders). SQLite writes the schedule inline on the transaction's own
    # connection, where SQLAlchemy's events do not see it: the row shows it was written.
    inline = 1 if BACKEND == "sqlite" else 0
    assert count_statements.count == plain + 2 - inline, count_statements.statements
    schedules = ReminderSchedule.__table__
    with sync_engine.connect() as conn:
        next_at = conn.execute(
            sa.select(schedules.c.next_at).where(schedules.c.client_id == uuid.UUID(patient.id))
        ).scalar_one()
    # The goal's review reminder, at the default reminder hour (09:00) of its due date in the
    # client's timezone (UTC here).
    due = dt.date.fromisoformat(goal["next_review_due"])
    assert next_at == dt.datetime.combine(due, dt.time(9), dt.UTC)


async def test_concurrent_duplicate_external_ids_one_wins(client, make_user, sync_engine):
    import asyncio

    patient = await make_user("client")
    results = await asyncio.gather(
        *(
            client.post(
                "/v1/goals", json={"title": f"t{i}", "external_id": "same"}, headers=patient.headers
            )
            for i in range(10)
        )
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [201] + [409] * 9, [r.text for r in results if r.status_code >= 500]
    for r in results:
        if r.status_code == 409:
            assert_problem(r, 409, "conflict")
    with sync_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM goals")).scalar_one() == 1
