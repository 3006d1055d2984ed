"""GET /metrics: Prometheus text format, loopback and WAYPOINT_METRICS_ALLOW only, labels
without ids or user text, and a request-metrics middleware cheap enough for the hot path."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Route

from app.core import metrics
from app.core.config import get_settings
from app.models import Webhook, WebhookDelivery, WebhookEvent
from app.webhooks import queue_metrics
from app.webhooks.fanout import fan_out_all
from tests.support.webhooks import Receiver, subscribe
from tests.support.worlds import PASSWORD, assert_problem, login, new_goal


def samples(text: str) -> dict[str, list]:
    found: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def value(text: str, name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples(text).get(name, [])
        if all(s.labels.get(k) == v for k, v in labels.items())
    )


async def test_metrics_report_requests_by_route_template_and_status_class(client, make_user):
    patient = await make_user("client")
    goal = await new_goal(client, patient, title="Call my sister on Sundays")
    for _ in range(3):
        assert (await client.get(f"/v1/goals/{goal['id']}", headers=patient.headers)).is_success
    assert (await client.get("/v1/goals/0000", headers=patient.headers)).status_code in (404, 422)
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    route = "/v1/goals/{goal_id}"
    count = "waypoint_request_duration_seconds_count"
    assert value(text, count, route=route, method="GET", status="2xx") >= 3
    assert value(text, count, route=route, method="GET", status="4xx") >= 1
    assert value(text, count, route="/v1/goals", method="POST", status="2xx") >= 1
    for name in (
        "waypoint_requests_in_flight",
        "waypoint_requests_queued",
        "waypoint_requests_shed_total",
        "waypoint_db_connections_checked_out",
        "waypoint_db_errors_total",
        "waypoint_login_failures_total",
        "waypoint_login_throttled_total",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    # No label carries an id, an e-mail or anything a user wrote.
    for secret in (goal["id"], patient.id, patient.email, "Call my sister"):
        assert secret not in text


async def test_operator_routes_are_labelled_by_template_and_unknown_paths_by_one_word(client):
    """``/metrics`` is added with ``app.add_route`` (a plain Starlette route, which FastAPI's
    router leaves out of the scope): it used to be labelled ``unmatched``."""
    count = "waypoint_request_duration_seconds_count"
    before = (await client.get("/metrics")).text
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await client.get(path)).status_code == 200, path
    assert (await client.post("/metrics")).status_code == 405
    unknown = "/v1/no-such-thing/3f1c2a54-0000-4000-8000-00000000cafe"
    assert (await client.get(unknown)).status_code == 404
    after = (await client.get("/metrics")).text

    def grew(route: str, method: str = "GET", status: str = "2xx") -> float:
        labels = {"route": route, "method": method, "status": status}
        return value(after, count, **labels) - value(before, count, **labels)

    assert grew("/healthz") == 1
    assert grew("/readyz") == 1
    assert grew("/metrics") == 2  # the request above and the scrape that took ``before``
    assert grew("/metrics", "POST", "4xx") == 1
    assert grew("unmatched", status="4xx") == 1
    routes = {s.labels["route"] for s in samples(after).get(count, [])}
    assert "/metrics" in routes
    assert not any("no-such-thing" in route or "cafe" in route for route in routes)


async def test_login_failures_and_throttles_are_counted(client, make_user, monkeypatch):
    monkeypatch.setenv("WAYPOINT_LOGIN_FAILURES_PER_ACCOUNT", "2")
    get_settings.cache_clear()
    patient = await make_user("client")
    failures = metrics.LOGIN_FAILURES._value.get()
    throttled = metrics.LOGIN_THROTTLED._value.get()
    for _ in range(2):
        assert (await login(client, patient.email, "wrong password")).status_code == 400
    assert (await login(client, patient.email, PASSWORD)).status_code == 429
    assert metrics.LOGIN_FAILURES._value.get() == failures + 2
    assert metrics.LOGIN_THROTTLED._value.get() == throttled + 1
    get_settings.cache_clear()


async def test_metrics_are_refused_to_other_networks(app_instance):
    transport = httpx.ASGITransport(app=app_instance, client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as outsider:
        r = await outsider.get("/metrics")
    assert_problem(r, 403, "forbidden")
    assert "waypoint_" not in r.text


async def test_metrics_are_served_to_the_allowed_networks(monkeypatch):
    from app.core.engines import dispose_engines
    from app.core.sessions import forget_engines
    from app.main import create_app

    monkeypatch.setenv("WAYPOINT_METRICS_ALLOW", '["203.0.113.0/24"]')
    get_settings.cache_clear()
    try:
        app = create_app()
        for address, status in (("203.0.113.9", 200), ("198.51.100.1", 403), ("::1", 200)):
            transport = httpx.ASGITransport(app=app, client=(address, 4000))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                assert (await c.get("/metrics")).status_code == status, address
    finally:
        get_settings.cache_clear()
        await dispose_engines()
        forget_engines()


async def test_metrics_stay_out_of_the_openapi_document(app_instance):
    assert "/metrics" not in app_instance.openapi()["paths"]


async def test_scrape_hooks_run_at_each_scrape_and_a_failing_one_hides_nothing():
    depth = metrics.gauge("waypoint_test_queue_depth", "A test gauge.", mode="mostrecent")
    calls = []

    async def measure() -> None:
        calls.append(1)
        depth.set(7)

    async def broken() -> None:
        raise RuntimeError("the queue table is gone")

    endpoint = metrics.metrics_endpoint(metrics.allowed_networks([]), (measure, broken))
    scraped = Starlette(routes=[Route("/metrics", endpoint)])
    transport = httpx.ASGITransport(app=scraped, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        text = (await client.get("/metrics")).text
    assert calls == [1]
    assert value(text, "waypoint_test_queue_depth") == 7
    assert "waypoint_request_duration_seconds" in text


@pytest.mark.parametrize("rounds", [20_000])
async def test_the_request_metrics_middleware_costs_a_few_microseconds(rounds):
    """In-process overhead of the middleware: the same tiny ASGI app with and without it."""

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(_message):
        return None

    scope = {"type": "http", "method": "GET", "path": "/v1/goals", "headers": []}
    measured = metrics.RequestMetricsMiddleware(app)

    async def run(target) -> float:
        started = time.perf_counter()
        for _ in range(rounds):
            await target(dict(scope), None, send)
        return (time.perf_counter() - started) / rounds

    await run(measured)  # warm up (label children made)
    bare = min([await run(app) for _ in range(3)])
    with_metrics = min([await run(measured) for _ in range(3)])
    overhead_us = (with_metrics - bare) * 1e6
    print(f"request metrics middleware: {overhead_us:.1f} us per request")
    assert overhead_us < 50  # generous for a shared machine; about 3-6 us measured here
    await asyncio.sleep(0)


# -- the webhook delivery queue -------------------------------------------------------------
DELIVERIES = WebhookDelivery.__table__


@pytest.fixture
def receiver(monkeypatch):
    monkeypatch.setenv("WAYPOINT_WEBHOOKS_ALLOW_PRIVATE", "true")  # the receiver is on loopback
    get_settings.cache_clear()
    r = Receiver()
    yield r
    r.close()
    get_settings.cache_clear()


async def queue_with(client, make_user, receiver, sync_engine, *, goals: int) -> list:
    """``goals`` pending deliveries to ``receiver`` (no worker runs in the test app; their
    events are fanned out here), their ids oldest first."""
    owner = await make_user("client")
    await subscribe(client, owner, receiver.url)
    for i in range(goals):
        await new_goal(client, owner, title=f"g{i}")
    await fan_out_all()
    with sync_engine.connect() as conn:
        query = sa.select(DELIVERIES.c.id).order_by(DELIVERIES.c.created_at)
        return list(conn.execute(query).scalars())


def set_next_attempt(sync_engine, delivery_id, at: dt.datetime) -> None:
    with sync_engine.begin() as conn:
        conn.execute(
            DELIVERIES.update().where(DELIVERIES.c.id == delivery_id).values(next_attempt_at=at)
        )


def queue_gauges(text: str) -> tuple[float, float, float]:
    return (
        value(text, "waypoint_webhook_deliveries_due"),
        value(text, "waypoint_webhook_oldest_due_seconds"),
        value(text, "waypoint_webhook_deliveries_pending"),
    )


async def test_the_delivery_queue_gauges_show_the_due_backlog_and_its_oldest_age(
    client, make_user, receiver, sync_engine
):
    from app.webhooks.worker import DeliveryWorker

    oldest, due, retrying = await queue_with(client, make_user, receiver, sync_engine, goals=3)
    now = dt.datetime.now(dt.UTC)
    set_next_attempt(sync_engine, oldest, now - dt.timedelta(seconds=120))
    set_next_attempt(sync_engine, retrying, now + dt.timedelta(hours=1))  # a retry, waiting

    text = (await client.get("/metrics")).text
    depth, oldest_age, pending = queue_gauges(text)
    assert depth == 2
    assert pending == 3
    assert 120 <= oldest_age < 120 + 30
    measured = value(text, "waypoint_webhook_queue_measured_timestamp_seconds")
    assert time.time() - 30 < measured <= time.time()

    worker = DeliveryWorker(allow_private=True, yield_to_requests=False)
    try:
        assert await worker.run_once() == 2  # the due ones; the retry waits
    finally:
        await worker.aclose()
    assert len(receiver.requests) == 2
    assert queue_gauges((await client.get("/metrics")).text) == (0, 0, 1)

    with sync_engine.begin() as conn:  # given up on
        conn.execute(DELIVERIES.update().values(status="failed").where(DELIVERIES.c.id == due))
        conn.execute(DELIVERIES.update().values(status="failed").where(DELIVERIES.c.id == retrying))
    assert queue_gauges((await client.get("/metrics")).text) == (0, 0, 0)


async def test_events_not_yet_fanned_out_show_and_age(client, make_user, receiver, sync_engine):
    """The worker's first step has its own gauge; a waiting event is due since its change."""
    owner = await make_user("client")
    await subscribe(client, owner, receiver.url)
    for i in range(2):
        await new_goal(client, owner, title=f"g{i}")
    events = WebhookEvent.__table__
    with sync_engine.begin() as conn:  # the older event waits since 90 s
        first = conn.execute(sa.select(sa.func.min(events.c.seq))).scalar()
        at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=90)
        conn.execute(events.update().where(events.c.seq == first).values(created_at=at))
        hooks = Webhook.__table__  # (and the webhook is older still, so it hears of it)
        conn.execute(hooks.update().values(created_at=at - dt.timedelta(seconds=1)))
    text = (await client.get("/metrics")).text
    assert value(text, "waypoint_webhook_events_pending") == 2
    assert queue_gauges(text)[0] == 0  # no delivery exists yet
    assert 90 <= queue_gauges(text)[1] < 90 + 30
    assert await fan_out_all() == 2
    text = (await client.get("/metrics")).text
    assert value(text, "waypoint_webhook_events_pending") == 0
    depth, oldest_age, pending = queue_gauges(text)
    assert (depth, pending) == (2, 2)
    assert 90 <= oldest_age < 90 + 30  # the delivery is due since its event's change


