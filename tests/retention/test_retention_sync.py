"""The sync feed under retention: change rows older than WAYPOINT_SYNC_RETENTION_DAYS are
deleted, and a follower whose cursor points before them is told so (410 cursor-expired) rather
than silently missing a deletion; a cursor at or after the horizon keeps working; the
``waypoint sync`` mirror starts over by itself. The clock is faked by the sweep's ``now``."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from typing import Any

import httpx
import sqlalchemy as sa

from app.core.config import get_settings
from app.models import Change, SyncHorizon
from app.retention.rules import RULES
from app.retention.service import sweep_rule
from app.scripts.api_client import ApiClient
from app.scripts.mirror import run_sync
from tests.support.syncing import follow, link, listed, mirrored, register
from tests.support.worlds import assert_problem

DAY = dt.timedelta(days=1)


async def sweep_changes(engine: sa.Engine, days_on: float) -> int:
    """The change rows' rule alone, as if ``days_on`` days had passed (the other rules would
    end the test accounts' logins, long expired by then). Rows that old were written by
    transactions long ended: on PostgreSQL the test waits until that is so."""
    await settled(engine)
    (rule,) = [rule for rule in RULES if rule.name == "changes"]
    return await sweep_rule(rule, dt.datetime.now(dt.UTC) + days_on * DAY, get_settings())


async def goal(client: httpx.AsyncClient, actor: Any, title: str = "Walk") -> dict:
    r = await client.post("/v1/goals", json={"title": title}, headers=actor.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def delete_goal(client: httpx.AsyncClient, actor: Any, goal_id: str) -> None:
    r = await client.delete(f"/v1/goals/{goal_id}", headers=actor.headers)
    assert r.status_code == 204, r.text


async def page(client: httpx.AsyncClient, actor: Any, cursor: str | None, limit: int = 500):
    params: dict[str, Any] = {"limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    return await client.get("/v1/sync", params=params, headers=actor.headers)


async def settled(engine: sa.Engine) -> None:
    """PostgreSQL: wait until the feed serves every change row written so far. It serves only
    rows below the oldest transaction running in the whole cluster, and other databases of a
    shared test server may hold that back for a moment (a follower then lags, nothing more)."""
    if engine.dialect.name != "postgresql":
        return
    behind = sa.text(
        "SELECT count(*) FROM changes "
        "WHERE tx >= pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
    )
    for _ in range(600):
        with engine.connect() as conn:
            if conn.execute(behind).scalar_one() == 0:
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the feed's horizon did not pass the change rows within 30 s")


def change_rows(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(Change.__table__)).scalar_one()


async def test_a_cursor_before_the_deleted_history_answers_410_and_a_full_sync_recovers(
    client, make_user, sync_engine
):
    patient = await make_user("client")
    therapist = await make_user("therapist")
    await link(client, therapist, patient)
    kept, doomed = await goal(client, patient, "Kept"), await goal(client, patient, "Doomed")
    mirrors: dict[str, dict] = {"patient": {}, "therapist": {}}
    actors = {"patient": patient, "therapist": therapist}
    cursors = {
        name: await follow(client, actor.headers, mirrors[name], None)
        for name, actor in actors.items()
    }
    await delete_goal(client, patient, doomed["id"])  # the deletion the followers must not miss
    await goal(client, patient, "Newest")
    # 89 days on, nothing is old enough: every cursor still works
    assert await sweep_changes(sync_engine, 89) == 0
    for name, actor in actors.items():
        assert (await page(client, actor, cursors[name])).status_code == 200
    # 91 days on: every change row but the newest is deleted
    before = change_rows(sync_engine)
    assert await sweep_changes(sync_engine, 91) == before - 1
    assert change_rows(sync_engine) == 1
    for name, actor in actors.items():
        r = await page(client, actor, cursors[name])
        body = assert_problem(r, 410, "cursor-expired")
        assert "start over" in body["detail"]
        # starting over: a full sync shows what the lists show, the deleted goal gone
        mirror: dict = {}
        cursors[name] = await follow(client, actor.headers, mirror, None)
        assert mirror == await listed(client, actor.headers)
        assert ("goal", doomed["id"]) not in mirror and ("goal", kept["id"]) in mirror
        mirrors[name] = mirror
    # the new cursors follow what comes next, the deletions included
    later = await goal(client, patient, "Later")
    await delete_goal(client, patient, kept["id"])
    await settled(sync_engine)
    for name, actor in actors.items():
        cursors[name] = await follow(client, actor.headers, mirrors[name], cursors[name])
        assert mirrors[name] == await listed(client, actor.headers)
        assert ("goal", later["id"]) in mirrors[name] and ("goal", kept["id"]) not in mirrors[name]


async def test_a_cursor_at_or_after_the_horizon_keeps_working(client, make_user, sync_engine):
    patient = await make_user("client")
    for n in range(3):
        await goal(client, patient, f"G{n}")
    mirror: dict = {}
    await settled(sync_engine)
    cursor = await follow(client, patient.headers, mirror, None)  # after every row
    await sweep_changes(sync_engine, 91)
    with sync_engine.connect() as conn:
        assert conn.execute(sa.select(SyncHorizon.__table__)).one() is not None
    r = await page(client, patient, cursor)
    assert r.status_code == 200 and r.json()["changes"] == []
    gone = await goal(client, patient, "Gone soon")
    await delete_goal(client, patient, gone["id"])
    await settled(sync_engine)
    cursor = await follow(client, patient.headers, mirror, cursor)
    assert mirror == await listed(client, patient.headers)
    assert ("goal", gone["id"]) not in mirror


async def test_a_snapshot_cursor_whose_follow_rows_were_deleted_answers_410(
    client, make_user, sync_engine
):
    patient = await make_user("client")
    first = await goal(client, patient, "First")
    await goal(client, patient, "Second")
    r = await page(client, patient, None, limit=1)  # the snapshot's first page
    assert r.status_code == 200 and r.json()["has_more"] is True
    snapshot_cursor = r.json()["next_cursor"]
    await delete_goal(client, patient, first["id"])  # after the snapshot's start
    await goal(client, patient, "Third")
    await sweep_changes(sync_engine, 91)
    assert_problem(await page(client, patient, snapshot_cursor, limit=1), 410, "cursor-expired")


async def test_the_newest_change_row_is_kept_and_new_rows_follow_it(client, make_user, sync_engine):
    """SQLite numbers a new row one past the highest left: were the newest deleted too, the
    next row would reuse a number a follower's cursor already stands on."""
    patient = await make_user("client")
    for n in range(3):
        await goal(client, patient, f"G{n}")
    await sweep_changes(sync_engine, 91)
    await sweep_changes(sync_engine, 200)  # again, later: still the newest row stays
    mirror: dict = {}
    cursor = await follow(client, patient.headers, mirror, None)
    newer = await goal(client, patient, "Newer")
    await settled(sync_engine)
    await follow(client, patient.headers, mirror, cursor)
    assert ("goal", newer["id"]) in mirror
    assert mirror == await listed(client, patient.headers)


