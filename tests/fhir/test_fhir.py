"""FHIR R4: Goal read and search, CapabilityStatement, OperationOutcome
errors. Every answer is validated with the R4 models of ``fhir.resources`` and its codes are
checked against R4's value sets."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.goal import Goal
from fhir.resources.R4B.operationoutcome import OperationOutcome

from tests.support.worlds import link, login

FHIR_JSON = "application/fhir+json"
# R4 value sets (https://hl7.org/fhir/R4/valueset-goal-status.html and friends).
GOAL_STATUS = {"proposed", "planned", "accepted", "active", "on-hold", "completed",
               "cancelled", "entered-in-error", "rejected"}  # fmt: skip
GOAL_ACHIEVEMENT = {"in-progress", "improving", "worsening", "no-change", "achieved",
                    "sustaining", "not-achieved", "no-progress", "not-attainable"}  # fmt: skip
GOAL_PRIORITY = {"high-priority", "medium-priority", "low-priority"}
ACHIEVEMENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/goal-achievement"
PRIORITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/goal-priority"
ISSUE_TYPES = {"invalid", "structure", "required", "value", "invariant", "security", "login",
               "unknown", "expired", "forbidden", "suppressed", "processing", "not-supported",
               "duplicate", "multiple-matches", "not-found", "deleted", "too-long",
               "code-invalid", "extension", "too-costly", "business-rule", "conflict",
               "transient", "lock-error", "no-store", "exception", "timeout", "incomplete",
               "throttled", "informational"}  # fmt: skip


def fhir_goal(response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    Goal.model_validate(body)
    check_codes(body)
    return body


def check_codes(goal: dict) -> None:
    assert goal["lifecycleStatus"] in GOAL_STATUS
    for coding in goal.get("achievementStatus", {}).get("coding", []):
        assert coding["system"] == ACHIEVEMENT_SYSTEM and coding["code"] in GOAL_ACHIEVEMENT
    for coding in goal.get("priority", {}).get("coding", []):
        assert coding["system"] == PRIORITY_SYSTEM and coding["code"] in GOAL_PRIORITY


def outcome(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    OperationOutcome.model_validate(body)
    (issue,) = body["issue"]
    assert issue["severity"] == "error" and issue["code"] == code and issue["code"] in ISSUE_TYPES
    return body


def bundle(response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    Bundle.model_validate(body)
    assert body["type"] == "searchset"
    for entry in body["entry"]:
        Goal.model_validate(entry["resource"])
        check_codes(entry["resource"])
        assert entry["fullUrl"].endswith(f"/v1/fhir/Goal/{entry['resource']['id']}")
        assert entry["fullUrl"].startswith("http")
    return body


async def test_every_field_is_mapped(client, make_user):
    owner = await make_user("client")
    therapist = await make_user("therapist")
    await link(client, therapist, owner)
    r = await client.post(
        "/v1/goals",
        json={
            "title": "Walk to work",
            "description": "Twice a week",
            "motivation": "Feel fitter",
            "success_criteria": "Ten walks in a month",
            "category": "health",
            "priority": "high",
            "target_date": "2027-03-01",
            "external_id": "ehr-42",
            "client_id": owner.id,
        },
        headers=therapist.headers,
    )
    assert r.status_code == 201, r.text
    goal = r.json()
    r = await client.patch(
        f"/v1/goals/{goal['id']}",
        json={"status": "completed", "achievement_status": "not_attainable"},
        headers=owner.headers,
    )
    assert r.status_code == 200, r.text
    goal = r.json()
    body = fhir_goal(await client.get(f"/v1/fhir/Goal/{goal['id']}", headers=owner.headers))
    assert body == {
        "resourceType": "Goal",
        "id": goal["id"],
        "meta": {"versionId": str(goal["version"]), "lastUpdated": goal["updated_at"]},
        "identifier": [{"system": "urn:waypoint:goal:external-id", "value": "ehr-42"}],
        "lifecycleStatus": "completed",
        "achievementStatus": {
            "coding": [
                {
                    "system": ACHIEVEMENT_SYSTEM,
                    "code": "not-attainable",
                    "display": "Not Attainable",
                }
            ]
        },
        "category": [{"text": "health"}],
        "priority": {
            "coding": [
                {"system": PRIORITY_SYSTEM, "code": "high-priority", "display": "High Priority"}
            ]
        },
        "description": {"text": "Walk to work"},
        "subject": {"reference": f"Patient/{owner.id}"},
        "startDate": goal["created_at"][:10],
        "target": [{"dueDate": "2027-03-01"}],
        "statusDate": goal["completed_at"][:10],
        "expressedBy": {"reference": f"Practitioner/{therapist.id}"},
        "note": [
            {"text": "Twice a week"},
            {"text": "Motivation: Feel fitter"},
            {"text": "Success criteria: Ten walks in a month"},
        ],
    }


@pytest.mark.parametrize(
    ("status", "lifecycle"),
    [("active", "active"), ("on_hold", "on-hold"), ("completed", "completed"),
     ("cancelled", "cancelled")],
)  # fmt: skip
async def test_lifecycle_status(client, make_user, status, lifecycle):
    owner = await make_user("client")
    goal = (await client.post("/v1/goals", json={"title": "g"}, headers=owner.headers)).json()
    if status != "active":
        r = await client.patch(
            f"/v1/goals/{goal['id']}", json={"status": status}, headers=owner.headers
        )
        assert r.status_code == 200, r.text
    body = fhir_goal(await client.get(f"/v1/fhir/Goal/{goal['id']}", headers=owner.headers))
    assert body["lifecycleStatus"] == lifecycle
    assert body["expressedBy"] == {"reference": f"Patient/{owner.id}"}
    assert "note" not in body and "target" not in body and "identifier" not in body


async def test_proposed_goal_and_every_achievement_and_priority_code(client, make_user):
    owner = await make_user("client")
    therapist = await make_user("therapist")
    await link(client, therapist, owner)
    goal = (
        await client.post(
            "/v1/goals", json={"title": "g", "client_id": owner.id}, headers=therapist.headers
        )
    ).json()
    body = fhir_goal(await client.get(f"/v1/fhir/Goal/{goal['id']}", headers=therapist.headers))
    assert body["lifecycleStatus"] == "proposed"
    for value in ["in_progress", "improving", "worsening", "no_change", "achieved",
                  "sustaining", "not_achieved", "no_progress", "not_attainable"]:  # fmt: skip
        r = await client.patch(
            f"/v1/goals/{goal['id']}", json={"achievement_status": value}, headers=owner.headers
        )
        assert r.status_code == 200, r.text
        body = fhir_goal(await client.get(f"/v1/fhir/Goal/{goal['id']}", headers=owner.headers))
        assert body["achievementStatus"]["coding"][0]["code"] == value.replace("_", "-")
    for value in ["low", "medium", "high"]:
        await client.patch(
            f"/v1/goals/{goal['id']}", json={"priority": value}, headers=owner.headers
        )
        body = fhir_goal(await client.get(f"/v1/fhir/Goal/{goal['id']}", headers=owner.headers))
        assert body["priority"]["coding"][0]["code"] == f"{value}-priority"


@pytest.mark.parametrize(
    ("caller", "shared_status", "private_status"),
    [
        ("owner", 200, 200),
        ("linked_therapist", 200, 404),
        ("unlinked_therapist", 404, 404),
        ("other_client", 404, 404),
        ("anonymous", 401, 401),
        ("no_scope", 403, 403),
    ],
)
async def test_read_authorization(client, make_user, caller, shared_status, private_status):
    owner = await make_user("client")
    therapist = await make_user("therapist")
    await link(client, therapist, owner)
    callers = {
        "owner": owner.headers,
        "linked_therapist": therapist.headers,
        "unlinked_therapist": (await make_user("therapist")).headers,
        "other_client": (await make_user("client")).headers,
        "anonymous": {},
    }
    token = (await login(client, owner.email, scope="goals:write")).json()["access_token"]
    callers["no_scope"] = {"Authorization": f"Bearer {token}"}
    shared = (await client.post("/v1/goals", json={"title": "s"}, headers=owner.headers)).json()
    private = (
        await client.post(
            "/v1/goals", json={"title": "p", "visibility": "private"}, headers=owner.headers
        )
    ).json()
    codes = {401: "login", 403: "forbidden", 404: "not-found"}
    for goal, expected in ((shared, shared_status), (private, private_status)):
        r = await client.get(f"/v1/fhir/Goal/{goal['id']}", headers=callers[caller])
        if expected == 200:
            assert fhir_goal(r)["id"] == goal["id"]
        else:
            outcome(r, expected, codes[expected])
    r = await client.get(f"/v1/fhir/Goal?patient={owner.id}", headers=callers[caller])
    if shared_status in (401, 403):
        outcome(r, shared_status, codes[shared_status])
        return
    seen = {e["resource"]["id"] for e in bundle(r)["entry"]}
    expected_ids = {
        g["id"] for g, s in ((shared, shared_status), (private, private_status)) if s == 200
    }
    assert seen == expected_ids


async def test_search_pages_with_next_links(client, make_user):
    owner = await make_user("client")
    other = await make_user("client")
    ids = set()
    for i in range(5):
        r = await client.post("/v1/goals", json={"title": f"g{i}"}, headers=owner.headers)
        ids.add(r.json()["id"])
    await client.post("/v1/goals", json={"title": "not mine"}, headers=other.headers)
    url = f"/v1/fhir/Goal?patient=Patient/{owner.id}&_count=2"
    seen, pages = [], 0
    while url:
        page = bundle(await client.get(url, headers=owner.headers))
        pages += 1
        assert len(page["entry"]) <= 2
        seen += [e["resource"]["id"] for e in page["entry"]]
        links = {link["relation"]: link["url"] for link in page["link"]}
        assert "self" in links
        url = links.get("next")
        if url:
            assert url.startswith("http://testserver/v1/fhir/Goal?")
            url = url.removeprefix("http://testserver")
    assert pages == 3
    assert len(seen) == 5 and set(seen) == ids
    for query in ("", "?_count=200"):
        everything = bundle(await client.get(f"/v1/fhir/Goal{query}", headers=owner.headers))
        assert {e["resource"]["id"] for e in everything["entry"]} == ids


async def test_search_for_someone_you_may_not_see_is_empty(client, make_user):
    owner = await make_user("client")
    stranger = await make_user("therapist")
    await client.post("/v1/goals", json={"title": "g"}, headers=owner.headers)
    for patient in (owner.id, "not-an-id", "Patient/x"):
        page = bundle(
            await client.get(f"/v1/fhir/Goal?patient={patient}", headers=stranger.headers)
        )
        assert page["entry"] == []


@pytest.mark.parametrize("query", ["_count=0", "_count=201", "_count=ten", "_cursor=garbage"])
async def test_bad_search_parameters_are_400_outcomes(client, make_user, query):
    owner = await make_user("client")
    outcome(await client.get(f"/v1/fhir/Goal?{query}", headers=owner.headers), 400, "invalid")


async def test_unknown_ids_resources_and_methods_are_outcomes(client, make_user):
    owner = await make_user("client")
    h = owner.headers
    outcome(await client.get("/v1/fhir/Goal/nope", headers=h), 404, "not-found")
    outcome(
        await client.get("/v1/fhir/Goal/0196b0a4-0000-7000-8000-000000000000", headers=h),
        404,
        "not-found",
    )
    outcome(await client.get("/v1/fhir/Patient/1", headers=h), 404, "not-found")
    r = await client.post("/v1/fhir/Goal", json={"resourceType": "Goal"}, headers=h)
    outcome(r, 405, "not-supported")
    assert r.headers["allow"] == "GET"
    outcome(await client.delete("/v1/fhir/Goal/x", headers=h), 405, "not-supported")
    r = await client.get("/v1/fhir/Goal/x")
    outcome(r, 401, "login")
    assert r.headers["www-authenticate"] == "Bearer"


async def test_a_deleted_goal_is_gone(client, make_user):
    owner = await make_user("client")
    goal = (await client.post("/v1/goals", json={"title": "g"}, headers=owner.headers)).json()
    await client.delete(f"/v1/goals/{goal['id']}", headers=owner.headers)
    outcome(
        await client.get(f"/v1/fhir/Goal/{goal['id']}", headers=owner.headers), 404, "not-found"
    )


async def test_capability_statement(client):
    r = await client.get("/v1/fhir/metadata")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(FHIR_JSON)
    body = r.json()
    CapabilityStatement.model_validate(body)
    assert body["fhirVersion"].startswith("4.0")
    assert body["kind"] == "instance"
    (rest,) = body["rest"]
    (goal,) = rest["resource"]
    assert goal["type"] == "Goal"
    assert {i["code"] for i in goal["interaction"]} == {"read", "search-type"}
    assert "patient" in {p["name"] for p in goal["searchParam"]}
