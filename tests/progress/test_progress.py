"""Progress numbers, the trend rule and the SVG chart."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import pytest

from app.goals.documents import percent_done
from app.progress.chart import ChartData, render_progress_svg
from app.progress.schemas import ReviewPoint
from app.progress.trend import rating_trend
from tests.support.worlds import (
    add_step,
    assert_problem,
    caller_matrix,
    make_world,
    new_goal,
    scoped_headers,
)

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    ("ratings", "trend"),
    [
        ([], None),
        ([5], None),
        ([5, 6], improving := "improving"),  # k=1: 6 - 5 = +1
        ([5, 5], "steady"),
        ([6, 5], "worsening"),  # -1
        ([3, 9, 4], "worsening"),  # k=1: 4 - 9
        ([2, 4, 5, 5], "improving"),  # k=2: mean(5,5) - mean(2,4) = 5 - 3 = 2
        ([4, 4, 5, 4], "steady"),  # k=2: 4.5 - 4 = 0.5
        ([1, 1, 1, 5, 5, 5, 4, 4, 5], "steady"),  # k=3: mean(4,4,5)=4.33 - mean(5,5,5) = -0.67
        ([9, 9, 9, 8, 8, 6], "worsening"),  # k=3: mean(8,8,6)=7.33 - 9 = -1.67
        ([0, 0, 0, 1, 1, 1], "improving"),  # exactly +1
    ],
)
def test_trend_rule(ratings, trend):
    assert rating_trend(ratings) == trend


def test_percent_rounds_down():
    assert percent_done(0, 0) == 0
    assert percent_done(1, 3) == 33
    assert percent_done(2, 3) == 66
    assert percent_done(199, 200) == 99
    assert percent_done(3, 3) == 100


WHO = caller_matrix(200)


@pytest.mark.parametrize(("who", "expected"), WHO)
async def test_progress_matrix(client, make_user, who, expected):
    world = await make_world(client, make_user)
    lacking = await scoped_headers(client, world.therapist, "reviews:read reviews:write")
    goal = world.goal_for(who)
    headers = world.headers_for(who, lacking)
    numbers = await client.get(f"/v1/goals/{goal['id']}/progress", headers=headers)
    chart = await client.get(f"/v1/goals/{goal['id']}/progress.svg", headers=headers)
    if expected == 200:
        assert numbers.status_code == 200
        assert numbers.json()["goal_id"] == goal["id"]
        assert chart.status_code == 200
        assert chart.headers["content-type"].startswith("image/svg+xml")
        return
    slug = {401: "unauthorized", 403: "insufficient-scope", 404: "not-found"}[expected]
    assert_problem(numbers, expected, slug)
    assert_problem(chart, expected, slug)


async def test_progress_numbers(client, make_user):
    owner = await make_user("client")
    goal = await new_goal(client, owner)
    empty = (await client.get(f"/v1/goals/{goal['id']}/progress", headers=owner.headers)).json()
    assert empty == {
        "goal_id": goal["id"],
        "steps_total": 0,
        "steps_done": 0,
        "percent": 0,
        "reviews": [],
        "trend": None,
    }
    steps = [await add_step(client, owner, goal["id"], f"step {i}") for i in range(3)]
    r = await client.patch(
        f"/v1/steps/{steps[0]['id']}", json={"status": "done"}, headers=owner.headers
    )
    assert r.status_code == 200
    for rating, gas in ((3, -1), (4, None), (6, 0), (7, 1)):
        body = {"rating": rating, **({"gas_score": gas} if gas is not None else {})}
        r = await client.post(f"/v1/goals/{goal['id']}/reviews", json=body, headers=owner.headers)
        assert r.status_code == 201
    progress = (await client.get(f"/v1/goals/{goal['id']}/progress", headers=owner.headers)).json()
    assert progress["steps_total"] == 3
    assert progress["steps_done"] == 1
    assert progress["percent"] == 33
    assert [p["rating"] for p in progress["reviews"]] == [3, 4, 6, 7]  # oldest first
    assert [p["gas_score"] for p in progress["reviews"]] == [-1, None, 0, 1]
    assert set(progress["reviews"][0]) == set(ReviewPoint.model_fields)
    assert progress["trend"] == "improving"  # mean(6, 7) - mean(3, 4) = 3


def _parse(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg"
    assert root.get("viewBox") == "0 0 600 300"
    return root


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def _by_class(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("class") == name]


async def test_chart_through_the_api(client, make_user):
    owner = await make_user("client", timezone="Europe/Berlin")
    goal = await new_goal(client, owner, title='Feel <content> & "calm" again')
    steps = [await add_step(client, owner, goal["id"], f"step {i}") for i in range(4)]
    for step in steps[:2]:
        r = await client.patch(
            f"/v1/steps/{step['id']}", json={"status": "done"}, headers=owner.headers
        )
        assert r.status_code == 200
    for rating in (4, 6, 5, 8):
        await client.post(
            f"/v1/goals/{goal['id']}/reviews", json={"rating": rating}, headers=owner.headers
        )
    r = await client.get(f"/v1/goals/{goal['id']}/progress.svg", headers=owner.headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("image/svg+xml")
    assert "<content>" not in r.text  # escaped, never markup
    root = _parse(r.text)
    texts = _texts(root)
    assert 'Feel <content> & "calm" again' in texts  # the parsed (unescaped) title
    assert "Latest rating 8 of 10 \u00b7 2 of 4 steps done" in texts
    assert {"0", "2", "4", "6", "8", "10"} <= set(texts)
    assert {"0%", "40%", "100%"} <= set(texts)
    assert "Rating (0\u201310)" in texts and "Steps done" in texts
    assert len(_by_class(root, "rating-point")) == 4
    assert len(_by_class(root, "ratings-line")) == 1
    assert len(_by_class(root, "steps-line")) == 1
    assert _by_class(root, "axis-dates")[0].findall(f"{SVG}text")
    assert not _by_class(root, "empty-state")
    assert root.find(f"{SVG}title") is not None


def test_chart_empty_state_and_long_titles():
    now = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
    svg = render_progress_svg(
        ChartData(
            title="x" * 300,
            ratings=[],
            completions=[],
            steps_total=0,
            start=now - dt.timedelta(hours=1),
            end=now,
        )
    )
    root = _parse(svg)
    assert _by_class(root, "empty-state")
    assert "No reviews yet" in _texts(root)
    assert not _by_class(root, "rating-point") and not _by_class(root, "steps-line")
    title = _by_class(root, "chart-title")[0].text
    assert len(title) <= 50 and title.endswith("\u2026")


def test_chart_dates_follow_the_timezone_and_span():
    end = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
    start = end - dt.timedelta(days=40)
    ratings = [(start + dt.timedelta(days=10 * i), i + 3) for i in range(4)]
    data = ChartData("Walks", ratings, [start + dt.timedelta(days=5)], 2, start, end, "Asia/Tokyo")
    root = _parse(render_progress_svg(data))
    dates = [t.text for t in _by_class(root, "axis-dates")[0].findall(f"{SVG}text")]
    assert 3 <= len(dates) <= 6
    assert dates[0].startswith("Oct") and dates[-1].startswith("Nov")
    long = ChartData("Years", ratings, [], 0, end - dt.timedelta(days=800), end)
    long_root = _parse(render_progress_svg(long))
    long_dates = [t.text for t in _by_class(long_root, "axis-dates")[0].findall(f"{SVG}text")]
    assert long_dates
    assert all(text.split()[-1].isdigit() and len(text.split()[-1]) == 4 for text in long_dates)