READ = ["goals:read", "reviews:read", "encouragements:read"]


async def test_the_mirror_command_starts_over_when_its_cursor_expired(
    app_instance, tmp_path, sync_engine, serve
):
    server = serve(workers=1, migrate=False)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        patient = await register(http, "client", f"mirror-{os.urandom(4).hex()}")
        r = await http.post(
            "/v1/me/tokens", json={"name": "script", "scopes": READ}, headers=patient.headers
        )
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        goals = [await goal(http, patient, f"G{n}") for n in range(3)]
        mirror = tmp_path / "mirror.db"
        with ApiClient(server.url, token) as api:
            assert run_sync(api, mirror, 2).upserts == 3
        await delete_goal(http, patient, goals[0]["id"])
        await goal(http, patient, "Newest")
        await sweep_changes(sync_engine, 91)
        await settled(sync_engine)
        with ApiClient(server.url, token) as api:
            result = run_sync(api, mirror, 2)
        # the whole mirror again, without the deleted goal (which no deletion told of)
        assert (result.upserts, result.deletes) == (3, 0)
        assert mirrored(mirror) == await listed(http, patient.headers)
        assert ("goal", goals[0]["id"]) not in mirrored(mirror)
        # and it follows on from there
        await delete_goal(http, patient, goals[1]["id"])
        await settled(sync_engine)
        with ApiClient(server.url, token) as api:
            assert run_sync(api, mirror, 2).deletes == 1
        assert mirrored(mirror) == await listed(http, patient.headers)
