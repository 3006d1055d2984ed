"""GET /v1/me/export and DELETE /v1/me: one's own data, exported whole or erased."""

from __future__ import annotations

import sqlalchemy as sa

from tests.support.syncing import follow, link, listed
from tests.support.worlds import assert_problem

SECRET_TEXT = "my very private reflection"


async def _content(client, patient, therapist):
    await link(client, therapist, patient)
    r = await client.post("/v1/goals", json={"title": "Sleep", "motivation": SECRET_TEXT},
                          headers=patient.headers)  # fmt: skip
    goal = r.json()
    step = (await client.post(f"/v1/goals/{goal['id']}/steps", json={"title": "Dim lights"},
                              headers=therapist.headers)).json()  # fmt: skip
    review = (await client.post(f"/v1/goals/{goal['id']}/reviews",
                                json={"rating": 6, "reflection": SECRET_TEXT},
                                headers=therapist.headers)).json()  # fmt: skip
    note = (await client.post("/v1/encouragements",
                              json={"client_id": patient.id, "message": "Proud of you"},
                              headers=therapist.headers)).json()  # fmt: skip
    deleted = (await client.post("/v1/goals", json={"title": "Gone", "description": SECRET_TEXT},
                                 headers=patient.headers)).json()  # fmt: skip
    await client.delete(f"/v1/goals/{deleted['id']}", headers=patient.headers)
    token = (await client.post("/v1/me/tokens", json={"name": "sync", "scopes": ["goals:read"]},
                               headers=patient.headers)).json()  # fmt: skip
    # the therapist reads the goal: an access-log entry for the client
    await client.get(f"/v1/goals/{goal['id']}", headers=therapist.headers)
    return goal, step, review, note, token


async def test_export_has_everything_of_the_caller_and_no_secrets(client, make_user):
    patient = await make_user("client")
    therapist = await make_user("therapist")
    goal, step, review, note, token = await _content(client, patient, therapist)
    r = await client.get("/v1/me/export", headers=patient.headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["account"]["id"] == patient.id and "password_hash" not in doc["account"]
    assert [g["id"] for g in doc["goals"]] == [goal["id"]]
    own_goal = (await client.get(f"/v1/goals/{goal['id']}", headers=patient.headers)).json()
    assert doc["goals"][0] == own_goal  # the document its own GET answers
    assert [s["id"] for s in doc["steps"]] == [step["id"]]
    assert [x["id"] for x in doc["reviews"]] == [review["id"]]
    assert [n["id"] for n in doc["encouragements_received"]] == [note["id"]]
    assert doc["encouragements_sent"] == []
    assert [t["id"] for t in doc["personal_tokens"]] == [token["id"]]
    assert token["token"] not in r.text and "token_hash" not in r.text
    assert [len(doc["care_links"]), doc["webhooks"]] == [1, []]
    assert {e["action"] for e in doc["access_log"]} >= {"read"}
    assert all(e["actor"]["id"] == therapist.id for e in doc["access_log"])
    # the therapist's export: what they wrote and sent
    doc = (await client.get("/v1/me/export", headers=therapist.headers)).json()
    assert [s["id"] for s in doc["steps"]] == [step["id"]]
    assert [x["id"] for x in doc["reviews"]] == [review["id"]]
    assert [n["id"] for n in doc["encouragements_sent"]] == [note["id"]]
    assert doc["goals"] == [] and "access_log" not in doc


async def test_export_pages_through_large_sections(client, make_user, monkeypatch):
    from app.privacy import export

    monkeypatch.setattr(export, "BATCH", 2)
    patient = await make_user("client")
    ids = set()
    for n in range(5):
        r = await client.post("/v1/goals", json={"title": f"G{n}"}, headers=patient.headers)
        ids.add(r.json()["id"])
    doc = (await client.get("/v1/me/export", headers=patient.headers)).json()
    assert {g["id"] for g in doc["goals"]} == ids and len(doc["goals"]) == 5


async def test_export_needs_a_token(client):
    assert_problem(await client.get("/v1/me/export"), 401)
    assert_problem(await client.delete("/v1/me"), 401)


async def test_erasing_a_client_removes_their_content_for_real(client, make_user, sync_engine):
    patient = await make_user("client")
    therapist = await make_user("therapist")
    goal, *_ = await _content(client, patient, therapist)
    mirror: dict = {}
    cursor = await follow(client, therapist.headers, mirror, None)
    assert ("goal", goal["id"]) in mirror and len(mirror) == 4
    r = await client.delete("/v1/me", headers=patient.headers)
    assert r.status_code == 204
    # the therapist's mirror loses everything of that client, as deletions
    await follow(client, therapist.headers, mirror, cursor)
    assert mirror == {} == await listed(client, therapist.headers)
    assert (await client.get("/v1/care-links", headers=therapist.headers)).json()["items"] == []
    # nothing of the client's text is left anywhere, soft-deleted rows included
    hex_id = patient.id.replace("-", "")
    with sync_engine.connect() as conn:
        for table in ("users", "goals", "steps", "reviews", "encouragements", "care_links",
                      "personal_access_tokens", "refresh_tokens", "access_log"):  # fmt: skip
            column = "id" if table == "users" else (
                "user_id" if table in ("personal_access_tokens", "refresh_tokens") else "client_id"
            )  # fmt: skip
            count = conn.scalar(
                sa.text(f"SELECT count(*) FROM {table} WHERE CAST({column} AS TEXT) IN (:a, :b)"),
                {"a": patient.id, "b": hex_id},
            )
            assert count == 0, table
        goals_text = conn.execute(sa.text("SELECT title, description, motivation FROM goals"))
        assert SECRET_TEXT not in str(goals_text.all())
    # the account cannot log in again
    r = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "password",
            "username": patient.email,
            "password": "correct horse battery",
        },
    )
    assert r.status_code == 400


