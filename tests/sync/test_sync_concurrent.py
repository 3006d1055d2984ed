"""A follower paging with small pages while several writers write concurrently, against a real
server with two worker processes, ends with exactly what the lists show it."""

from __future__ import annotations

import random

import anyio
import httpx
import pytest

from tests.support.servers import Server
from tests.support.syncing import apply, listed, register


@pytest.fixture
def live_server(app_instance, serve) -> Server:  # app_instance: empty tables first
    return serve(workers=2, migrate=False)  # the suite's database, already migrated


async def _writer(http: httpx.AsyncClient, patient, therapist, seed: int, link: dict) -> None:
    rng = random.Random(seed)
    goals: list[str] = []
    steps: list[str] = []
    for n in range(25):
        actor = therapist if rng.random() < 0.3 else patient
        choice = rng.random()
        if choice < 0.25 or not goals:
            body = {"title": f"w{seed}-{n}"}
            if actor is therapist:
                body["client_id"] = patient.id
            elif rng.random() < 0.3:
                body["visibility"] = "private"
            r = await http.post("/v1/goals", json=body, headers=actor.headers)
            if r.status_code == 201:
                goals.append(r.json()["id"])
        elif choice < 0.45:
            r = await http.post(f"/v1/goals/{rng.choice(goals)}/steps",
                                json={"title": f"s{n}"}, headers=actor.headers)  # fmt: skip
            if r.status_code == 201:
                steps.append(r.json()["id"])
        elif choice < 0.55 and steps:
            await http.patch(f"/v1/steps/{rng.choice(steps)}", json={"status": "done"},
                             headers=actor.headers)  # fmt: skip
        elif choice < 0.65:
            await http.patch(f"/v1/goals/{rng.choice(goals)}",
                             json={"visibility": rng.choice(["private", "shared"])},
                             headers=patient.headers)  # fmt: skip
        elif choice < 0.72:
            goal = rng.choice(goals)
            await http.delete(f"/v1/goals/{goal}", headers=patient.headers)
            goals.remove(goal)
        elif choice < 0.82:
            await http.post(f"/v1/goals/{rng.choice(goals)}/reviews", json={"rating": n % 11},
                            headers=actor.headers)  # fmt: skip
        elif choice < 0.9:
            await http.post("/v1/encouragements",
                            json={"client_id": patient.id, "message": f"go {n}"},
                            headers=actor.headers)  # fmt: skip
        elif seed == 0:  # one writer toggles the care link
            if link.get("id"):
                await http.delete(f"/v1/care-links/{link.pop('id')}", headers=patient.headers)
            else:
                code = (await http.post("/v1/care-invites", headers=therapist.headers)).json()
                r = await http.post("/v1/care-links", json={"code": code["code"]},
                                    headers=patient.headers)  # fmt: skip
                link["id"] = r.json()["id"]


async def _follower(http, actor, stop: anyio.Event, mirror: dict, cursors: list) -> None:
    cursor = None
    while True:
        finishing = stop.is_set()
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            r = await http.get("/v1/sync", params=params, headers=actor.headers)
            assert r.status_code == 200, r.text
            apply(mirror, r.json()["changes"])
            cursor = r.json()["next_cursor"]
            if not r.json()["has_more"]:
                break
        if finishing:
            cursors.append(cursor)
            return
        await anyio.sleep(0.01)


async def test_followers_end_equal_to_the_lists_under_concurrent_writers(live_server):
    async def no_server_errors(response: httpx.Response) -> None:
        assert response.status_code < 500, response.request.url

    hooks = {"response": [no_server_errors]}
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60, event_hooks=hooks) as http:
        patient = await register(http, "client", "concurrent-client")
        therapist = await register(http, "therapist", "concurrent-therapist")
        code = (await http.post("/v1/care-invites", headers=therapist.headers)).json()["code"]
        r = await http.post("/v1/care-links", json={"code": code}, headers=patient.headers)
        link = {"id": r.json()["id"]}
        mirrors: dict[str, dict] = {patient.id: {}, therapist.id: {}}
        cursors: list[str] = []
        stop = anyio.Event()
        async with anyio.create_task_group() as followers:
            for actor in (patient, therapist):
                followers.start_soon(_follower, http, actor, stop, mirrors[actor.id], cursors)
            async with anyio.create_task_group() as writers:
                for seed in range(4):
                    writers.start_soon(_writer, http, patient, therapist, seed, link)
            stop.set()
        for actor in (patient, therapist):
            assert mirrors[actor.id] == await listed(http, actor.headers)
        assert len(mirrors[patient.id]) > 20
