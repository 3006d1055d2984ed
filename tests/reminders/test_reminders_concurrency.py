"""Each reminder once, whatever runs side by side: two scheduler runs, two background
workers, and `waypoint reminders run` racing a worker (on PostgreSQL they claim with
FOR UPDATE SKIP LOCKED; on SQLite their write transactions take turns)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from pathlib import Path

import sqlalchemy as sa

from app.reminders import runner
from app.reminders.runner import reminder_worker, run_once
from app.reviews import due
from app.wiring import BEFORE_COMMIT
from tests.support.worlds import new_goal

UTC = dt.UTC
DUE_AT = dt.datetime(2027, 5, 8, 9, tzinfo=UTC)
CLIENTS = 12
WAYPOINT = str(Path(sys.executable).with_name("waypoint"))


async def due_clients(client, make_user, monkeypatch) -> list:
    """``CLIENTS`` clients with two goals each, due on 2027-05-08 (UTC, 09:00)."""
    reviewed = dt.datetime(2027, 5, 1, 8, tzinfo=UTC)
    monkeypatch.setattr(due, "now", lambda: reviewed)
    patients = []
    for _ in range(CLIENTS):
        patient = await make_user("client")
        for _ in range(2):
            goal = await new_goal(client, patient, review_every_days=7)
            r = await client.post(
                f"/v1/goals/{goal['id']}/reviews", json={"rating": 7}, headers=patient.headers
            )
            assert r.status_code == 201
        patients.append(patient)
    # The creations' own (early) instants are used up by a run that finds nothing due yet.
    assert (await run_once(dt.datetime(2027, 5, 2, tzinfo=UTC), BEFORE_COMMIT)).review_due == 0
    return patients


def reminders_per_client(engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT user_id, count(*) FROM notifications WHERE kind = 'review_due' "
                "GROUP BY user_id"
            )
        ).all()
    return {str(user_id): count for user_id, count in rows}


async def test_two_runs_side_by_side_remind_each_client_once(
    client, make_user, monkeypatch, sync_engine
):
    patients = await due_clients(client, make_user, monkeypatch)
    first, second = await asyncio.gather(
        run_once(DUE_AT, BEFORE_COMMIT, batch=2), run_once(DUE_AT, BEFORE_COMMIT, batch=2)
    )
    assert first.review_due + second.review_due == CLIENTS
    counts = reminders_per_client(sync_engine)
    assert len(counts) == CLIENTS and set(counts.values()) == {1}
    for patient in patients:
        (note,) = (await client.get("/v1/notifications", headers=patient.headers)).json()["items"]
        assert len(note["goal_ids"]) == 2  # both goals in one notification


async def test_two_background_workers_remind_each_client_once(
    client, make_user, monkeypatch, sync_engine
):
    await due_clients(client, make_user, monkeypatch)
    monkeypatch.setattr(runner, "utcnow", lambda: DUE_AT)  # the workers' clock
    finished: asyncio.Queue[None] = asyncio.Queue()  # one item per run a worker finished

    async def run_and_tell(*args, **kwargs):
        try:
            return await run_once(*args, **kwargs)
        finally:
            finished.put_nowait(None)

    monkeypatch.setattr(runner, "run_once", run_and_tell)
    stop = asyncio.Event()
    worker = reminder_worker(BEFORE_COMMIT)
    workers = [asyncio.create_task(worker(stop)) for _ in range(2)]
    try:
        async with asyncio.timeout(60):  # each worker's first run, at once (the next: a minute)
            for _ in workers:
                await finished.get()
        assert sum(reminders_per_client(sync_engine).values()) == CLIENTS
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), timeout=30)
    # Each worker ran once as of the frozen instant; another pass finds nothing more.
    assert (await run_once(DUE_AT, BEFORE_COMMIT)).review_due == 0
    counts = reminders_per_client(sync_engine)
    assert len(counts) == CLIENTS and set(counts.values()) == {1}


async def test_the_command_racing_a_worker_reminds_each_client_once(
    client, make_user, monkeypatch, sync_engine
):
    await due_clients(client, make_user, monkeypatch)
    command = await asyncio.create_subprocess_exec(
        WAYPOINT, "reminders", "run", "--at", "2027-05-08T09:00:00Z",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=dict(os.environ),
    )  # fmt: skip
    here = await run_once(DUE_AT, BEFORE_COMMIT, batch=1)
    out, err = await asyncio.wait_for(command.communicate(), timeout=120)
    assert command.returncode == 0, err.decode()
    summary = out.decode().strip().splitlines()[-1]
    assert summary.startswith("reminders: ") and summary.endswith(" goal_lagging")
    theirs = int(summary.split()[1])
    assert here.review_due + theirs == CLIENTS
    counts = reminders_per_client(sync_engine)
    assert len(counts) == CLIENTS and set(counts.values()) == {1}


async def test_the_command_refuses_a_time_without_an_offset():
    command = await asyncio.create_subprocess_exec(
        WAYPOINT, "reminders", "run", "--at", "2027-05-08T09:00:00",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=dict(os.environ),
    )  # fmt: skip
    _, err = await asyncio.wait_for(command.communicate(), timeout=120)
    assert command.returncode == 2
    assert b"offset" in err