async def test_erasing_a_therapist_ends_links_and_leaves_their_notes_without_author(
    client, make_user
):
    patient = await make_user("client")
    therapist = await make_user("therapist")
    goal, step, review, note, _ = await _content(client, patient, therapist)
    mirror: dict = {}
    cursor = await follow(client, patient.headers, mirror, None)
    r = await client.delete("/v1/me", headers=therapist.headers)
    assert r.status_code == 204
    assert (await client.get("/v1/care-links", headers=patient.headers)).json()["items"] == []
    await follow(client, patient.headers, mirror, cursor)
    assert mirror == await listed(client, patient.headers)
    kept = mirror[("encouragement", note["id"])]
    assert kept["author_id"] is None and kept["author_role"] == "therapist"
    assert kept["message"] == "Proud of you"
    assert mirror[("review", review["id"])]["author_id"] is None
    assert mirror[("step", step["id"])]["created_by"] is None


async def _every_route_answers_401(client, headers) -> None:
    from fastapi.routing import APIRoute

    from app.auth.routing import PublicRoute
    from app.main import create_app

    paths = []
    for route in create_app().routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        if not route.path.startswith("/v1/") or route.path.startswith("/v1/auth/"):
            continue
        if isinstance(route, PublicRoute):  # needs no token (/v1/fhir/metadata)
            continue
        for method in route.methods - {"HEAD", "OPTIONS"}:
            paths.append((method, route.path.replace("{", "").replace("}", "")))
    fake = "01900000-0000-7000-8000-000000000000"
    for method, path in paths:
        path = path.replace("goal_id", fake).replace("step_id", fake)
        for name in ("encouragement_id", "token_id", "link_id", "webhook_id", "id"):
            path = path.replace(name, fake)
        r = await client.request(method, path, headers=headers, json={})
        assert r.status_code == 401, (method, path, r.status_code)


async def test_an_erased_accounts_personal_tokens_stop_on_every_route(client, make_user):
    patient = await make_user("client")
    r = await client.post("/v1/me/tokens", json={"name": "s", "scopes": ["goals:read"]},
                          headers=patient.headers)  # fmt: skip
    pat = {"Authorization": f"Bearer {r.json()['token']}"}
    assert (await client.delete("/v1/me", headers=patient.headers)).status_code == 204
    await _every_route_answers_401(client, pat)


async def test_an_erased_accounts_access_tokens_stop_on_every_route(client, make_user):
    patient = await make_user("client")
    assert (await client.delete("/v1/me", headers=patient.headers)).status_code == 204
    await _every_route_answers_401(client, patient.headers)
