"""``waypoint seed-demo``: the demo story, through the services, idempotent."""

from __future__ import annotations

import anyio
import sqlalchemy as sa
from typer.testing import CliRunner

from app.cli import cli
from app.demo.seed import CLIENT_EMAIL, THERAPIST_EMAIL
from tests.support.worlds import login


def _counts(engine: sa.Engine) -> dict[str, int]:
    tables = ("users", "care_links", "goals", "steps", "reviews", "encouragements", "changes")
    with engine.connect() as conn:
        return {t: conn.scalar(sa.text(f"SELECT count(*) FROM {t}")) for t in tables}


async def test_seed_demo_creates_a_story_once(client, sync_engine):
    runner = CliRunner()  # in a thread: the command runs its own event loop
    first = await anyio.to_thread.run_sync(runner.invoke, cli, ["seed-demo"])
    assert first.exit_code == 0, first.output
    assert THERAPIST_EMAIL in first.output and CLIENT_EMAIL in first.output
    counts = _counts(sync_engine)
    assert counts["users"] == 2
    assert counts["care_links"] == 1
    assert counts["goals"] == 3
    assert counts["steps"] == 10
    assert counts["reviews"] == 3
    assert counts["changes"] > 0  # the change log was written, as for a request

    again = await anyio.to_thread.run_sync(runner.invoke, cli, ["seed-demo"])
    assert again.exit_code == 0, again.output
    assert "already exist" in again.output
    assert _counts(sync_engine) == counts

    # The printed passwords work, and the story is visible through the API.
    passwords = {}
    for line in first.output.splitlines():
        for email in (THERAPIST_EMAIL, CLIENT_EMAIL):
            if email in line:
                passwords[email] = line.split(email)[1].strip(" │|").split()[0]
    tokens = {}
    for email, password in passwords.items():
        r = await login(client, email, password)
        assert r.status_code == 200, (email, r.text)
        tokens[email] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    sam = tokens[CLIENT_EMAIL]
    goals = (await client.get("/v1/goals", headers=sam)).json()["items"]
    content = next(g for g in goals if g["title"] == "Feel content again")
    assert content["motivation"] and content["success_criteria"]
    assert content["progress"]["steps_total"] == 5
    assert content["progress"]["steps_done"] == 3
    assert content["progress"]["latest_rating"] == 6
    progress = (await client.get(f"/v1/goals/{content['id']}/progress", headers=sam)).json()
    assert [p["rating"] for p in progress["reviews"]] == [4, 6]
    assert progress["trend"] == "improving"
    chart = await client.get(f"/v1/goals/{content['id']}/progress.svg", headers=sam)
    assert chart.status_code == 200 and "Feel content again" in chart.text
    notes = (await client.get("/v1/encouragements", headers=sam)).json()["items"]
    kinds = sorted(n["kind"] for n in notes)
    assert "note" in kinds and "celebration" in kinds  # 3 of 5 steps done: halfway celebrated
    dashboard = (await client.get("/v1/clients", headers=tokens[THERAPIST_EMAIL])).json()
    assert [row["client"]["display_name"] for row in dashboard["items"]] == ["Sam"]
    assert dashboard["items"][0]["gas_t_score"] is not None
