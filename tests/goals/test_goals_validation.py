"""Goal bodies: every invalid field is a 422 problem that changes nothing."""

import pytest

from tests.support.worlds import GAS, assert_problem, new_goal


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 201},
        {"title": None},
        {"title": 5},
        {"title": "x", "status": "active"},
        {"title": "x", "id": "00000000-0000-7000-8000-000000000000"},
        {"title": "x", "created_by": "00000000-0000-7000-8000-000000000000"},
        {"title": "x", "version": 3},
        {"title": "x", "created_at": "2026-01-01T00:00:00Z"},
        {"title": "x", "achievement_status": "achieved"},
        {"title": "x", "unknown": 1},
        {"title": "x", "description": "d" * 5001},
        {"title": "x", "motivation": "d" * 5001},
        {"title": "x", "success_criteria": "d" * 5001},
        {"title": "x", "priority": "urgent"},
        {"title": "x", "review_every_days": 0},
        {"title": "x", "review_every_days": 366},
        {"title": "x", "visibility": "public"},
        {"title": "x", "external_id": ""},
        {"title": "x", "external_id": "e" * 201},
        {"title": "x", "gas_weight": 0},
        {"title": "x", "gas_weight": 10},
        {"title": "x", "gas_levels": {k: v for k, v in GAS.items() if k != "0"}},
        {"title": "x", "gas_levels": {**GAS, "3": "too far"}},
        {"title": "x", "gas_levels": {**GAS, "0": ""}},
        {"title": "x", "gas_levels": {**GAS, "0": "z" * 501}},
        {"title": "x", "gas_levels": ["a", "b", "c", "d", "e"]},
        {"title": "x", "target_date": "next week"},
        {"title": "x", "client_id": "not-a-uuid"},
    ],
)
async def test_create_validation(client, make_user, body):
    patient = await make_user("client")
    r = await client.post("/v1/goals", json=body, headers=patient.headers)
    problem = assert_problem(r, 422, "validation-error")
    assert problem["errors"]
    assert (await client.get("/v1/goals", headers=patient.headers)).json()["items"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"title": None},
        {"title": "  "},
        {"status": None},
        {"status": "done"},
        {"visibility": None},
        {"gas_weight": None},
        {"client_id": "00000000-0000-7000-8000-000000000000"},
        {"created_by": "00000000-0000-7000-8000-000000000000"},
        {"version": 5},
        {"completed_at": "2026-01-01T00:00:00Z"},
        {"progress": {"steps_done": 3}},
        {"achievement_status": "great"},
        {"review_every_days": 0},
        {"gas_levels": {"0": "only one"}},
    ],
)
async def test_update_validation_changes_nothing(client, make_user, body):
    patient = await make_user("client")
    goal = await new_goal(client, patient)
    r = await client.patch(f"/v1/goals/{goal['id']}", json=body, headers=patient.headers)
    assert_problem(r, 422, "validation-error")
    assert (await client.get(f"/v1/goals/{goal['id']}", headers=patient.headers)).json() == goal
