"""Load shedding: a request that would wait too long for a turn is refused at once with 503 +
Retry-After; /healthz, /readyz and /metrics never wait for a turn."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from app.core.admission import (
    BURST,
    LAG_PROBE_SECONDS,
    SUSTAINED_PROBES,
    AdmissionMiddleware,
    ShedRule,
)
from app.core.config import Settings, get_settings
from tests.support.clock import FakeLoopClock
from tests.support.waiting import until
from tests.support.worlds import assert_problem


def slow_app(hold: asyncio.Event, started: asyncio.Event):
    """A tiny ASGI app: ``/slow`` holds its turn until ``hold`` is set; anything else is quick."""

    async def app(scope, receive, send):
        if scope["path"] == "/slow":
            started.set()
            await hold.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def client_for(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_a_request_that_waited_the_limit_is_refused_with_503():
    hold, started = asyncio.Event(), asyncio.Event()
    admission = AdmissionMiddleware(slow_app(hold, started), limit=1, max_wait_ms=100)
    async with client_for(admission) as client:
        slow = asyncio.create_task(client.get("/slow"))
        await started.wait()
        began = time.perf_counter()
        refused = await client.get("/v1/goals")
        waited = time.perf_counter() - began
        body = assert_problem(refused, 503, "service-unavailable")
        assert refused.headers["Retry-After"] == "1"
        assert body["detail"]
        assert 0.09 <= waited < 1.0  # waited its 100 ms, not the slow request's whole turn
        again = await client.get("/v1/goals")  # each refusal carries its own headers
        assert again.headers.get_list("retry-after") == ["1"]
        hold.set()
        assert (await slow).status_code == 200
        assert (await client.get("/v1/goals")).status_code == 200  # the turn is free again


async def test_a_request_that_would_wait_too_long_is_refused_at_once():
    hold, started = asyncio.Event(), asyncio.Event()
    admission = AdmissionMiddleware(slow_app(hold, started), limit=1, max_wait_ms=100)
    admission.rule.service_seconds = 0.5  # a turn lasts about 500 ms
    async with client_for(admission) as client:
        slow = asyncio.create_task(client.get("/slow"))
        await started.wait()
        began = time.perf_counter()
        refused = await client.get("/v1/goals")
        # Not queued: answered after a fifth to two fifths of the bound (pacing clients that
        # retry at once, with jitter so that those refused together do not come back together).
        assert 0.019 <= time.perf_counter() - began < 0.09
        assert_problem(refused, 503, "service-unavailable")
        assert refused.headers["Retry-After"] == "1"
        hold.set()
        assert (await slow).status_code == 200


async def test_requests_within_the_bound_wait_their_turn_in_order():
    hold, started = asyncio.Event(), asyncio.Event()
    admission = AdmissionMiddleware(slow_app(hold, started), limit=1, max_wait_ms=2000)
    async with client_for(admission) as client:
        slow = asyncio.create_task(client.get("/slow"))
        await started.wait()
        queued = [asyncio.create_task(client.get(f"/q{i}")) for i in range(3)]
        await until(lambda: admission.waiting == 3, what="three requests queued")
        hold.set()
        assert [r.status_code for r in await asyncio.gather(slow, *queued)] == [200] * 4
        assert admission.waiting == 0


def test_the_default_bound_is_250_ms():
    assert Settings.model_fields["max_queue_wait_ms"].default == 250


def punctual_probes(loop: FakeLoopClock, count: int = SUSTAINED_PROBES) -> None:
    """Turns of the loop that keep time: each lag probe runs when it is due."""
    for _ in range(count):
        loop.advance(LAG_PROBE_SECONDS)
        assert loop.run_due() == 1


async def test_a_backlog_in_the_event_loop_sheds_until_the_loop_catches_up():
    hold, started = asyncio.Event(), asyncio.Event()
    loop = FakeLoopClock()
    admission = AdmissionMiddleware(
        slow_app(hold, started), limit=10, max_wait_ms=100, loop_clock=loop
    )
    async with client_for(admission) as client:
        assert (await client.get("/a")).status_code == 200  # starts the lag probe
        assert loop.run_due() == 1  # its first run, on time
        for _ in range(SUSTAINED_PROBES):  # a backlog: every turn of the loop takes 150 ms
            loop.advance(0.15)
            assert loop.run_due() == 1
        # The probe ran late three times in a row: the sustained lag is over the bound.
        assert admission.loop_lag > 0.1
        refused = await client.get("/c")
        assert_problem(refused, 503, "service-unavailable")
        assert refused.headers["Retry-After"] == "1"
        # The loop has caught up: three punctual probes in a row, and requests are served.
        punctual_probes(loop)
        assert admission.loop_lag < 0.05
        assert (await client.get("/d")).status_code == 200


def decide(admission, path: str = "/v1/goals") -> tuple[dict, list[dict], bool]:
    """Drive one request through ``admission`` without leaving the current turn of the loop:
    its scope, what it sent, and whether it finished within the turn."""
    scope = {"type": "http", "method": "GET", "path": path, "headers": []}
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    request = admission(scope, receive, send)
    try:
        request.send(None)  # runs up to its first await: the decision, or all of it
    except StopIteration:
        return scope, sent, True
    request.close()
    return scope, sent, False


async def test_a_turn_of_the_loop_that_overruns_sheds_while_it_lasts():
    """The lag probe runs between turns of the loop; a turn that runs long while serving a
    burst of requests (on SQLite, served inline one after the other) is seen while it lasts:
    the requests still to be decided in it are refused."""
    hold, started = asyncio.Event(), asyncio.Event()
    loop = FakeLoopClock()
    admission = AdmissionMiddleware(
        slow_app(hold, started), limit=10, max_wait_ms=100, loop_clock=loop
    )
    async with client_for(admission) as client:
        assert (await client.get("/a")).status_code == 200  # starts the lag probe
    assert loop.run_due() == 1
    punctual_probes(loop, SUSTAINED_PROBES - 1)
    assert len(admission._recent_lags) == SUSTAINED_PROBES
    assert admission.current_lag() < 0.01
    for _ in range(BURST):  # served within this turn, each start to end
        scope, sent, finished = decide(admission)
        assert finished and sent[0]["status"] == 200
    loop.advance(0.13)  # this turn overruns; the probe has not run since
    assert admission.loop_lag < 0.01 <= 0.11 <= admission.current_lag()
    scope, sent, finished = decide(admission)
    assert scope.get("waypoint.shed") is True and not finished and sent == []


async def test_a_lone_stall_of_the_loop_sheds_nothing():
    """One late turn (a garbage collection, a thread preempted on a busy machine) is not
    overload: neither the overdue probe nor its one late reading refuses anything."""
    hold, started = asyncio.Event(), asyncio.Event()
    loop = FakeLoopClock()
    admission = AdmissionMiddleware(
        slow_app(hold, started), limit=10, max_wait_ms=100, loop_clock=loop
    )
    async with client_for(admission) as client:
        assert (await client.get("/a")).status_code == 200  # starts the lag probe
        assert loop.run_due() == 1
        punctual_probes(loop, SUSTAINED_PROBES - 1)
        assert len(admission._recent_lags) == SUSTAINED_PROBES
        loop.advance(0.06)  # a turn of the loop stalls
        scope, sent, finished = decide(admission)
        assert finished and sent[0]["status"] == 200
        # The next turn: the overdue probe runs, late (it counts admissions since it last ran).
        assert loop.run_due() == 1
        assert admission._recent_lags[-1] == pytest.approx(0.04)  # the one late reading
        assert admission._admitted_since_probe == 0
        for _ in range(2 * BURST):
            assert (await client.get("/b")).status_code == 200
        assert admission.loop_lag < 0.02


async def test_health_and_metrics_never_wait_for_a_turn():
    hold, started = asyncio.Event(), asyncio.Event()
    admission = AdmissionMiddleware(slow_app(hold, started), limit=1, max_wait_ms=5000)
    async with client_for(admission) as client:
        slow = asyncio.create_task(client.get("/slow"))
        await started.wait()
        for path in ("/healthz", "/readyz", "/metrics"):
            began = time.perf_counter()
            assert (await client.get(path)).status_code == 200
            assert time.perf_counter() - began < 0.1
        hold.set()
        await slow


async def test_the_app_sheds_with_its_configured_bound(app_instance, monkeypatch):
    """The real stack: limit and bound come from the settings, the shed answer is counted."""
    from app.core import metrics

    stack = app_instance.middleware_stack or app_instance.build_middleware_stack()
    app_instance.middleware_stack = stack
    layer = stack
    while not isinstance(layer, AdmissionMiddleware):
        layer = layer.app
    settings = get_settings()
    assert layer.limit == settings.max_concurrent_requests
    assert layer.max_wait == settings.max_queue_wait_ms / 1000
    layer.limit, layer.max_wait = 1, 0.25
    layer.rule = ShedRule(1, 0.25)
    layer._turns = asyncio.Semaphore(1)
    layer.rule.service_seconds = 1.0
    shed_before = metrics.SHED._value.get()
    await layer._turns.acquire()  # a request holds the only turn
    try:
        transport = httpx.ASGITransport(app=app_instance, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            refused = await client.get("/v1/goals")
            assert_problem(refused, 503, "service-unavailable")
            assert refused.headers["Retry-After"] == "1"
            again = await client.get("/v1/goals")  # the request id is not added twice
            assert len(again.headers.get_list("x-request-id")) == 1
            assert again.headers["x-request-id"] != refused.headers["x-request-id"]
            assert (await client.get("/healthz")).status_code == 200
            scrape = (await client.get("/metrics")).text
    finally:
        layer._turns.release()
    assert metrics.SHED._value.get() == shed_before + 2
    assert 'waypoint_request_duration_seconds_count{method="GET",route="shed",status="5xx"}' in (
        scrape
    )