class _BrokenSession:
    """What ``new_session`` gives while the database is away: entering it fails with an error
    whose message carries the database URL (as a driver's can), or hangs."""

    def __init__(self, hang: asyncio.Event | None = None) -> None:
        self.hang = hang

    async def __aenter__(self):
        if self.hang is not None:
            await self.hang.wait()
        raise sa.exc.OperationalError(
            "SELECT 1", {}, Exception("postgresql://waypoint:hunter2-secret@db/waypoint refused")
        )

    async def __aexit__(self, *exc) -> None:
        return None


async def test_a_failing_queue_measurement_keeps_the_last_values_and_logs_no_secret(
    client, make_user, receiver, sync_engine, monkeypatch, capsys
):
    await queue_with(client, make_user, receiver, sync_engine, goals=2)
    before = (await client.get("/metrics")).text
    assert queue_gauges(before)[0] == 2
    capsys.readouterr()

    monkeypatch.setattr(queue_metrics, "new_session", lambda write: _BrokenSession())
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert queue_gauges(r.text) == queue_gauges(before)
    stamp = "waypoint_webhook_queue_measured_timestamp_seconds"
    assert value(r.text, stamp) == value(before, stamp)
    out = capsys.readouterr().out
    assert "hunter2" not in out
    (failure,) = [
        line for line in map(json.loads, out.splitlines()) if line["event"] == "scrape_hook_failed"
    ]
    assert failure["hook"] == "measure_delivery_queue"
    assert failure["error_type"] == "OperationalError"


async def test_a_hanging_queue_measurement_does_not_hold_the_scrape(
    client, make_user, receiver, sync_engine, monkeypatch
):
    await queue_with(client, make_user, receiver, sync_engine, goals=1)
    assert queue_gauges((await client.get("/metrics")).text)[0] == 1
    monkeypatch.setattr(metrics, "SCRAPE_HOOK_TIMEOUT_SECONDS", 0.2)
    released = asyncio.Event()
    opened = []

    def hanging_session(write: bool) -> _BrokenSession:
        opened.append(write)
        return _BrokenSession(hang=released)

    monkeypatch.setattr(queue_metrics, "new_session", hanging_session)
    try:
        for _ in range(2):
            started = time.perf_counter()
            r = await client.get("/metrics")
            assert r.status_code == 200
            assert time.perf_counter() - started < 1.0
            assert queue_gauges(r.text)[0] == 1  # the last value, kept
            assert "waypoint_request_duration_seconds" in r.text
        assert len(opened) == 1  # not started again while the first one waits
    finally:
        released.set()
        with contextlib.suppress(Exception):
            await metrics._hook_tasks[queue_metrics.measure_delivery_queue]
    await client.get("/metrics")
    assert len(opened) == 2  # started again once the late one ended
