"""Idempotency-Key on POST: replays, conflicts, and one object for concurrent retries."""

import asyncio

import pytest
import sqlalchemy as sa

from tests.support.worlds import assert_problem, new_goal


def count(sync_engine, table: str) -> int:
    with sync_engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


async def test_replay_returns_first_response_and_creates_nothing(client, make_user, sync_engine):
    patient = await make_user("client")
    headers = {**patient.headers, "Idempotency-Key": "create-walk-1"}
    body = {"title": "Walk", "external_id": "w-1"}
    first = await client.post("/v1/goals", json=body, headers=headers)
    assert first.status_code == 201, first.text
    changes = count(sync_engine, "changes")
    for _ in range(3):
        again = await client.post("/v1/goals", json=body, headers=headers)
        assert again.status_code == 201
        assert again.json() == first.json()
        assert again.content == first.content
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["idempotent-replayed"] == "true"
    assert count(sync_engine, "goals") == 1
    assert count(sync_engine, "changes") == changes


async def test_same_key_other_body_is_409(client, make_user, sync_engine):
    patient = await make_user("client")
    headers = {**patient.headers, "Idempotency-Key": "k"}
    assert (await client.post("/v1/goals", json={"title": "A"}, headers=headers)).status_code == 201
    r = await client.post("/v1/goals", json={"title": "B"}, headers=headers)
    assert_problem(r, 409, "conflict")
    # Same body on another path is another request too.
    goal_id = (await client.get("/v1/goals", headers=patient.headers)).json()["items"][0]["id"]
    r = await client.post(f"/v1/goals/{goal_id}/steps", json={"title": "A"}, headers=headers)
    assert_problem(r, 409, "conflict")
    assert count(sync_engine, "goals") == 1 and count(sync_engine, "steps") == 0


async def test_keys_belong_to_one_user(client, make_user, sync_engine):
    first, second = await make_user("client"), await make_user("client")
    for actor in (first, second):
        r = await client.post(
            "/v1/goals", json={"title": "A"}, headers={**actor.headers, "Idempotency-Key": "same"}
        )
        assert r.status_code == 201 and r.json()["client_id"] == actor.id
    assert count(sync_engine, "goals") == 2


async def test_failed_request_does_not_burn_the_key(client, make_user, sync_engine):
    patient = await make_user("client")
    headers = {**patient.headers, "Idempotency-Key": "retry-me"}
    assert_problem(await client.post("/v1/goals", json={"title": ""}, headers=headers), 422)
    r = await client.post("/v1/goals", json={"title": "fixed"}, headers=headers)
    assert r.status_code == 201
    await new_goal(client, patient, external_id="dup")
    dup_headers = {**patient.headers, "Idempotency-Key": "dup-key"}
    r = await client.post(
        "/v1/goals", json={"title": "x", "external_id": "dup"}, headers=dup_headers
    )
    assert_problem(r, 409, "conflict")
    assert count(sync_engine, "idempotency_keys") == 1


async def test_steps_and_invites_replay_too(client, make_user, sync_engine):
    therapist = await make_user("therapist")
    patient = await make_user("client")
    goal = await new_goal(client, patient)
    headers = {**patient.headers, "Idempotency-Key": "step-1"}
    url = f"/v1/goals/{goal['id']}/steps"
    first = await client.post(url, json={"title": "s"}, headers=headers)
    again = await client.post(url, json={"title": "s"}, headers=headers)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert count(sync_engine, "steps") == 1
    headers = {**therapist.headers, "Idempotency-Key": "invite-1"}
    first = await client.post("/v1/care-invites", headers=headers)
    again = await client.post("/v1/care-invites", headers=headers)
    assert first.json() == again.json() and count(sync_engine, "care_invites") == 1


@pytest.mark.parametrize("key", ["", "k" * 256])
async def test_key_length_is_validated(client, make_user, sync_engine, key):
    patient = await make_user("client")
    r = await client.post(
        "/v1/goals", json={"title": "A"}, headers={**patient.headers, "Idempotency-Key": key}
    )
    assert_problem(r, 422, "validation-error")
    assert count(sync_engine, "goals") == 0


async def test_concurrent_requests_with_one_key_create_one_goal(client, make_user, sync_engine):
    patient = await make_user("client")
    headers = {**patient.headers, "Idempotency-Key": "at-once"}
    results = await asyncio.gather(
        *(client.post("/v1/goals", json={"title": "Once"}, headers=headers) for _ in range(8))
    )
    # The later ones wait for the first one's commit, then replay its response.
    assert [r.status_code for r in results] == [201] * 8, [r.text for r in results]
    assert all(r.json() == results[0].json() for r in results)
    assert sum("idempotent-replayed" in r.headers for r in results) == 7
    assert count(sync_engine, "goals") == 1
    with sync_engine.connect() as conn:
        upserts = conn.execute(
            sa.text("SELECT count(*) FROM changes WHERE object_type = 'goal'")
        ).scalar_one()
    assert upserts == 1


async def test_concurrent_patches_with_one_if_match_exactly_one_wins(client, make_user):
    patient = await make_user("client")
    goal = await new_goal(client, patient)
    url = f"/v1/goals/{goal['id']}"
    headers = {**patient.headers, "If-Match": '"1"'}
    results = await asyncio.gather(
        *(client.patch(url, json={"title": f"t{i}"}, headers=headers) for i in range(20))
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [412] * 19, [r.text for r in results if r.status_code >= 500]
    winner = next(r.json() for r in results if r.status_code == 200)
    current = (await client.get(url, headers=patient.headers)).json()
    assert current["version"] == 2 and current["title"] == winner["title"]


async def test_concurrent_step_patches_with_one_if_match_exactly_one_wins(client, make_user):
    patient = await make_user("client")
    goal = await new_goal(client, patient)
    step = (
        await client.post(
            f"/v1/goals/{goal['id']}/steps", json={"title": "s"}, headers=patient.headers
        )
    ).json()
    headers = {**patient.headers, "If-Match": '"1"'}
    results = await asyncio.gather(
        *(
            client.patch(
                f"/v1/steps/{step['id']}",
                json={"status": "done", "title": f"t{i}"},
                headers=headers,
            )
            for i in range(20)
        )
    )
    assert sorted(r.status_code for r in results) == [200] + [412] * 19
    current = (await client.get(f"/v1/goals/{goal['id']}", headers=patient.headers)).json()
    step_now = (await client.get(f"/v1/steps/{step['id']}", headers=patient.headers)).json()
    assert current["progress"]["steps_done"] == 1
    assert step_now["version"] == 2 and step_now["status"] == "done"
