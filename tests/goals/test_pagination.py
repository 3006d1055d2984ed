"""Keyset pages of goals: every item exactly once, opaque cursors, Link headers, and a constant
number of SQL statements whatever the page size."""

import datetime as dt

import pytest
import sqlalchemy as sa

from app.models import Goal
from tests.support.worlds import assert_problem, link, new_goal


async def walk(client, actor, url: str, *, between=None) -> list[str]:
    seen: list[str] = []
    for _ in range(100):  # a cursor that does not advance must fail, not loop forever
        if not url:
            break
        r = await client.get(url, headers=actor.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [item["id"] for item in page["items"]]
        url = None
        if page["next_cursor"]:
            header = r.headers["link"]
            assert header.endswith('>; rel="next"')
            url = header[1 : header.index(">")].removeprefix("http://testserver")
            assert f"cursor={page['next_cursor']}" in url
            if between:
                await between()
        else:
            assert "link" not in r.headers
    assert not url, "the pages never ended"
    return seen


async def test_every_goal_once_while_goals_are_added(client, make_user):
    patient = await make_user("client")
    existing = [(await new_goal(client, patient, title=f"g{i}"))["id"] for i in range(11)]
    added: list[str] = []

    async def add():
        added.append((await new_goal(client, patient, title="late"))["id"])

    seen = await walk(client, patient, "/v1/goals?limit=3", between=add)
    assert len(added) == 3
    assert sorted(i for i in seen if i in existing) == sorted(existing)
    assert len(seen) == len(set(seen))  # nothing twice
    assert seen[: len(existing)] == list(reversed(existing))  # newest updated first


async def test_ties_on_updated_at_are_broken_by_id(client, make_user, sync_engine):
    patient = await make_user("client")
    ids = [(await new_goal(client, patient))["id"] for _ in range(7)]
    with sync_engine.begin() as conn:
        # Through the column type, so the value is stored exactly as the app stores it.
        conn.execute(
            sa.update(Goal.__table__).values(updated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        )
    for limit in (1, 2, 3, 7):
        seen = await walk(client, patient, f"/v1/goals?limit={limit}")
        assert sorted(seen) == sorted(ids) and len(seen) == 7


async def test_filters_keep_paging(client, make_user):
    therapist = await make_user("therapist")
    patient = await make_user("client")
    await link(client, therapist, patient)
    proposed = [(await new_goal(client, therapist, client_id=patient.id))["id"] for _ in range(5)]
    for _ in range(4):
        await new_goal(client, patient)
    seen = await walk(client, therapist, "/v1/goals?limit=2&status=proposed")
    assert sorted(seen) == sorted(proposed)


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!",
        "W10",
        "WyJ4Il0",
        "WzEsMl0",
        "eyJhIjoxfQ",
        "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwiYSJd",
    ],
)
async def test_bad_cursor_is_400(client, make_user, cursor):
    patient = await make_user("client")
    await new_goal(client, patient)
    r = await client.get(f"/v1/goals?cursor={cursor}", headers=patient.headers)
    assert_problem(r, 400, "bad-request")


@pytest.mark.parametrize("limit", ["0", "201", "-1", "ten", ""])
async def test_limit_out_of_range_is_422(client, make_user, limit):
    patient = await make_user("client")
    r = await client.get(f"/v1/goals?limit={limit}", headers=patient.headers)
    assert_problem(r, 422, "validation-error")


async def test_limit_bounds_are_accepted(client, make_user):
    patient = await make_user("client")
    for _ in range(3):
        await new_goal(client, patient)
    r = await client.get("/v1/goals?limit=1", headers=patient.headers)
    assert len(r.json()["items"]) == 1 and r.json()["next_cursor"]
    r = await client.get("/v1/goals?limit=200", headers=patient.headers)
    assert len(r.json()["items"]) == 3 and r.json()["next_cursor"] is None
    assert len((await client.get("/v1/goals", headers=patient.headers)).json()["items"]) == 3


@pytest.mark.parametrize("role", ["client", "therapist"])
async def test_statements_per_page_do_not_grow_with_page_size(
    client, make_user, count_statements, role
):
    therapist = await make_user("therapist")
    patient = await make_user("client")
    await link(client, therapist, patient)
    for i in range(60):
        await new_goal(client, patient, title=f"g{i}")
        if i % 3 == 0:
            r = await client.post(
                f"/v1/goals/{(await new_goal(client, patient))['id']}/steps",
                json={"title": "s"},
                headers=patient.headers,
            )
            assert r.status_code == 201
    actor = patient if role == "client" else therapist
    counts = {}
    for limit in (1, 10, 50, 200):
        count_statements.statements.clear()
        r = await client.get(f"/v1/goals?limit={limit}", headers=actor.headers)
        assert r.status_code == 200
        assert len(r.json()["items"]) == min(limit, 80)
        # The caller's login is looked up at most once a second (app/auth/sessions.py).
        counts[limit] = sum("auth_sessions" not in q for q in count_statements.statements)
    assert len(set(counts.values())) == 1, counts
    # A client's page is one SELECT; a therapist's adds one access-log INSERT for the page.
    assert counts[1] == (1 if role == "client" else 2), count_statements.statements
