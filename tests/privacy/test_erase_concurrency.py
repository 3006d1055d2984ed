"""An account erased while the same client writes: no request fails because of a deadlock.

Against a real server with two worker processes (on the suite's database, SQLite or
PostgreSQL): a client linked to a therapist (so the erase also ends a link, and takes the
client's lock for its feed rows) sends a dozen goal and step creates at once and
``DELETE /v1/me`` among them, several rounds. Every write answers 201, or 401/404 once the
erase has committed; the erase answers 204. The lock order behind it is described in
docs/hardening-concurrency.md.
"""

from __future__ import annotations

import anyio
import httpx
import pytest

from tests.support.servers import Server
from tests.support.syncing import link, register

ROUNDS = 6
WRITES = 12
WRITE_STATUSES = {201, 401, 404}


@pytest.fixture
def live_server(app_instance, serve) -> Server:  # app_instance: empty tables first
    return serve(workers=2, migrate=False)  # the suite's database, already migrated


async def _erase_among_writes(http: httpx.AsyncClient, n: int) -> tuple[list[int], int]:
    client = await register(http, "client", f"erased-{n}")
    therapist = await register(http, "therapist", f"erased-therapist-{n}")
    await link(http, therapist, client)
    r = await http.post("/v1/goals", json={"title": "before"}, headers=client.headers)
    assert r.status_code == 201, r.text
    goal_id = r.json()["id"]
    writes: list[int] = []
    erase: list[int] = []
    answered = anyio.Condition()

    async def write(i: int) -> None:
        if i % 2:
            r = await http.post("/v1/goals", json={"title": f"g{i}"}, headers=client.headers)
        else:
            r = await http.post(
                f"/v1/goals/{goal_id}/steps", json={"title": f"s{i}"}, headers=client.headers
            )
        async with answered:
            writes.append(r.status_code)
            answered.notify_all()

    async def erase_after(answers: int) -> None:
        # Rounds differ in how many writes have been answered before the erase is sent
        # (none, some): the erase meets writes at different points of their transactions.
        async with answered:
            while len(writes) < answers:
                await answered.wait()
        erase.append((await http.delete("/v1/me", headers=client.headers)).status_code)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(erase_after, n % 3)
        for i in range(WRITES):
            tasks.start_soon(write, i)
    after = await http.post("/v1/goals", json={"title": "after"}, headers=client.headers)
    assert after.status_code == 401  # the account and its tokens are gone
    return writes, erase[0]


async def test_erase_and_concurrent_writes_of_the_same_client_all_succeed(live_server):
    limits = httpx.Limits(max_connections=WRITES + 4)
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60, limits=limits) as http:
        for n in range(ROUNDS):
            writes, erased = await _erase_among_writes(http, n)
            assert erased == 204
            assert len(writes) == WRITES
            assert set(writes) <= WRITE_STATUSES, writes
        metrics = (await http.get("/metrics")).text
    # The lock order leaves nothing to retry; a retry would be counted here.
    retried = [
        line
        for line in metrics.splitlines()
        if line.startswith("waypoint_transaction_retries_total") and not line.endswith(" 0.0")
    ]
    assert retried == []
